"""Real public data from ../shared/data: Singapore HDB blocks in URA subzones, Huangshi compounds.

Every test here uses the ``shared_data`` fixture: it skips when ../shared/data is absent
locally and fails under ``CI``.  The same guarantees as on the synthetic sample are
asserted (``check_plan``).  The figures of the big runs (grids, share in bounds, mean
compactness, time) are written to a JSON file under the test's tmp folder and printed;
run ``pytest -s -m shared_data`` to read them.

- Singapore (URA Master Plan 2019 subzones as communities, HDB blocks with
  ``total_dwelling_units`` as buildings): the whole island (slow) and the Pasir Ris
  fixture subset (quick).
- Huangshi (Beike compounds, BD-09 points, no community boundaries): the reader's BD-09
  conversion against the file's own WGS84 columns, and the CLI end to end on 黄石港区 cut
  into a lattice of boxes that stand in for communities (slow).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.cli.commands import main
from gridkit.errors import GridkitWarning
from gridkit.io.readers import read_boundaries, read_households
from gridkit.pipeline.plan import make_grids

pytestmark = pytest.mark.shared_data

SG = "sg_hdb_subzones"
HS = "cn_hubei_xiaoqu"
TIME_LIMIT = 0.5
JOBS = 2


def _figures(plan, elapsed: float) -> dict:
    """The headline figures of a run, for the report."""
    t = plan.report["totals"]
    statuses: dict[str, int] = {}
    for c in plan.report["communities"]:
        statuses[c["solver_status"]] = statuses.get(c["solver_status"], 0) + 1
    return {
        "communities": t["communities"],
        "feasible_communities": t["feasible_communities"],
        "households": t["households"],
        "household_rows": t["household_rows"],
        "grids": t["grids"],
        "grids_by_status": t["grids_by_status"],
        "grids_in_feasible_communities": t["grids_in_feasible_communities"],
        "pct_grids_in_bounds_where_feasible": t["pct_grids_in_bounds_where_feasible"],
        "mean_compactness": t["mean_compactness"],
        "solver_status": dict(sorted(statuses.items())),
        "time_s": round(elapsed, 1),
        "time_limit": plan.report["parameters"]["time_limit"],
    }


def _record(tmp_path_factory, name: str, figures: dict) -> Path:
    path = tmp_path_factory.mktemp("figures") / f"{name}.json"
    path.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\n{name} figures ({path}):\n{json.dumps(figures, ensure_ascii=False, indent=2)}")
    return path


# --------------------------------------------------------------------------- Singapore


def _sg_blocks(path: Path) -> gpd.GeoDataFrame:
    """HDB blocks; a block is ``blk_no`` + ``street`` (postal codes are shared by a few)."""
    table = pd.read_csv(path, dtype=str)
    table["building_id"] = table["blk_no"] + " " + table["street"]
    table.attrs["source"] = str(path)
    return read_households(
        table,
        households_col="total_dwelling_units",
        building_col="building_id",
        lon_col="lng",
        lat_col="lat",
        input_crs="wgs84",
    )


def _sg_subzones(path: Path) -> gpd.GeoDataFrame:
    with warnings.catch_warnings():
        # MP2019 has four thin border slivers (reprojection); the reader warns about them
        warnings.simplefilter("ignore", GridkitWarning)
        return read_boundaries(path, id_col="SUBZONE_C", name_col="SUBZONE_N",
                               street_col="PLN_AREA_N")


@pytest.mark.slow
def test_singapore_all_hdb_subzones(shared_data, tmp_path_factory, check_plan):
    folder = shared_data / SG
    blocks = _sg_blocks(folder / "hdb_residential_blocks.csv")
    subzones = _sg_subzones(folder / "mp2019_subzones.geojson")
    assert len(blocks) == 9864
    assert int(blocks["households"].sum()) == 1_048_802
    subzones = subzones[subzones["hdb_units"] > 0].reset_index(drop=True)
    assert len(subzones) >= 150

    started = time.perf_counter()
    plan = make_grids(subzones, blocks, time_limit=TIME_LIMIT, jobs=JOBS)
    elapsed = time.perf_counter() - started
    _record(tmp_path_factory, "singapore", _figures(plan, elapsed))

    check_plan(plan, subzones, blocks)
    assert (plan.assignments["reason"] == "").all()  # every block lies in a subzone
    assert plan.report["totals"]["households_assigned"] == 1_048_802


def test_singapore_pasir_ris(shared_data, tmp_path_factory, check_plan):
    """The ready-made Pasir Ris subset: 8 subzones, 3 with HDB (29,488 units in 428 blocks)."""
    folder = shared_data / SG / "subset_pasir_ris"
    subzones = _sg_subzones(folder / "subzones.geojson")
    blocks = read_households(folder / "hdb_blocks.geojson", households_col="total_dwelling_units")
    assert len(subzones) == 8
    assert len(blocks) == 428 and int(blocks["households"].sum()) == 29_488

    started = time.perf_counter()
    plan = make_grids(subzones, blocks, time_limit=TIME_LIMIT, jobs=JOBS)
    elapsed = time.perf_counter() - started
    _record(tmp_path_factory, "pasir_ris", _figures(plan, elapsed))

    check_plan(plan, subzones, blocks)
    hh = plan.grids.groupby("community_id")["households"].sum()
    assert hh[["PRSZ05", "PRSZ03", "PRSZ02"]].tolist() == [14_975, 6_636, 7_877]
    # the five subzones without HDB are one empty grid each, explained
    empty = plan.grids[plan.grids["households"] == 0]
    assert len(empty) == 5 and (empty["status"] == "below_min").all()
    for c in plan.report["communities"]:
        if c["households"] == 0:
            assert c["infeasible_reason"] == "below_min"
            assert any("no households" in n for n in c["notes"]), c
    # ids that are not 12-digit statistical codes get a hyphenated sequence
    assert plan.grids["grid_code"].str.fullmatch(r"PRSZ\d\d-\d{3}").all()


# --------------------------------------------------------------------------- Huangshi


def _huangshi(shared_data: Path) -> Path:
    return shared_data / HS / "huangshi_xiaoqu_beike.csv"


def _metres(a: gpd.GeoSeries, b: gpd.GeoSeries) -> np.ndarray:
    """Distances in metres between aligned points in EPSG:4326 (UTM 50N)."""
    return a.to_crs(32650).distance(b.to_crs(32650), align=False).to_numpy()


@pytest.mark.parametrize(
    ("system", "lon", "lat"),
    [("bd09", "lng_bd09", "lat_bd09"), ("gcj02", "lng_gcj02", "lat_gcj02")],
)
def test_huangshi_reader_converts_to_wgs84(shared_data, system, lon, lat):
    """BD-09 / GCJ-02 columns read with --input-crs land on the file's own WGS84 columns."""
    path = _huangshi(shared_data)
    households = read_households(
        path, lon_col=lon, lat_col=lat, input_crs=system, households_col="households"
    )
    table = pd.read_csv(path)
    assert len(households) == len(table) == 1395
    assert int(households["households"].sum()) == 391_869
    assert households["household_id"].tolist() == [str(i) for i in range(1, 1396)]
    expected = gpd.GeoSeries(gpd.points_from_xy(table["lng_wgs84"], table["lat_wgs84"]), crs=4326)
    moved = _metres(households.geometry, expected)
    assert moved.max() < 2.0, moved.max()
    # and the shift undone is real: BD-09 is ~500 m off, GCJ-02 ~300-600 m off
    raw = gpd.GeoSeries(gpd.points_from_xy(table[lon], table[lat]), crs=4326)
    assert np.median(_metres(raw, expected)) > 100


