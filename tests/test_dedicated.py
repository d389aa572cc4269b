"""Dedicated grids (专属网格) and the hierarchy on every grid (issue 21).

The acceptance case: three communities of the sample district (``make_sample(seed=0)``)
with three parcels drawn inside them, a school, a hospital and a park.  Each parcel
becomes one grid equal to it (area within 0.1 %), no residential grid overlaps it
(less than 1 m²), the residential grids stay in bounds, ``audit`` flags a hand-drawn
residential grid over the school, ``regenerate`` keeps the dedicated grids and their
codes.  Then the rules around them (codes, parcels across or outside communities,
households inside a parcel), the file-to-file run, the command line, hostile inputs,
the hierarchy columns, and a property test on random rectangles.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import jsonschema
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridkit import checks
from gridkit.audit import audit_grids
from gridkit.cli.commands import main
from gridkit.codes import community_divisions
from gridkit.contracts import GRID_COLUMNS, IN_BOUNDS_STATUSES
from gridkit.datasets import make_sample
from gridkit.errors import GridkitWarning, InputError
from gridkit.export import export_layers, grids_schema, headline
from gridkit.io import read_dedicated
from gridkit.pipeline import make_grids, partition_files
from gridkit.regenerate import regenerate
from gridkit.units import carve_parcels

#: Three sample communities: 1,200 households (the school), 1,194 (the hospital) and 850
#: (the park; two grids of 400-450 only, so the park must hold no household).
SCHOOL_IN, HOSPITAL_IN, PARK_IN = "420204001002", "420204001004", "420204002002"
TIME = 1.0


def _metric(frame: gpd.GeoDataFrame):
    return frame.estimate_utm_crs()


@pytest.fixture(scope="module")
def district():
    communities, buildings = make_sample(seed=0)
    ids = [SCHOOL_IN, HOSPITAL_IN, PARK_IN]
    c = communities[communities["community_id"].isin(ids)].reset_index(drop=True)
    b = buildings[buildings["community_id"].isin(ids)].reset_index(drop=True)
    return c, b


def _empty_box(outline, points, half: float):
    """The box of ``half`` metres holding no point, inside ``outline``, farthest from them."""
    x0, y0, x1, y1 = outline.bounds
    best, gap = None, -1.0
    for x in np.linspace(x0, x1, 40):
        for y in np.linspace(y0, y1, 40):
            box = shapely.box(x - half, y - half, x + half, y + half)
            if not outline.contains(box):
                continue
            d = float(shapely.distance(box, points).min())
            if d > gap:
                best, gap = box, d
    assert best is not None and gap > 0
    return best


@pytest.fixture(scope="module")
def parcels(district):
    """A school and a park on empty land, a hospital around the smallest building."""
    c, b = district
    metric = _metric(c)
    cm = c.to_crs(metric).set_index("community_id").geometry
    bm = b.to_crs(metric)
    pts = {cid: bm.geometry[bm["community_id"] == cid].to_numpy() for cid in cm.index}
    school = _empty_box(cm[SCHOOL_IN], pts[SCHOOL_IN], 45)
    park = _empty_box(cm[PARK_IN], pts[PARK_IN], 35)
    small = bm[bm["community_id"] == HOSPITAL_IN].sort_values("households").iloc[0]
    hospital = small.geometry.buffer(20, cap_style="square").intersection(cm[HOSPITAL_IN])
    frame = gpd.GeoDataFrame(
        {"类型": ["学校", "医院", "公园"], "名称": ["第一中学", None, "<script>alert(1)</script>"]},
        geometry=[school, hospital, park],
        crs=metric,
    ).to_crs(4326)
    return read_dedicated(frame)


@pytest.fixture(scope="module")
def plan(district, parcels):
    c, b = district
    return make_grids(c, b, time_limit=TIME, jobs=1, dedicated=parcels)


def _dedicated(grids):
    return grids[grids["status"] == "dedicated"]


def _residential(grids):
    return grids[grids["status"] != "dedicated"]


# ---------------------------------------------------------------------------
# acceptance
# ---------------------------------------------------------------------------


def test_each_parcel_is_one_grid_equal_to_it(plan, parcels):
    metric = _metric(plan.grids)
    grids = plan.grids.to_crs(metric)
    ded = _dedicated(grids)
    assert sorted(ded["grid_type"]) == ["hospital", "park", "school"]
    for parcel, kind in zip(parcels.to_crs(metric).geometry, parcels["type"], strict=True):
        mine = ded[ded["grid_type"] == kind]
        assert len(mine) == 1
        grid = mine.geometry.iloc[0]
        assert abs(grid.area - parcel.area) / parcel.area < 0.001
        assert shapely.symmetric_difference(grid, parcel).area < 1.0
        assert mine["grid_code"].iloc[0][-3:] == "901"  # one parcel per community here
    names = dict(zip(ded["grid_type"], ded["grid_name"], strict=True))
    assert names["school"] == "第一中学"
    assert names["hospital"] == "胜利社区医院"  # no name: the community and the type in words


def test_no_residential_grid_overlaps_a_parcel(plan, parcels):
    metric = _metric(plan.grids)
    res = _residential(plan.grids).to_crs(metric).geometry.to_numpy()
    for parcel in parcels.to_crs(metric).geometry:
        assert shapely.area(shapely.intersection(res, parcel)).sum() < 1.0


def test_residential_grids_stay_in_bounds_and_tile_the_rest(plan, district):
    c, b = district
    res = _residential(plan.grids)
    assert set(res["status"]) <= set(IN_BOUNDS_STATUSES)
    assert res["households"].between(400, 800).all()
    assert (res["grid_type"] == "comprehensive").all()
    assert (res["grid_code"].str[-3:].astype(int) < 900).all()
    problems = checks.verify_partition(
        plan.grids, c, assignments=plan.assignments, households=b.assign(
            household_id=b["building_id"]
        ),
    )  # fmt: skip
    assert not any(problems.values()), problems


def test_households_in_a_parcel_belong_to_its_grid(plan, district, parcels):
    _, b = district
    hospital = parcels[parcels["type"] == "hospital"].geometry.iloc[0]
    inside = b[b.within(hospital)]
    assert len(inside) >= 1
    code = _dedicated(plan.grids).set_index("grid_type").loc["hospital", "grid_code"]
    got = plan.assignments.set_index("household_id").loc[inside["building_id"], "grid_code"]
    assert (got == code).all()
    grid = plan.grids.set_index("grid_code").loc[code]
    assert grid["households"] == inside["households"].sum()
    assert grid["buildings"] == len(inside)
    assert grid["compounds"] == "、".join(sorted(set(inside["compound"])))
    assert plan.assignments["reason"].eq("").all()
    # the buildings layer lists residential buildings only
    assert not set(inside["building_id"]) & set(plan.buildings["building_id"])


def test_headline_and_report_count_dedicated_grids_apart(plan):
    t = plan.report["totals"]
    assert t["grids_by_status"]["dedicated"] == 3
    assert t["dedicated_grids"] == 3
    assert t["grids"] == len(plan.grids)
    assert t["pct_grids_in_bounds"] == 100.0
    assert t["grids_in_bounds"] == len(_residential(plan.grids))
    text = headline(t["grids_by_status"], lang="en")
    assert text.endswith("; plus 3 dedicated grids") and "(100.0 %)" in text
    assert "另有专属网格 3 个" in headline(t["grids_by_status"], lang="zh")
    for entry in plan.report["communities"]:
        assert entry["dedicated_grids"] == 1
        assert entry["bounds_met"] is True


def test_audit_flags_a_hand_drawn_grid_over_the_school(plan, district, parcels):
    c, b = district
    g = plan.grids.copy()
    school = g.index[g["grid_type"] == "school"][0]
    neighbour = g.index[(g["community_id"] == SCHOOL_IN) & (g["status"] != "dedicated")][0]
    hand = g.copy()
    hand.loc[neighbour, "geometry"] = hand.geometry[neighbour].union(hand.geometry[school])
    result = audit_grids(hand, b, communities=c)
    codes = dict(zip(result.grids["grid_code"], result.grids["problems"], strict=True))
    assert "overlaps_dedicated" in codes[g.at[neighbour, "grid_code"]].split(";")
    assert "overlaps_dedicated" not in codes[g.at[school, "grid_code"]]
    # a hand-drawn map without grid types: the parcels given to the audit
    plain = hand.drop(index=school)[["grid_code", "community_id", "geometry"]]
    plain = plain[plain["grid_code"].str[-3:].astype(int) < 900]
    result = audit_grids(plain, b, communities=c, dedicated=parcels)
    row = result.grids.set_index("grid_code").loc[g.at[neighbour, "grid_code"]]
    assert row["problems"].split(";") == ["overlaps_dedicated"]
    assert row["dedicated_overlaps"] == "parcel 第一中学"
    area = parcels.to_crs(_metric(c)).geometry.iloc[0].area
    assert abs(row["dedicated_overlap_m2"] - area) < 1.0
    assert result.report["gaps"] == 0  # the parcels are no gap
    detail = result.report["grids_with_problems_detail"]
    assert any(d.get("dedicated_overlaps") == ["parcel 第一中学"] for d in detail)


def test_regenerate_keeps_the_dedicated_grids_and_their_codes(plan, district, parcels, tmp_path):
    c, b = district
    plan.write(tmp_path / "v1")
    same = regenerate(tmp_path / "v1", c, b, time_limit=TIME, jobs=1, dedicated=parcels)
    same.write(tmp_path / "v2")
    assert (tmp_path / "v1/grids.geojson").read_bytes() == (
        tmp_path / "v2/grids.geojson"
    ).read_bytes()
    assert same.summary["retired_codes"] == [] and len(same.changes) == 0
    # the school is gone, a market opens: its code is new, the school's is retired
    metric = _metric(c)
    school = parcels.to_crs(metric).geometry.iloc[0]
    market = gpd.GeoDataFrame(
        {"type": ["market"], "name": ["菜市场"]},
        geometry=[shapely.affinity.translate(school, 0, 0).buffer(-15)],
        crs=metric,
    ).to_crs(4326)
    changed = read_dedicated(
        pd.concat([parcels.iloc[1:][["type", "name", "geometry"]], market], ignore_index=True)
    )
    moved = regenerate(tmp_path / "v2", c, b, time_limit=TIME, jobs=1, dedicated=changed)
    moved.write(tmp_path / "v3")
    old = _dedicated(plan.grids).set_index("grid_type")["grid_code"]
    new = _dedicated(moved.grids).set_index("grid_type")["grid_code"]
    assert new["hospital"] == old["hospital"] and new["park"] == old["park"]
    assert new["market"] == f"{SCHOOL_IN}902"
    assert moved.summary["retired_codes"] == [old["school"]]
    codes = json.loads((tmp_path / "v3/codes.json").read_text(encoding="utf-8"))
    assert old["school"] in codes["communities"][SCHOOL_IN]["retired"]
    # the school comes back: a new code, the retired one is never reused
    back = regenerate(tmp_path / "v3", c, b, time_limit=TIME, jobs=1, dedicated=parcels)
    assert _dedicated(back.grids).set_index("grid_type").at["school", "grid_code"] == (
        f"{SCHOOL_IN}903"
    )
    # residential grids keep numbering below the dedicated block
    assert (_residential(back.grids)["grid_code"].str[-3:].astype(int) < 900).all()


def test_regenerate_without_the_parcels_warns_and_retires_them(plan, district, tmp_path):
    c, b = district
    plan.write(tmp_path / "v1")
    with pytest.warns(GridkitWarning, match="dedicated grid"):
        redrawn = regenerate(tmp_path / "v1", c, b, time_limit=TIME, jobs=1)
    assert len(_dedicated(redrawn.grids)) == 0
    assert sorted(redrawn.summary["retired_codes"]) == sorted(_dedicated(plan.grids)["grid_code"])


# ---------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------


def _boxes(c, specs):
    """Parcels from ``(type, name, community, (fx0, fy0, fx1, fy1))`` boxes, fractions of
    the community's bounding box."""
    metric = _metric(c)
    cm = c.to_crs(metric).set_index("community_id").geometry
    geoms = []
    for _, _, cid, (a, b_, c_, d) in specs:
        x0, y0, x1, y1 = cm[cid].bounds
        geoms.append(shapely.box(x0 + a * (x1 - x0), y0 + b_ * (y1 - y0),
                                 x0 + c_ * (x1 - x0), y0 + d * (y1 - y0)))  # fmt: skip
    frame = gpd.GeoDataFrame(
        {"type": [s[0] for s in specs], "name": [s[1] for s in specs]}, geometry=geoms, crs=metric
    ).to_crs(4326)
    return read_dedicated(frame)


