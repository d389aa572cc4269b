"""Tests for gridkit.audit: every problem code is found where it is, and nowhere else.

Maps come from ``tests/gridmaps.py`` (two communities, four 600-household
grids in Wuhan), damaged by hand in metres; one test audits a real
``make_grids`` result.
"""

from __future__ import annotations

import argparse
import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from gridmaps import (
    A1,
    A2,
    B1,
    B2,
    X0,
    Y0,
    building_rows,
    grid_boxes,
    make_map,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, box

from gridkit.audit import PROBLEMS, AuditResult, audit_grids, format_summary, read_grids
from gridkit.cli.exchange import register
from gridkit.errors import GridkitWarning, InputError
from gridkit.export.files import to_geojson
from gridkit.io.readers import read_boundaries, read_households


def _audit(grids=None, buildings=None, *, communities=True, **kwargs) -> AuditResult:
    g, b, c = make_map(grids=grids, buildings=buildings)
    return audit_grids(g, b, communities=c if communities else None, **kwargs)


def _problems(result: AuditResult) -> dict[str, str]:
    return dict(zip(result.grids["grid_code"], result.grids["problems"], strict=True))


def _boxes(**changes) -> dict:
    boxes = grid_boxes()
    boxes.update(changes)
    return boxes


# ---------------------------------------------------------------------------
# a correct map
# ---------------------------------------------------------------------------


def test_correct_map_has_no_problem():
    result = _audit()
    assert set(_problems(result).values()) == {""}
    assert result.grids["households"].tolist() == [600] * 4
    assert result.grids["buildings"].tolist() == [4] * 4
    assert len(result.gaps) == 0
    r = result.report
    assert r["grids"] == 4 and r["grids_with_problems"] == 0
    assert r["problems"] == dict.fromkeys(PROBLEMS, 0)
    assert r["households"] == r["households_in_grids"] == 2400
    assert r["households_outside_grids"] == r["households_in_several_grids"] == 0
    assert r["households_outside_communities"] == 0
    assert (result.assignments["reason"] == "").all()
    assert result.grids["communities"].tolist() == [A1[:12], A1[:12], B1[:12], B1[:12]]


def test_correct_map_without_communities_has_no_problem():
    result = _audit(communities=False)
    assert set(_problems(result).values()) == {""}
    assert result.report["households_outside_communities"] is None
    assert result.grids["communities"].tolist() == [""] * 4


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cols=st.integers(1, 4),
    rows=st.integers(1, 3),
    sizes=st.lists(st.integers(400, 800), min_size=12, max_size=12),
)
def test_any_lattice_within_bounds_is_clean(cols, rows, sizes):
    """Property: an exact tiling whose grids hold 400-800 households has no problem."""
    grids, buildings = {}, []
    for i in range(cols):
        for j in range(rows):
            k = i * rows + j
            grids[f"420102001001{k + 1:03d}"] = box(i * 300, j * 300, (i + 1) * 300, (j + 1) * 300)
            buildings.append((f"B{k}", i * 300 + 150.0, j * 300 + 150.0, sizes[k]))
    g, b, _ = make_map(grids=grids, buildings=buildings)
    result = audit_grids(g, b)
    assert set(result.grids["problems"]) == {""}
    assert result.grids["households"].tolist() == sizes[: cols * rows]
    assert result.report["households_in_grids"] == sum(sizes[: cols * rows])
    assert result.report["gaps"] == 0


# ---------------------------------------------------------------------------
# each problem, alone
# ---------------------------------------------------------------------------


def test_below_min():
    rows = [(b, x, y, 50 if x < 500 else h) for b, x, y, h in building_rows()]
    result = _audit(buildings=rows)
    assert _problems(result) == {A1: "below_min", A2: "", B1: "", B2: ""}
    assert result.grids.loc[0, "households"] == 200
    assert result.report["problems"]["below_min"] == 1


def test_above_max():
    rows = [(b, x, y, 250 if 1000 < x < 1500 else h) for b, x, y, h in building_rows()]
    result = _audit(buildings=rows)
    assert _problems(result) == {A1: "", A2: "", B1: "above_max", B2: ""}
    assert result.grids.loc[2, "households"] == 1000


def test_bounds_are_parameters():
    result = _audit(min_households=601, max_households=900)
    assert set(_problems(result).values()) == {"below_min"}
    result = _audit(min_households=100, max_households=599)
    assert set(_problems(result).values()) == {"above_max"}


def test_not_contiguous():
    """A2 in two pieces; the strip between them belongs to A1, so the map still tiles."""
    boxes = _boxes(
        **{
            A1: shapely.union(box(0, 0, 500, 500), box(500, 250, 1000, 300)),
            A2: MultiPolygon([box(500, 0, 1000, 250), box(500, 300, 1000, 500)]),
        }
    )
    result = _audit(grids=boxes)
    assert _problems(result) == {A1: "", A2: "not_contiguous", B1: "", B2: ""}
    assert result.grids.loc[1, "pieces"] == 2
    assert result.report["gaps"] == 0


