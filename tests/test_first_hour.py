"""The first hour of a planner (issue 19): one honest headline, a short grouped attention list.

A district with a compound given as one point of 2,400 households and no building count
(an ``oversize_compound`` grid), a community too small for one grid and ordinary
compounds: the headline counts every grid, the attention list names each cause once,
with the compound and the communities by name and without solver jargon.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pytest
import shapely

import gridkit as gk
from gridkit import attention
from gridkit.cli import print_summary

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