def _square_district():
    """Two 1 km squares side by side (UTM 50N, Huangshi), ``C01`` west of ``C02``."""
    c = gpd.GeoDataFrame(
        {"community_id": ["C01", "C02"], "community_name": ["西社区", "东社区"]},
        geometry=[shapely.box(500_000, 3_340_000, 501_000, 3_341_000),
                  shapely.box(501_000, 3_340_000, 502_000, 3_341_000)],
        crs=32650,
    )  # fmt: skip
    return c


def _parcels(specs, crs=32650):
    return read_dedicated(gpd.GeoDataFrame(
        {"type": [s[0] for s in specs], "name": [s[1] for s in specs]},
        geometry=[shapely.box(*s[2]) for s in specs], crs=crs,
    ))  # fmt: skip


def test_codes_follow_the_name_then_the_row():
    c = _square_district()
    parcels = _parcels([
        ("park", "二号公园", (500_100, 3_340_100, 500_200, 3_340_200)),
        ("enterprise", None, (500_300, 3_340_100, 500_400, 3_340_200)),
        ("school", "一中", (500_500, 3_340_100, 500_600, 3_340_200)),
        ("market", None, (500_700, 3_340_100, 500_800, 3_340_200)),
        ("hospital", None, (501_100, 3_340_100, 501_200, 3_340_200)),
    ])  # fmt: skip
    carving = carve_parcels(c, parcels)
    codes = dict(zip(carving.pieces["grid_type"], carving.pieces["grid_code"], strict=True))
    assert [codes[t] for t in ("school", "park", "enterprise", "market", "hospital")] == [
        "C01-901", "C01-902", "C01-903", "C01-904", "C02-901"
    ]  # fmt: skip
    names = dict(zip(carving.pieces["grid_type"], carving.pieces["grid_name"], strict=True))
    assert names["market"] == "西社区市场" and names["school"] == "一中"
    # the residential remainder: the community less its parcels, exactly
    res = carving.residential.set_index("community_id").geometry
    assert abs(res["C01"].area - (1_000_000 - 4 * 10_000)) < 1e-6