def test_overlap_and_households_in_several_grids():
    rows = [*building_rows(), ("B999", 530.0, 250.0, 100)]
    result = _audit(grids=_boxes(**{A1: box(0, 0, 560, 500)}), buildings=rows)
    assert _problems(result) == {A1: "overlap", A2: "overlap", B1: "", B2: ""}
    assert result.grids.loc[0, "overlap_m2"] == pytest.approx(60 * 500, rel=1e-3)
    assert result.grids.loc[0, "overlaps_with"] == A2
    assert result.grids.loc[1, "overlaps_with"] == A1
    assert result.grids["households"].tolist()[:2] == [700, 700]
    r = result.report
    assert r["households_in_several_grids"] == 100
    assert r["household_rows_in_several_grids"] == 1
    assert r["household_ids_in_several_grids"] == ["17"]
    assert r["overlap_area_m2"] == pytest.approx(30000, rel=1e-3)
    row = result.assignments.iloc[-1]
    assert row["reason"] == "several_grids" and row["grid_code"] == f"{A1};{A2}"


def test_outside_community():
    result = _audit(grids=_boxes(**{B2: box(1500, 0, 2050, 500)}))
    assert _problems(result) == {A1: "", A2: "", B1: "", B2: "outside_community"}
    assert result.grids.loc[3, "outside_m2"] == pytest.approx(50 * 500, rel=1e-3)


def test_crosses_community_into_the_neighbour():
    """A2 takes a strip of community B from B1: it crosses, and leaves its own community."""
    result = _audit(grids=_boxes(**{A2: box(500, 0, 1100, 500), B1: box(1100, 0, 1500, 500)}))
    assert _problems(result) == {
        A1: "",
        A2: "outside_community;crosses_community",
        B1: "",
        B2: "",
    }
    assert result.grids.loc[1, "communities"] == f"{A1[:12]};{B1[:12]}"
    assert result.report["grids_with_problems_detail"][0]["communities"] == [A1[:12], B1[:12]]


def test_crosses_community_without_community_ids():
    """Without a community column a grid is only checked against all communities together."""
    g, b, c = make_map(grids=_boxes(**{A2: box(500, 0, 1100, 500), B1: box(1100, 0, 1500, 500)}))
    g = g.drop(columns=["community_id"])
    result = audit_grids(g, b, communities=c)
    assert _problems(result) == {A1: "", A2: "crosses_community", B1: "", B2: ""}
    # the community holding most of each grid is filled in
    assert result.grids["community_id"].tolist() == [A1[:12], A1[:12], B1[:12], B1[:12]]


def test_gap_with_households():
    result = _audit(grids=_boxes(**{A1: box(0, 0, 300, 500)}))
    assert _problems(result) == {A1: "below_min", A2: "", B1: "", B2: ""}
    assert len(result.gaps) == 1
    gap = result.gaps.iloc[0]
    assert gap["gap_id"] == f"{A1[:12]}-gap01"
    assert gap["community_name"] == "江汉社区"
    assert gap["area_m2"] == pytest.approx(200 * 500, rel=1e-3)
    assert (gap["households"], gap["buildings"], gap["household_rows"]) == (300, 2, 2)
    r = result.report
    assert r["households_outside_grids"] == 300 and r["households_in_gaps"] == 300
    assert r["household_rows_outside_grids"] == 2
    assert r["household_ids_outside_grids"] == ["2", "4"]
    assert r["households_outside_communities"] == 0
    outside = result.assignments[result.assignments["reason"] == "outside_grids"]
    assert outside["gap_id"].tolist() == [gap["gap_id"]] * 2


def test_gaps_without_communities_are_holes_between_grids():
    hole = box(200, 200, 300, 300)
    result = _audit(grids=_boxes(**{A1: box(0, 0, 500, 500).difference(hole)}), communities=False)
    assert len(result.gaps) == 1
    assert result.gaps.iloc[0]["gap_id"] == "gap01"
    assert result.gaps.iloc[0]["community_id"] is None
    assert result.gaps.iloc[0]["area_m2"] == pytest.approx(10000, rel=1e-3)


def test_households_outside_every_community():
    rows = [*building_rows(), ("B999", 2500.0, 250.0, 70)]
    result = _audit(buildings=rows)
    assert set(_problems(result).values()) == {""}
    r = result.report
    assert r["households_outside_grids"] == 70
    assert r["households_outside_communities"] == 70
    assert r["households_in_gaps"] == 0


