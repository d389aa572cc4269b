"""Compounds (小区) given as polygons: attach_compounds and ``gridkit partition --compounds``."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.cli.commands import main
from gridkit.errors import InputError
from gridkit.units.compounds import attach_compounds

SUBSET = ["420204002002", "420204003005", "420204002005"]


def _points(xy, crs=3857) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=shapely.points(np.asarray(xy, dtype=float)), crs=crs)


def test_nested_compounds_smallest_wins_and_outside_is_none():
    households = _points([[5, 5], [15, 15], [50, 50]])
    compounds = gpd.GeoDataFrame(
        {"name": ["大院", "内院"]},
        geometry=[shapely.box(0, 0, 20, 20), shapely.box(0, 0, 10, 10)],
        crs=3857,
    )
    out = attach_compounds(households, compounds)
    assert out["compound"].tolist() == ["内院", "大院", None]
    assert "compound" not in households  # a copy, the input is untouched


def test_compounds_in_another_crs_and_footprints():
    footprints = gpd.GeoDataFrame(
        geometry=[shapely.box(12_000_000, 3_500_000, 12_000_010, 3_500_010)], crs=3857
    )
    outline = gpd.GeoDataFrame(
        {"名称": ["阳光小区"]},
        geometry=[shapely.box(12_000_000 - 50, 3_500_000 - 50, 12_000_000 + 50, 3_500_000 + 50)],
        crs=3857,
    ).to_crs(4326)
    assert attach_compounds(footprints, outline)["compound"].tolist() == ["阳光小区"]


def test_unnamed_compounds_get_row_names():
    households = _points([[1, 1], [11, 1]])
    compounds = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 2, 2), shapely.box(10, 0, 12, 2)], crs=3857
    )
    assert attach_compounds(households, compounds)["compound"].tolist() == [
        "compound 1",
        "compound 2",
    ]


def test_lines_are_refused_with_the_feature_named():
    compounds = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])],
        crs=3857,
    )
    compounds.attrs["source"] = "compounds file 'c.geojson'"
    with pytest.raises(
        InputError, match=r"compounds file 'c.geojson': feature\(s\) 2 .*LineString"
    ):
        attach_compounds(_points([[0.5, 0.5]]), compounds)


def test_missing_crs_is_explained():
    compounds = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)])
    with pytest.raises(InputError, match="no CRS"):
        attach_compounds(_points([[0.5, 0.5]]), compounds)


@pytest.fixture(scope="module")
def compound_files(sample, tmp_path_factory):
    """Three sample communities; compounds as outlines; households without the column."""
    communities, buildings = sample
    c = communities[communities["community_id"].isin(SUBSET)]
    b = buildings[buildings["community_id"].isin(SUBSET)].reset_index(drop=True)
    metric = b.estimate_utm_crs()
    pts = b.to_crs(metric)
    outlines = (
        pts.dissolve("compound")
        .convex_hull.buffer(12)
        .to_frame("geometry")
        .reset_index()
        .rename(columns={"compound": "xqmc"})
        .set_crs(metric)
        .to_crs(4326)
    )
    folder = tmp_path_factory.mktemp("compounds")
    paths = {
        "communities": folder / "communities.geojson",
        "households": folder / "households.geojson",
        "compounds": folder / "compounds.geojson",
    }
    c.to_file(paths["communities"])
    b.drop(columns=["compound"]).to_file(paths["households"])
    outlines.to_file(paths["compounds"])
    return paths, b


def _run(paths, out, *extra) -> dict:
    code = main(
        [
            "partition",
            "--communities", str(paths["communities"]),
            "--households", str(paths["households"]),
            "--out", str(out),
            "--time-limit", "0.5",
            "--jobs", "1",
            "--no-map",
            "--quiet",
            *extra,
        ]
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_cli_compounds_keep_each_small_compound_in_one_grid(compound_files, tmp_path):
    paths, buildings = compound_files
    _run(paths, tmp_path / "kept", "--compounds", str(paths["compounds"]),
         "--compound-name-col", "xqmc")  # fmt: skip
    assignments = pd.read_csv(tmp_path / "kept" / "assignments.csv", dtype=str)
    assert len(assignments) == len(buildings)  # one row per input row, in input order
    spans = buildings.assign(grid=assignments["grid_code"].to_numpy()).groupby("compound")
    sizes = spans["households"].sum()
    grids_per_compound = spans["grid"].nunique()
    small = sizes[sizes <= 800].index
    assert len(small) >= 3
    assert (grids_per_compound[small] == 1).all(), grids_per_compound[small]


def test_cli_compound_name_col_must_exist(compound_files, tmp_path, capsys):
    paths, _ = compound_files
    code = main(
        [
            "partition",
            "--communities", str(paths["communities"]),
            "--households", str(paths["households"]),
            "--compounds", str(paths["compounds"]),
            "--compound-name-col", "nope",
            "--out", str(tmp_path / "x"),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "has no column 'nope' (--compound-name-col)" in err and "xqmc" in err