def test_previous_codes_are_kept_and_new_ones_never_reuse_an_issued_one():
    c = _square_district()
    first = carve_parcels(c, _parcels([
        ("school", "一中", (500_100, 3_340_100, 500_200, 3_340_200)),
        ("park", "公园", (500_300, 3_340_100, 500_400, 3_340_200)),
    ]))  # fmt: skip
    previous = first.pieces.assign(status="dedicated")
    # the school is redrawn a little larger, the park removed, a market added
    again = carve_parcels(c, _parcels([
        ("market", "菜场", (500_600, 3_340_100, 500_700, 3_340_200)),
        ("school", "一中", (500_100, 3_340_100, 500_210, 3_340_200)),
    ]), previous=previous, issued={"C01": ["C01-001", "C01-901", "C01-902", "C01-905"]})
    codes = dict(zip(again.pieces["grid_type"], again.pieces["grid_code"], strict=True))
    assert codes == {"school": "C01-901", "market": "C01-906"}


def _square_households():
    """A building of 30 households every 100 m in both squares (750 per community)."""
    xy = [(500_050 + 100 * i, 3_340_050 + 100 * j) for i in range(20) for j in range(0, 10, 2)]
    xy += [(500_050 + 100 * i, 3_340_150 + 100 * j) for i in range(20) for j in range(0, 10, 2)]
    pts = gpd.GeoDataFrame(
        {"building_id": [f"B{k:03d}" for k in range(len(xy))], "households": 30},
        geometry=gpd.points_from_xy(*zip(*xy, strict=True)), crs=32650,
    )  # fmt: skip
    return pts.to_crs(4326)