def test_every_problem_at_once_is_reported_per_code():
    """A map damaged in five ways: each code counted once, the last grid clean."""
    boxes = {
        A1: box(0, 0, 560, 500),  # overlap with A2
        A2: box(500, 0, 1100, 500),  # overlap, crosses into B, outside its community
        B1: MultiPolygon([box(1100, 0, 1500, 240), box(1100, 260, 1500, 500)]),  # 2 pieces
        B2: box(1500, 0, 2050, 500),  # outside every community
    }
    rows = [
        (b, x, y, 400 if x > 1500 else (20 if x < 500 else h)) for b, x, y, h in building_rows()
    ]
    result = _audit(grids=boxes, buildings=rows)
    assert _problems(result) == {
        A1: "below_min;overlap",
        A2: "overlap;outside_community;crosses_community",
        B1: "not_contiguous",
        B2: "above_max;outside_community",
    }
    assert result.report["problems"] == {
        "below_min": 1,
        "above_max": 1,
        "not_contiguous": 1,
        "overlap": 2,
        "outside_community": 2,
        "crosses_community": 1,
        "overlaps_dedicated": 0,
    }
    assert result.report["gaps"] == 1  # the strip between B1's pieces
    summary = format_summary(result.report)
    assert "grids with problems: 4 of 4" in summary
    assert f"{A2}: overlap;outside_community;crosses_community" in summary


# ---------------------------------------------------------------------------
# tolerances
# ---------------------------------------------------------------------------


def test_slivers_are_not_problems():
    """A border drawn 5 cm apart overlaps 25 m² and leaves a 25 m² gap: neither counts."""
    boxes = _boxes(
        **{
            A1: box(0, 0, 500.05, 500),  # 5 cm into A2
            B1: box(1000.05, 0, 1500, 500),  # 5 cm gap with A2
            B2: shapely.union(box(1500, 0, 2000, 500), box(1700, 600, 1700.5, 600.5)),  # crumb
        }
    )
    result = _audit(grids=boxes)
    assert set(_problems(result).values()) == {""}
    assert result.report["gaps"] == 0
    assert result.grids["pieces"].tolist() == [1, 1, 1, 1]
    strict = _audit(grids=boxes, tolerance_m2=0.1, sliver_width_m=0.01)
    assert _problems(strict)[A1] == "overlap"
    assert _problems(strict)[B2] == "not_contiguous;outside_community"
    assert strict.report["gaps"] == 1


def test_bad_parameters():
    with pytest.raises(InputError, match="swap them"):
        _audit(min_households=800, max_households=400)
    with pytest.raises(InputError, match="must be ≥ 0"):
        _audit(tolerance_m2=-1)


# ---------------------------------------------------------------------------
# reading grids
# ---------------------------------------------------------------------------


def test_read_grids_from_file_with_other_code_column(tmp_path):
    g, _, _ = make_map()
    path = to_geojson(g.rename(columns={"grid_code": "网格编码"}), tmp_path / "g.geojson")
    with pytest.raises(InputError, match=r"--grid-code-col"):
        read_grids(path)
    grids = read_grids(path, grid_code_col="网格编码")
    assert grids["grid_code"].tolist() == [A1, A2, B1, B2]
    assert grids["community_id"].tolist() == [A1[:12], A1[:12], B1[:12], B1[:12]]
    assert grids["row"].tolist() == [1, 2, 3, 4]


def test_read_grids_rejects_duplicated_and_missing_codes(tmp_path):
    g, _, _ = make_map()
    g.loc[1, "grid_code"] = A1
    g.loc[3, "grid_code"] = None
    path = to_geojson(g, tmp_path / "g.geojson")
    with pytest.raises(InputError) as info:
        read_grids(path)
    text = str(info.value)
    assert "rows 1, 2" in text and "dissolve" in text
    assert "row 4" in text and "give every grid a code" in text


def test_read_grids_rejects_points(tmp_path):
    _, b, _ = make_map()
    b = b.assign(grid_code=[f"X-{i:03d}" for i in range(len(b))])
    with pytest.raises(InputError, match="expected Polygon or MultiPolygon"):
        read_grids(b)


def test_read_grids_follows_the_crs_note_marker():
    from gridkit.crs import from_wgs84
    from gridkit.export.exchange import CRS_NOTES

    g, b, c = make_map()
    shifted = from_wgs84(g, "gcj02").assign(crs_note=CRS_NOTES["gcj02"])
    grids = read_grids(shifted)
    assert shapely.equals_exact(grids.geometry.to_numpy(), g.geometry.to_numpy(), 1e-8).all()
    with pytest.warns(GridkitWarning, match="marked gcj02"):
        read_grids(shifted, input_crs="wgs84")
    assert set(audit_grids(grids, b, communities=c).grids["problems"]) == {""}


