"""The first hour of a planner (issue 19): one honest headline, a short grouped attention list.

A district with a compound given as one point of 2,400 households and no building count
(an ``oversize_compound`` grid), a community too small for one grid and ordinary
compounds: the headline counts every grid, the attention list names each cause once,
with the compound and the communities by name and without solver jargon.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely

import gridkit as gk
from gridkit.cli.files import print_summary
from gridkit.export import headlines as attention

X0, Y0 = 500_000.0, 3_340_000.0
CRS = 32650


@pytest.fixture(scope="module")
def district():
    """Two communities: 路东社区 with compounds as points, 小桥社区 with 250 households.

    Made with :func:`gridkit.make_grids`: ``gridkit partition`` itself fails on an empty
    building count read from a file (``shard`` turns it into the text 'nan'; reported).
    """
    communities = gpd.GeoDataFrame(
        {
            "community_id": ["420204001001", "420204001002"],
            "community_name": ["路东社区", "小桥社区"],
            "street": ["测试街道", "测试街道"],
        },
        geometry=[
            shapely.box(X0, Y0, X0 + 400, Y0 + 400),
            shapely.box(X0 + 400, Y0, X0 + 600, Y0 + 400),
        ],
        crs=CRS,
    )
    compounds = gpd.GeoDataFrame(
        {
            "name": ["锦绣花园", "幸福里", "桃源居", "滨江苑", "和平小区", "小桥人家"],
            "households": [2400, 300, 350, 500, 420, 250],
            "buildings": [None, 6, 5, 8, 7, 4],
        },
        geometry=gpd.points_from_xy(
            np.array([200, 60, 340, 80, 320, 500]) + X0,
            np.array([200, 60, 60, 340, 340, 200]) + Y0,
        ),
        crs=CRS,
    )
    return gk.make_grids(communities, compounds, jobs=1, time_limit=1)


def _run(plan, lang, capsys) -> tuple[str, dict, gpd.GeoDataFrame]:
    print_summary(plan.report, {}, lang=lang)
    return capsys.readouterr().out, plan.report, plan.grids


def test_headline_counts_every_grid_with_an_oversize_compound(district, capsys):
    out, report, grids = _run(district, "en", capsys)
    statuses = grids["status"].value_counts()
    assert statuses.get("oversize_compound") == 1 and statuses.get("below_min") == 1
    inside = int(grids["status"].isin(attention.IN_BOUNDS_STATUSES).sum())
    pct = attention.pct_text(inside, len(grids))
    expected = f"in bounds: {inside} of {len(grids)} grids ({pct} %); others: "
    assert expected in out
    assert "1 oversize compound (buildings unknown)" in out and "1 below the minimum" in out
    assert inside < len(grids) and "100.0" not in out.split("\n")[1]
    # the same figures in report.json
    assert report["totals"]["grids_in_bounds"] == inside
    assert report["totals"]["pct_grids_in_bounds"] == pytest.approx(100 * inside / len(grids), 0.01)
    assert "where feasible" not in out


def test_attention_is_grouped_named_and_plain(district, capsys):
    out, report, _ = _run(district, "en", capsys)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "needing attention" in line)
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        block.append(line)
    causes = [line for line in block if not line.startswith("      ")]
    items = [line for line in block if line.startswith("      ")]
    # each cause once, with what to do
    assert len(causes) == len(set(causes)) == 2
    assert any(
        "compounds above the maximum" in c and "--compound-buildings-col" in c for c in causes
    )
    assert any("too small for one grid" in c and "--min-households" in c for c in causes)
    # named by name: the compound, its community, the small community
    assert sum("锦绣花园" in line for line in items) == 1
    assert any("路东社区" in line and "2400 households" in line for line in items)
    assert any("小桥社区" in line for line in items)
    assert not re.search(r"CP-SAT|warm start|UNKNOWN|row \d+", "\n".join(block))
    # information is counted, not listed
    assert sum("for information" in line for line in lines) <= 1
    assert {a["cause"] for a in report["attention"]} == {"oversize_compound", "too_small"}


def test_attention_in_chinese(district, capsys):
    out, _, _ = _run(district, "zh", capsys)
    assert "户数达标：" in out and "超大小区（楼栋不详） 1 个" in out
    assert "需要处理（2 类" in out and "锦绣花园" in out and "小桥社区" in out


def test_findings_dedupe_sort_and_never_hide_the_unknown():
    oversize = (
        "compound 锦绣花园 has 2400 households > 800 and no known number of buildings, so it "
        "is one grid; give its buildings (a `buildings` column, or --compound-buildings-col) "
        "to split it by building"
    )
    report = {
        "parameters": {"min_households": 400, "max_households": 800},
        "communities": [
            {
                "community_id": "A",
                "community_name": "甲社区",
                "bounds_met": False,
                "grids": 3,
                "grids_in_bounds": 2,
                "notes": [
                    oversize,
                    oversize,  # repeated: listed once
                    "CP-SAT found no better plan than the warm start within the time limit "
                    "(UNKNOWN); kept the warm-start plan",
                    "compound 幸福里 (900 households) is split into 2 grids along building "
                    "lines (the fewest possible above 800 households)",
                    "something nobody has seen before",
                ],
            },
            {
                "community_id": "B",
                "community_name": "乙社区",
                "bounds_met": False,
                "grids": 2,
                "grids_in_bounds": 1,
                "notes": ["CP-SAT found no better plan than the warm start (UNKNOWN)"],
            },
            {"community_id": "C", "community_name": "丙社区", "bounds_met": True, "notes": [
                "the units form 2 separate pieces, partitioned separately"]},
        ],
    }  # fmt: skip
    groups = attention.attention(report)
    assert list(groups) == ["oversize_compound", "not_found", "other"]
    assert [f.subject for f in groups["oversize_compound"]] == ["锦绣花园"]
    assert [f.community_id for f in groups["not_found"]] == ["B"]  # unexplained: never missed
    assert groups["other"][0].note == "something nobody has seen before"
    text = "\n".join(attention.attention_lines(report, lang="en"))
    assert "CP-SAT" not in text and "separate pieces" not in text
    info = attention.information_line(report, lang="en")
    assert "split along building lines" in info and "solver remarks" in info


# --------------------------------------------------------------------------- consistent inputs


@pytest.fixture(scope="module")
def folder(district, tmp_path_factory):
    """The district's plan written as `gridkit partition` writes a folder."""
    out = tmp_path_factory.mktemp("plan") / "out"
    district.write(out, map_html=True)
    return out