def test_parcel_across_two_communities_and_outside_every_one():
    c = _square_district()
    b = _square_households()
    parcels = _parcels([
        ("企业", "跨界厂区", (500_900, 3_340_420, 501_080, 3_340_480)),  # across the line
        ("学校", "远处学校", (510_000, 3_350_000, 510_100, 3_350_100)),  # far away
    ])  # fmt: skip
    with pytest.warns(GridkitWarning, match="outside every community"):
        plan = make_grids(c, b, time_limit=TIME, jobs=1, dedicated=parcels)
    ded = _dedicated(plan.grids)
    assert sorted(ded["grid_code"]) == ["C01-901", "C02-901"]
    assert set(ded["grid_name"]) == {"跨界厂区"} and set(ded["grid_type"]) == {"enterprise"}
    areas = ded.to_crs(32650).set_index("community_id").area
    assert abs(areas["C01"] - 100 * 60) < 1 and abs(areas["C02"] - 80 * 60) < 1
    notes = {e["community_id"]: " ".join(e["notes"]) for e in plan.report["communities"]}
    assert "spans communities C01, C02" in notes["C01"] and "spans communities" in notes["C02"]
    # information, not a problem
    assert not plan.report["attention"]
    assert checks.tiling_error(plan.grids, c).max() < 1e-9