def _boxes(points: gpd.GeoSeries, n: int = 3) -> gpd.GeoDataFrame:
    """An ``n`` x ``n`` lattice of boxes over the central 96% of the points (stand-in communities).

    The points outside (the 2% tails on each axis, mostly mis-geocoded compounds) are left
    outside every community on purpose.
    """
    x, y = points.x.to_numpy(), points.y.to_numpy()
    x0, x1 = np.quantile(x, [0.02, 0.98])
    y0, y1 = np.quantile(y, [0.02, 0.98])
    xs, ys = np.linspace(x0, x1, n + 1), np.linspace(y0, y1, n + 1)
    rows = []
    for j in range(n):  # north to south
        for i in range(n):
            box = shapely.box(xs[i], ys[n - j - 1], xs[i + 1], ys[n - j])
            rows.append((f"HSG{j + 1}{i + 1}", f"黄石港区测试格{j + 1}-{i + 1}", box))
    ids, names, geoms = zip(*rows, strict=True)
    return gpd.GeoDataFrame(
        {"id": ids, "name": names, "street": "黄石港区"}, geometry=list(geoms), crs=4326
    )


@pytest.mark.slow
def test_huangshi_district_through_the_cli(shared_data, tmp_path, tmp_path_factory, capsys,
                                           check_plan, unsplittable):
    """黄石港区 (538 compounds, 141,815 households) end to end through ``gridkit partition``."""
    table = pd.read_csv(_huangshi(shared_data), dtype=str)
    district = table[table["district"] == "黄石港区"].reset_index(drop=True)
    assert len(district) == 538
    csv = tmp_path / "huangshi_harbour.csv"
    district.to_csv(csv, index=False)
    lon, lat = district["lng_wgs84"].astype(float), district["lat_wgs84"].astype(float)
    wgs = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326)
    boxes = _boxes(wgs)
    boundaries = tmp_path / "boxes.geojson"
    boxes.to_file(boundaries, engine="pyogrio")

    out = tmp_path / "out"
    argv = [
        "partition",
        "--communities", str(boundaries),
        "--community-id", "id",
        "--communities-crs", "wgs84",
        "--households", str(csv),
        "--lon-col", "lng_bd09", "--lat-col", "lat_bd09",
        "--input-crs", "bd09",
        "--households-col", "households",
        "--out", str(out),
        "--no-map",
        "--time-limit", str(TIME_LIMIT),
        "--jobs", str(JOBS),
    ]  # fmt: skip
    started = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - started
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    # compounds beyond the trimmed lattice are reported, not dropped
    assert "warning: " in captured.err and "outside every community" in captured.err

    grids = gpd.read_file(out / "grids.geojson")
    assignments = pd.read_csv(
        out / "assignments.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    plan = SimpleNamespace(grids=grids, assignments=assignments, report=report)
    households = read_households(
        csv, lon_col="lng_bd09", lat_col="lat_bd09", input_crs="bd09", households_col="households"
    )
    communities = read_boundaries(boundaries, id_col="id")
    # Boxes of a few large compounds can be impossible to split within the bounds (e.g.
    # 757 + 676 + 96 + 64 + 60 + 1 households): the report does not flag that yet (see
    # test_pipeline.py::test_unsplittable_community_is_reported_infeasible), so such
    # communities are excused here, but only when the test itself proves them unsplittable.
    compound_hh = households["households"].to_numpy()
    unmet = [c["community_id"] for c in report["communities"]
             if c["infeasible_reason"] is None and not c["bounds_met"]]
    excused = []
    unproved = []
    for cid in unmet:
        weights = compound_hh[(assignments["grid_code"].str.startswith(f"{cid}-")).to_numpy()]
        if unsplittable(weights, 400, 800):
            excused.append(cid)
    # With big compounds split by building number (not oversize grids any more), a box
    # can be left with a few compounds no contiguous grouping fits, which neither the
    # report nor this test can prove yet: such a box is excused only when the plan's own
    # notes say that the bounds could not be met there, and counted in the figures.
    for c in report["communities"]:
        if c["community_id"] in unmet and c["community_id"] not in excused and any(
            "could not meet the bounds" in n or "no contiguous plan" in n for n in c["notes"]
        ):
            unproved.append(c["community_id"])
    assert len(unproved) <= 1, unproved
    excused += unproved
    # the GeoJSON holds 7 decimals (~1 cm): tiling is exact to that precision
    check_plan(plan, communities, households, tolerance=1e-4, excused=excused)

    hh = households["households"].to_numpy()
    outside = (assignments["reason"] == "outside_communities").to_numpy()
    assert 0 < outside.sum() < 0.1 * len(assignments)
    assert (assignments.loc[outside, "grid_code"] == "").all()
    # every compound above 800 households has a building count: it is split by building
    # number into the fewest grids that fit (split_compound), never an oversize building
    big = (hh > 800) & ~outside
    assert big.sum() >= 20
    assert not grids["status"].isin(["oversize_building", "oversize_compound"]).any()
    notes = " ".join(n for c in report["communities"] for n in c["notes"])
    names = district["name"].to_numpy()
    for name, n in zip(names[big], hh[big], strict=True):
        assert f"compound {name} ({n} households," in notes and "split into" in notes
    status = grids.set_index("grid_code")["status"]
    assert (status.loc[assignments.loc[big, "grid_code"]] != "oversize_building").all()
    assert (grids["status"] == "split_compound").sum() >= big.sum()

    figures = {
        "district": "黄石港区",
        "compounds": len(district),
        "compounds_over_800": int(big.sum()),
        "communities (boxes)": len(boxes),
        "rows_outside_boxes": int(outside.sum()),
        "communities_proven_unsplittable_not_flagged": excused,
        "communities_unmet_not_proved": unproved,
        **{k: report["totals"][k] for k in (
            "households", "households_assigned", "grids", "grids_by_status",
            "feasible_communities", "pct_grids_in_bounds_where_feasible", "mean_compactness",
        )},
        "time_s": round(elapsed, 1),
    }  # fmt: skip
    _record(tmp_path_factory, "huangshi", figures)