def test_audit_accepts_an_output_folder(folder, tmp_path, capsys):
    from gridkit.cli.commands import main

    households = tmp_path / "xiaoqu.geojson"
    district_points(households)
    code = main(["audit", "--grids", str(folder), "--households", str(households),
                 "--out", str(tmp_path / "audit"), "--lang", "en"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "in bounds: " in captured.out and (tmp_path / "audit" / "report.json").is_file()
    code = main(["audit", "--grids", str(tmp_path), "--households", str(households),
                 "--out", str(tmp_path / "audit2")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "holds no grids.geojson" in err and "Traceback" not in err


def district_points(path):
    """The district's compounds as a GeoJSON of points (WGS84)."""
    frame = gpd.GeoDataFrame(
        {"name": ["锦绣花园", "幸福里", "桃源居", "滨江苑", "和平小区", "小桥人家"],
         "households": [2400, 300, 350, 500, 420, 250]},
        geometry=gpd.points_from_xy(
            np.array([200, 60, 340, 80, 320, 500]) + X0,
            np.array([200, 60, 60, 340, 340, 200]) + Y0,
        ),
        crs=CRS,
    ).to_crs(4326)  # fmt: skip
    frame.to_file(path, engine="pyogrio")
    return path


def test_default_map_of_a_folder_is_offline(folder):
    html = (folder / "map.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=\"https?://", html)
    assert "gk-basemap-note" in html


def test_png_honours_color_by_and_histogram(folder, tmp_path, capsys):
    from PIL import Image

    from gridkit.cli.commands import main

    pngs = {}
    for color_by in ("households", "status"):
        pngs[color_by] = tmp_path / f"{color_by}.png"
        assert main(["map", str(folder), "--out", str(tmp_path / f"{color_by}.html"),
                     "--png", str(pngs[color_by]), "--color-by", color_by]) == 0  # fmt: skip
    hist = tmp_path / "sizes.png"
    assert main(["map", str(folder), "--out", str(tmp_path / "m.html"), "--histogram",
                 str(hist)]) == 0  # fmt: skip
    capsys.readouterr()
    images = []
    for p in pngs.values():
        with Image.open(p) as img:
            images.append(np.asarray(img.convert("RGB")))
    by_hh, by_status = images
    # status fill: the oversize compound is filled magenta (only outlined by households)
    magenta = np.array([0xC5, 0x1B, 0x7D])

    def share(img, rgb):
        return float((np.abs(img.astype(int) - rgb).sum(axis=2) < 12).mean())

    assert share(by_status, magenta) > 5 * share(by_hh, magenta) > 0
    with Image.open(hist) as img:
        assert img.size[0] > 600


def test_shapefile_names_of_staffing_columns_are_readable():
    from gridkit.export.exchange import shapefile_names

    names = shapefile_names(["grid_worker", "grid_leader", "legal_adviser", "missing_roles",
                             "police", "old_households"])  # fmt: skip
    assert names == {"grid_worker": "grid_wkr", "grid_leader": "grid_ldr",
                     "legal_adviser": "legal_adv", "missing_roles": "missing",
                     "police": "police", "old_households": "old_hh"}  # fmt: skip


def test_summary_xlsx(folder, tmp_path, capsys):
    import openpyxl

    from gridkit.cli.commands import main

    out = tmp_path / "summary.xlsx"
    assert main(["export", str(folder), "--to", str(out)]) == 0
    capsys.readouterr()
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["街道", "社区", "网格", "需要处理"]
    grids = gpd.read_file(folder / "grids.geojson")
    rows = list(book["网格"].values)
    header, total = rows[0], rows[-1]
    assert "户数" in header and "状态" in header and total[0] == "合计"
    assert total[header.index("户数")] == int(grids["households"].sum())
    assert len(rows) == len(grids) + 2
    street = list(book["街道"].values)
    assert street[0][:3] == ("街道", "社区数", "网格数") and street[-1][0] == "合计"
    assert isinstance(rows[1][header.index("社区代码")], str)  # codes stay text
    needs = [r[0] for r in list(book["需要处理"].values)[1:]]
    assert any("楼栋数不详" in n for n in needs) and any("不足一个网格" in n for n in needs)


def test_regenerate_has_its_report_section_and_warns_about_row_ids(folder, tmp_path):
    import json as _json

    from gridkit.errors import GridkitWarning
    from gridkit.io.readers import read_boundaries, read_households
    from gridkit.regenerate import regenerate

    points = district_points(tmp_path / "xiaoqu.geojson")
    communities = gpd.read_file(folder / "grids.geojson").dissolve(
        by="community_id", as_index=False, aggfunc="first"
    )[["community_id", "community_name", "street", "geometry"]]
    communities.to_file(tmp_path / "c.geojson", engine="pyogrio")
    with pytest.warns(GridkitWarning, match="row numbers"):
        plan = regenerate(
            folder,
            read_boundaries(tmp_path / "c.geojson"),
            read_households(points),
            time_limit=1,
            jobs=1,
        )
    plan.write(tmp_path / "new")
    report = _json.loads((tmp_path / "new" / "report.json").read_text(encoding="utf-8"))
    summary = _json.loads((tmp_path / "new" / "summary.json").read_text(encoding="utf-8"))
    assert report["regenerate"] == summary


def test_regenerate_cli_takes_partition_layer_options():
    from gridkit.cli.commands import _build_parser

    args = _build_parser().parse_args([
        "regenerate", "--previous", "p", "--communities", "c", "--households", "h", "--out", "o",
        "--compounds", "x.gpkg", "--barriers", "roads.gpkg", "--online-map", "--lang", "en",
    ])  # fmt: skip
    assert args.compounds == "x.gpkg" and args.barriers == "roads.gpkg" and args.online_map
    assert not _build_parser().parse_args([
        "regenerate", "--previous", "p", "--communities", "c", "--households", "h", "--out", "o",
    ]).online_map  # fmt: skip


def test_cjk_font_is_simplified_chinese():
    from matplotlib import font_manager

    from gridkit.maps import overview

    family = overview._cjk_font()
    if family is None:
        pytest.skip("no CJK font on this machine")
    assert not family.endswith((" JP", " KR", " TC", " HK"))
    found = font_manager.findfont(font_manager.FontProperties(family=family))
    assert font_manager.get_font(found).family_name == family


# --------------------------------------------------------------------------- notebooks


def test_notebook_03_asserts_that_its_shortage_table_is_not_empty():
    """nbmake runs the notebooks; this keeps the assertion that makes the demo fail loudly.

    The roster names roles as people write them (民警): the cell must normalise them, and
    it must assert a non-empty shortage table, so the notebook test fails if the demo
    ever shows nothing again.
    """
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / "03_workers.ipynb"
    cells = [
        "".join(c["source"])
        for c in __import__("json").loads(path.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code"
    ]
    shortage = next(c for c in cells if "short_plan" in c)
    assert 'roster["role"] == "police"' not in shortage
    assert "normalise_role" in shortage
    assert re.search(r"assert len\(shortages\) > 0", shortage)


def test_a_community_without_notes_is_explained_by_its_infeasible_reason():
    """A regenerated community keeps its grids and has no notes: its reason still shows."""
    report = {
        "parameters": {"min_households": 400, "max_households": 800},
        "communities": [
            {"community_id": "A", "community_name": "甲社区", "bounds_met": False, "grids": 1,
             "grids_in_bounds": 0, "households": 250, "infeasible_reason": "below_min",
             "notes": []},
            {"community_id": "B", "community_name": "乙社区", "bounds_met": False, "grids": 3,
             "grids_in_bounds": 2, "households": 2000, "infeasible_reason": "oversize_building",
             "notes": []},
        ],
    }  # fmt: skip
    groups = attention.attention(report)
    assert list(groups) == ["too_small", "oversize_building"]
    text = "\n".join(attention.attention_lines(report, lang="zh"))
    assert "甲社区（A）：250 户" in text and "乙社区（B）" in text and "未找到" not in text


def test_geojson_outputs_read_back_valid_after_rounding(tmp_path):
    """Rounding to 7 decimals can make a narrow grid cross itself; gridkit then refused
    its own grids.geojson (`gridkit map`: "an invalid polygon ... edited or damaged")."""
    from gridkit.export.files import to_geojson

    narrow = shapely.Polygon([(114.0, 30.0), (114.001, 30.0), (114.0005, 30.00000004),
                              (114.0005, 30.001), (114.0, 30.001)])  # fmt: skip
    assert narrow.is_valid
    rounded = shapely.set_precision(narrow, 1e-7, mode="pointwise")
    assert not rounded.is_valid  # what a plain 7-decimal writer produces
    layer = gpd.GeoDataFrame({"grid_code": ["A-001"]}, geometry=[narrow], crs=4326)
    back = gpd.read_file(to_geojson(layer, tmp_path / "grids.geojson"))
    assert back.geometry.is_valid.all()
    assert back.geometry.iloc[0].area == pytest.approx(narrow.area, rel=1e-3)


def test_units_known_only_by_their_row_are_said_so():
    note = (
        "the building of household row 17 alone has 950 households > 800 (`max_households`); "
        "split it into entrances/units or raise `max_households`"
    )
    report = {"parameters": {"min_households": 400, "max_households": 800}, "communities": [
        {"community_id": "A", "community_name": "甲社区", "bounds_met": False, "notes": [note]}]}
    zh = "\n".join(attention.attention_lines(report, lang="zh"))
    en = "\n".join(attention.attention_lines(report, lang="en"))
    assert "住户文件第 17 行的楼栋（950 户）" in zh
    assert "the building in row 17 of the households file (950 households)" in en


def test_partition_map_follows_lang_and_is_offline(tmp_path):
    """`gridkit partition --lang en` draws its map.html in English, offline by default."""
    from gridkit.cli.commands import main

    households = district_points(tmp_path / "xiaoqu.geojson")
    communities = tmp_path / "c.geojson"
    gpd.GeoDataFrame(
        {"community_id": ["C1"], "community_name": ["测试社区"], "street": ["测试街道"]},
        geometry=[shapely.box(X0, Y0, X0 + 600, Y0 + 400)],
        crs=CRS,
    ).to_crs(4326).to_file(communities, engine="pyogrio")
    outputs = {}
    for lang in ("en", "zh"):
        out = tmp_path / lang
        code = main(["partition", "--communities", str(communities), "--households",
                     str(households), "--out", str(out), "--jobs", "1", "--time-limit", "1",
                     "--lang", lang, "-q"])  # fmt: skip
        assert code == 0
        outputs[lang] = (out / "map.html").read_text(encoding="utf-8")
        assert not re.search(r"<script[^>]+src=\"https?://", outputs[lang])
    zh_label = json.dumps("超大楼栋")[1:-1]  # (the page holds its labels JSON-escaped)
    assert "oversize building" in outputs["en"] and zh_label not in outputs["en"]
    assert zh_label in outputs["zh"] and "oversize building" not in outputs["zh"]