def test_part_of_a_parcel_outside_is_dropped_with_a_note():
    c = _square_district()
    poking = _parcels([("park", None, (501_900, 3_340_400, 502_100, 3_340_500))])
    with pytest.warns(GridkitWarning, match="in part"):
        carving = carve_parcels(c, poking)
    assert carving.pieces["grid_code"].tolist() == ["C02-901"]
    assert abs(carving.pieces.to_crs(32650).area.sum() - 100 * 100) < 1e-6
    assert any("10,000 m² lie outside every community" in n for n in carving.notes["C02"])
    # a note that asks for action (attention list), not a silent loss
    b = _square_households()
    with pytest.warns(GridkitWarning, match="in part"):
        plan = make_grids(c, b, time_limit=TIME, jobs=1, dedicated=poking)
    assert [a["cause"] for a in plan.report["attention"]] == ["dedicated_outside"]


def test_the_file_to_file_run_makes_the_same_dedicated_grids(district, parcels, plan, tmp_path):
    c, b = district
    run = partition_files(
        c, b.assign(household_id=b["building_id"]), tmp_path / "batch", time_limit=TIME,
        jobs=1, dedicated=parcels, chunk_rows=25,
    )  # fmt: skip
    plan.write(tmp_path / "memory")
    assert (tmp_path / "batch/grids.geojson").read_bytes() == (
        tmp_path / "memory/grids.geojson"
    ).read_bytes()
    a = pd.read_csv(tmp_path / "batch/assignments.csv", dtype=str, keep_default_na=False)
    m = pd.read_csv(tmp_path / "memory/assignments.csv", dtype=str, keep_default_na=False)
    assert a[["row", "community_id", "grid_code", "reason"]].equals(
        m[["row", "community_id", "grid_code", "reason"]]
    )
    assert run.report["totals"]["dedicated_grids"] == 3