def test_invalid_grid_is_repaired_with_a_warning():
    bowtie = shapely.Polygon([(0, 0), (500, 500), (500, 0), (0, 500), (0, 0)])
    g, b, c = make_map(grids=_boxes(**{A1: bowtie}))
    with pytest.warns(GridkitWarning, match="repaired 1 invalid geometry"):
        grids = read_grids(g)
    result = audit_grids(grids, b, communities=c)
    # the repaired bow tie is two triangles touching at a point, and leaves gaps
    assert "not_contiguous" in _problems(result)[A1]
    assert result.report["gaps"] == 2


# ---------------------------------------------------------------------------
# outputs, determinism, CLI
# ---------------------------------------------------------------------------


def test_write_outputs_and_determinism(tmp_path):
    boxes = _boxes(**{A1: box(0, 0, 300, 500)})
    first = _audit(grids=boxes).write(tmp_path / "one")
    second = _audit(grids=boxes).write(tmp_path / "two")
    assert sorted(p.name for p in first.values()) == [
        "assignments.csv",
        "audit.geojson",
        "gaps.geojson",
        "report.json",
    ]
    for key in first:
        assert first[key].read_bytes() == second[key].read_bytes(), key
    audit = gpd.read_file(first["audit"])
    for col in ("grid_code", "households", "buildings", "problems"):
        assert col in audit.columns
    assert audit["problems"].fillna("").tolist() == ["below_min", "", "", ""]
    gaps = gpd.read_file(first["gaps"])
    assert gaps["households"].tolist() == [300]
    report = json.loads(first["report"].read_text(encoding="utf-8"))
    for key in ("households_outside_grids", "households_in_several_grids", "problems"):
        assert key in report
    assert report["problems"]["below_min"] == 1


def test_empty_gaps_file_is_valid_geojson(tmp_path):
    paths = _audit().write(tmp_path)
    data = json.loads(paths["gaps"].read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and data["features"] == []


def test_audit_of_a_make_grids_result_matches_its_counts(tmp_path):
    """A gridkit-made map audits clean, with the same households and buildings per grid."""
    from gridkit.pipeline.plan import make_grids

    rng = np.random.default_rng(3)
    rows = [
        (f"B{k:03d}", 25 + rng.random() * 1950, 25 + rng.random() * 450, int(rng.integers(40, 90)))
        for k in range(40)
    ]
    _, b, c = make_map(buildings=rows)
    plan = make_grids(read_boundaries(c), read_households(b), time_limit=0.2, jobs=1)
    paths = plan.write(tmp_path)
    grids = read_grids(paths["grids"])
    result = audit_grids(grids, b, communities=c)
    ok = plan.grids["status"] == "ok"
    assert set(result.grids.loc[ok.to_numpy(), "problems"]) == {""}
    assert result.grids["households"].tolist() == plan.grids["households"].tolist()
    assert result.grids["buildings"].tolist() == plan.grids["buildings"].tolist()
    assert result.report["gaps"] == 0
    assert result.report["households_outside_grids"] == 0


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gridkit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_audit(tmp_path, capsys):
    g, b, c = make_map(grids=_boxes(**{A1: box(0, 0, 560, 500)}))
    files = {
        "grids": to_geojson(g.rename(columns={"grid_code": "code"}), tmp_path / "grids.geojson"),
        "households": tmp_path / "households.csv",
        "communities": to_geojson(c, tmp_path / "communities.geojson"),
    }
    xy = b.geometry.get_coordinates()
    b.drop(columns="geometry").assign(lon=xy["x"], lat=xy["y"]).rename(
        columns={"households": "户数"}
    ).to_csv(files["households"], index=False)
    argv = [
        "audit",
        "--grids", str(files["grids"]),
        "--grid-code-col", "code",
        "--households", str(files["households"]),
        "--households-col", "户数",
        "--id-col", "building_id",
        "--communities", str(files["communities"]),
        "--input-crs", "wgs84",
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    assert _cli(argv) == 0
    out = capsys.readouterr().out
    assert "grids with problems: 2 of 4" in out
    assert "overlap 2" in out
    assert (tmp_path / "out" / "audit.geojson").is_file()
    assert _cli([*argv, "--strict", "-q"]) == 1
    assert capsys.readouterr().out == ""


def test_cli_audit_bad_input_names_the_option(tmp_path):
    g, b, _ = make_map()
    grids = to_geojson(g, tmp_path / "grids.geojson")
    homes = to_geojson(b, tmp_path / "homes.geojson")
    with pytest.raises(InputError, match="--grid-code-col"):
        _cli(
            [
                "audit",
                "--grids",
                str(grids),
                "--households",
                str(homes),
                "--grid-code-col",
                "nope",
                "--out",
                str(tmp_path / "o"),
            ]
        )


def test_origin_constants_are_in_wuhan():
    """Guard for the fixtures: the lattice sits where the docstrings say."""
    assert 200_000 < X0 < 300_000 and 3_300_000 < Y0 < 3_450_000