# ---------------------------------------------------------------------------
# command line, exports, schema
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_dir(district, parcels, tmp_path_factory) -> Path:
    c, b = district
    d = tmp_path_factory.mktemp("dedicated_cli")
    c.to_file(d / "c.geojson")
    b.to_file(d / "b.geojson")
    # another CRS, Chinese column names, a GeoPackage
    parcels.rename(columns={"type": "类型", "name": "名称"}).to_crs(3857).to_file(
        d / "parcels.gpkg"
    )
    argv = ["partition", "--communities", str(d / "c.geojson"), "--households",
            str(d / "b.geojson"), "--id-col", "building_id", "--dedicated",
            str(d / "parcels.gpkg"), "--time-limit", str(TIME), "--jobs", "1", "-q"]  # fmt: skip
    assert main([*argv, "--out", str(d / "plan")]) == 0
    return d


def test_cli_partition_audit_regenerate_with_dedicated(cli_dir, capsys):
    d = cli_dir
    grids = gpd.read_file(d / "plan/grids.geojson")
    assert list(grids.columns) == [*GRID_COLUMNS, "geometry"]
    assert sorted(_dedicated(grids)["grid_type"]) == ["hospital", "park", "school"]
    html = (d / "plan/map.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html  # the park's name, escaped
    assert "\\u0026lt;script\\u0026gt;alert(1)" in html or "&lt;script&gt;alert(1)" in html
    base = ["--households", str(d / "b.geojson"), "--id-col", "building_id"]
    assert main(["audit", "--grids", str(d / "plan"), *base, "--communities",
                 str(d / "c.geojson"), "--dedicated", str(d / "parcels.gpkg"),
                 "--out", str(d / "audit"), "--lang", "en"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "overlaps_dedicated 0" in out and "plus 3 dedicated grids" in out
    assert main(["regenerate", "--previous", str(d / "plan"), "--communities",
                 str(d / "c.geojson"), *base, "--dedicated", str(d / "parcels.gpkg"),
                 "--time-limit", str(TIME), "--jobs", "1", "-q", "--out",
                 str(d / "regen")]) == 0  # fmt: skip
    assert (d / "plan/grids.geojson").read_bytes() == (d / "regen/grids.geojson").read_bytes()


def test_cli_dedicated_options_need_the_file(cli_dir, capsys):
    d = cli_dir
    code = main(["partition", "--communities", str(d / "c.geojson"), "--households",
                 str(d / "b.geojson"), "--dedicated-type-col", "kind", "--out",
                 str(d / "x"), "-q"])  # fmt: skip
    assert code == 2
    assert "--dedicated-type-col needs --dedicated PATH" in capsys.readouterr().err


def test_exports_carry_the_new_columns(cli_dir, tmp_path):
    written = export_layers(cli_dir / "plan", tmp_path / "x.shp")
    shp = gpd.read_file(written[0])
    for short in ("grid_type", "street_cd", "dist_code", "dist_name", "compounds"):
        assert short in shp.columns
    assert sorted(shp.loc[shp["status"] == "dedicated", "grid_type"]) == [
        "hospital", "park", "school"
    ]  # fmt: skip
    gpkg = gpd.read_file(export_layers(cli_dir / "plan", tmp_path / "x.gpkg")[0], layer="grids")
    assert {"grid_type", "street_code", "district_code", "district_name", "compounds"} <= set(
        gpkg.columns
    )
    validator = jsonschema.Draft202012Validator(grids_schema())
    for feature in json.loads((cli_dir / "plan/grids.geojson").read_text("utf-8"))["features"]:
        assert list(validator.iter_errors(feature["properties"])) == []


# ---------------------------------------------------------------------------
# hostile inputs
# ---------------------------------------------------------------------------


def test_reader_names_the_file_the_rows_and_the_fix(tmp_path):
    good = shapely.box(115.0, 30.2, 115.001, 30.201)
    frame = gpd.GeoDataFrame(
        {"type": ["school", None, "park", "market"]},
        geometry=[good, shapely.box(115.01, 30.2, 115.011, 30.201), shapely.Polygon(),
                  shapely.Point(115.02, 30.2)],
        crs=4326,
    )  # fmt: skip
    path = tmp_path / "parcels.geojson"
    frame.to_file(path)
    with pytest.raises(InputError) as err:
        read_dedicated(path)
    text = str(err.value)
    assert str(path) in text
    assert "no type at row 2" in text and "give every parcel a type" in text
    assert "row 3" in text and "draw the missing features or delete" in text
    assert "Point at row 4" in text and "closed polygons" in text
    with pytest.raises(InputError, match="no parcel type column found"):
        read_dedicated(frame.rename(columns={"type": "what"}))
    with pytest.raises(InputError, match="not found"):
        read_dedicated(tmp_path / "missing.geojson")


def test_an_invalid_parcel_is_repaired_and_overlapping_ones_refused():
    bowtie = shapely.Polygon([(115.0, 30.2), (115.001, 30.201), (115.001, 30.2), (115.0, 30.201)])
    frame = gpd.GeoDataFrame({"type": ["学校"]}, geometry=[bowtie], crs=4326)
    with pytest.warns(GridkitWarning, match="repaired 1 invalid geometry"):
        out = read_dedicated(frame)
    assert out.geometry.is_valid.all() and out["type"].tolist() == ["school"]
    two = gpd.GeoDataFrame(
        {"type": ["school", "park"], "name": ["一中", "公园"]},
        geometry=[shapely.box(115.0, 30.2, 115.002, 30.202),
                  shapely.box(115.001, 30.2, 115.003, 30.202)],
        crs=4326,
    )  # fmt: skip
    with pytest.raises(InputError, match=r"row 1 \(一中\) and row 2 \(公园\)"):
        read_dedicated(two)


def test_types_in_chinese_are_mapped_and_others_kept():
    frame = gpd.GeoDataFrame(
        {"类型": ["学校", "医院", "公园", "企业", "市场", "Hospital", "养老院"]},
        geometry=[shapely.box(115 + k * 0.01, 30.2, 115.001 + k * 0.01, 30.201) for k in range(7)],
        crs=4326,
    )
    assert read_dedicated(frame)["type"].tolist() == [
        "school", "hospital", "park", "enterprise", "market", "hospital", "养老院"
    ]  # fmt: skip


# ---------------------------------------------------------------------------
# the hierarchy on every grid
# ---------------------------------------------------------------------------


def test_hierarchy_from_codes_or_columns():
    frame = pd.DataFrame(
        {
            "community_id": ["420204001003", "C1", "C2", "C3"],
            "street_code": [None, "420204005", "S9", None],
            "district_code": [None, None, "D1", None],
            "区县": ["下陆区", "下陆区", None, None],
        }
    )
    got = community_divisions(frame)
    assert got["street_code"].tolist() == ["420204001", "420204005", "S9", None]
    assert got["district_code"].tolist() == ["420204", "420204", "D1", None]
    assert got["district_name"].tolist() == ["下陆区", "下陆区", None, None]


def test_grids_carry_the_hierarchy_and_their_compounds(plan):
    g = plan.grids
    assert list(g.columns) == [*GRID_COLUMNS, "geometry"]
    assert (g["street_code"] == g["community_id"].str[:9]).all()
    assert (g["district_code"] == "420204").all()
    assert g["district_name"].isna().all()
    # compounds: the compounds of the buildings in each residential grid
    buildings = plan.buildings
    assert buildings["compound"].notna().all()
    expected = buildings.groupby("grid_code")["compound"].agg(lambda s: "、".join(sorted(set(s))))
    res = _residential(g).set_index("grid_code")["compounds"]
    assert res.to_dict() == expected.reindex(res.index).to_dict()


def test_district_name_from_the_communities_file(district):
    c, b = district
    named = c.assign(区="下陆区")
    one = named["community_id"] == PARK_IN
    plan = make_grids(named[one], b[b["community_id"] == PARK_IN], time_limit=TIME, jobs=1)
    assert set(plan.grids["district_name"]) == {"下陆区"}


# ---------------------------------------------------------------------------
# property: random rectangles as parcels
# ---------------------------------------------------------------------------

_FRACTION = st.floats(min_value=-0.2, max_value=1.2, allow_nan=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(boxes=st.lists(st.tuples(_FRACTION, _FRACTION, _FRACTION, _FRACTION), min_size=1,
                      max_size=3))  # fmt: skip
def test_random_rectangles_keep_every_guarantee(district, boxes):
    """Every household in exactly one grid or listed as outside, no overlap, no gap."""
    c, b = district
    c = c[c["community_id"] == PARK_IN].reset_index(drop=True)
    b = b[b["community_id"] == PARK_IN].reset_index(drop=True)
    metric = _metric(c)
    x0, y0, x1, y1 = c.to_crs(metric).total_bounds
    geoms = []
    for fa, fb, fc, fd in boxes:
        xa, xb = sorted((x0 + fa * (x1 - x0), x0 + fc * (x1 - x0)))
        ya, yb = sorted((y0 + fb * (y1 - y0), y0 + fd * (y1 - y0)))
        geoms.append(shapely.box(xa, ya, xa + max(xb - xa, 5.0), ya + max(yb - ya, 5.0)))
    # parcels of one file never overlap: each box less the boxes before it
    kept = []
    for geom in geoms:
        rest = geom.difference(shapely.union_all(kept)) if kept else geom
        if rest.area > 25 and 2 * rest.area / rest.length > 1:
            kept.append(rest)
    if not kept:
        return
    frame = gpd.GeoDataFrame({"type": ["park"] * len(kept)}, geometry=kept, crs=metric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        parcels = read_dedicated(frame.to_crs(4326))
        plan = make_grids(c, b, time_limit=0.5, jobs=1, dedicated=parcels)
    households = b.assign(household_id=b["building_id"])
    assert checks.accounted_for(plan.assignments, households)
    assigned = plan.assignments["grid_code"] != ""
    assert plan.assignments.loc[assigned, "grid_code"].isin(plan.grids["grid_code"]).all()
    by_grid = households["households"].groupby(plan.assignments["grid_code"].to_numpy()).sum()
    assert by_grid.reindex(plan.grids["grid_code"]).fillna(0).astype(int).tolist() == (
        plan.grids["households"].tolist()
    )
    g = plan.grids.to_crs(metric).geometry.to_numpy()
    left, right = shapely.STRtree(g).query(g, predicate="intersects")
    pairs = left < right
    assert shapely.area(shapely.intersection(g[left[pairs]], g[right[pairs]])).sum() < 1.0
    assert checks.tiling_error(plan.grids, c).max() < 1e-6
    # the dedicated grids are the parcels within the community
    outline = c.to_crs(metric).geometry.iloc[0]
    want = shapely.union_all(kept).intersection(outline).area
    got = _dedicated(plan.grids).to_crs(metric).area.sum()
    assert abs(got - want) < max(2.0, 0.001 * want)


def test_residential_codes_stop_below_the_dedicated_block():
    """Residential grids are numbered 001-899; 9xx belong to dedicated grids."""
    from gridkit.codes import DEDICATED_BLOCK, dedicated_grid_code, residential_grid_code

    assert residential_grid_code("420204001003", DEDICATED_BLOCK - 1) == "420204001003899"
    with pytest.raises(InputError, match=r"residential grid number 900.*9xx are dedicated"):
        residential_grid_code("420204001003", DEDICATED_BLOCK)
    assert dedicated_grid_code("420204001003", 1) == "420204001003901"
