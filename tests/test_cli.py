"""Tests for gridkit.cli: ``gridkit partition`` end to end on files written to tmp.

The sample subset (``conftest.sample_subset``) is written as GeoJSON and CSV files; the
command runs in-process through ``gridkit.cli.main`` (capsys) and once as a real
process (the ``gridkit`` console script).  Bad inputs must end with exit code 2 and
one ``error: ...`` paragraph naming the file and the fix, never a Python traceback.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridkit.cli.commands import main
from gridkit.crs import bd09_to_wgs84, wgs84_to_bd09
from gridkit.io.readers import read_boundaries, read_households

TIME_LIMIT = "0.5"
OUTPUTS = {
    "grids.geojson",
    "assignments.csv",
    "report.json",
    "buildings.geojson",
    "gridkit-outputs.json",
}


def _console_script() -> list[str]:
    """The installed ``gridkit`` script beside this Python, else ``python -m gridkit``."""
    script = Path(sys.executable).parent / "gridkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gridkit"]


def _partition_args(communities, households, out, *extra) -> list[str]:
    return [
        "partition",
        "--communities", str(communities),
        "--households", str(households),
        "--out", str(out),
        "--no-map",
        "--time-limit", TIME_LIMIT,
        "--jobs", "1",
        *map(str, extra),
    ]  # fmt: skip


def _points_csv(buildings: gpd.GeoDataFrame, path: Path, *, lon, lat, **columns) -> Path:
    """Write building points as a CSV with lng/lat columns (full float precision)."""
    table = pd.DataFrame(
        {
            "building_id": buildings["building_id"].to_numpy(),
            "households": buildings["households"].to_numpy(),
            "compound": buildings["compound"].to_numpy(),
            "lng": np.asarray(lon),
            "lat": np.asarray(lat),
        }
    )
    for name, values in columns.items():
        table[name] = values
    table.to_csv(path, index=False, float_format="%.12f")
    return path


def _error_paragraph(stderr: str) -> str:
    """The ``error: ...`` part of stderr, checked to be one paragraph without a traceback."""
    assert "Traceback" not in stderr, stderr
    assert "error: " in stderr, stderr
    message = stderr[stderr.index("error: ") :].strip()
    assert "\n\n" not in message, message  # one paragraph
    assert message.count("error: ") == 1, message
    return message


def _read_outputs(out: Path) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    grids = gpd.read_file(out / "grids.geojson")
    assignments = pd.read_csv(
        out / "assignments.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return grids, assignments, report


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample_subset) -> dict[str, Path]:
    """The subset as communities.geojson and buildings.geojson."""
    folder = tmp_path_factory.mktemp("cli_inputs")
    communities = folder / "communities.geojson"
    buildings = folder / "buildings.geojson"
    sample_subset.communities.to_file(communities, engine="pyogrio")
    sample_subset.buildings.to_file(buildings, engine="pyogrio")
    return {"communities": communities, "buildings": buildings, "folder": folder}


@pytest.fixture(scope="module")
def cli_run(files, tmp_path_factory) -> dict:
    """One in-process run of ``gridkit partition`` on the subset (stdout/stderr captured)."""
    out = tmp_path_factory.mktemp("cli_out")
    capture = pytest.MonkeyPatch()
    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        code = main(_partition_args(files["communities"], files["buildings"], out))
    finally:
        capture.undo()
    return {
        "code": code,
        "out": out,
        "communities": files["communities"],
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
    }


# --------------------------------------------------------------------------- good runs


def test_partition_in_process(cli_run, sample_subset, check_plan):
    assert cli_run["code"] == 0, cli_run["stderr"]
    out = cli_run["out"]
    assert {p.name for p in out.iterdir()} == OUTPUTS  # --no-map: no map.html
    stdout = cli_run["stdout"]
    n = len(sample_subset.communities)
    assert f"{n} 个社区" in stdout
    assert f"{int(sample_subset.buildings['households'].sum()):,} 户" in stdout
    assert re.search(r"户数达标：\d+ 个网格中 \d+ 个（\d+\.\d %）", stdout)
    assert "需要处理" in stdout
    assert sample_subset.low_id in stdout and sample_subset.tower_building in stdout
    assert "已写出：" in stdout and "grids.geojson" in stdout
    assert "Traceback" not in cli_run["stderr"]

    grids, assignments, report = _read_outputs(out)
    assert report["totals"]["grids"] == len(grids)
    assert len(assignments) == len(sample_subset.buildings)
    assert assignments["row"].tolist() == [str(i) for i in range(1, len(assignments) + 1)]
    assert (assignments["reason"] == "").all()
    assert grids["grid_code"].is_unique
    feasible = [c["community_id"] for c in report["communities"] if c["infeasible_reason"] is None]
    ok = grids[grids["community_id"].isin(feasible)]
    assert (ok["status"] == "ok").all() and ok["households"].between(400, 800).all()
    assert int(grids["households"].sum()) == int(sample_subset.buildings["households"].sum())


def test_partition_as_a_process(cli_run, files, tmp_path):
    """The console script gives exit code 0 and the same files as the in-process run."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [*_console_script(), *_partition_args(files["communities"], files["buildings"], out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "户数达标：" in proc.stdout
    assert {p.name for p in out.iterdir()} == OUTPUTS
    for name in ("grids.geojson", "assignments.csv"):
        assert (out / name).read_bytes() == (cli_run["out"] / name).read_bytes(), name


def test_quiet_prints_nothing(sample_subset, tmp_path, capsys):
    s = sample_subset
    communities = tmp_path / "low.geojson"
    buildings = tmp_path / "low_buildings.geojson"
    s.communities[s.communities["community_id"] == s.low_id].to_file(communities)
    s.buildings[s.buildings["community_id"] == s.low_id].to_file(buildings)
    code = main(_partition_args(communities, buildings, tmp_path / "q", "-q"))
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == ""
    assert captured.err == ""
    assert {p.name for p in (tmp_path / "q").iterdir()} == OUTPUTS


def test_bd09_csv_gives_the_wgs84_grids(cli_run, sample_subset, tmp_path, capsys):
    """Baidu (BD-09) points with --input-crs bd09 give the grids of the WGS84 input."""
    b = sample_subset.buildings
    lon, lat = wgs84_to_bd09(b.geometry.x.to_numpy(), b.geometry.y.to_numpy())
    assert np.abs(lon - b.geometry.x.to_numpy()).min() > 1e-3  # really shifted (~500 m)
    csv = _points_csv(b, tmp_path / "baidu.csv", lon=lon, lat=lat)

    # the reader brings the points back to within millimetres
    back = read_households(csv, input_crs="bd09")
    metric = b.estimate_utm_crs()
    moved = back.to_crs(metric).distance(b.to_crs(metric).reset_index(drop=True))
    assert moved.max() < 0.01, moved.max()
    wlon, wlat = bd09_to_wgs84(lon, lat)
    np.testing.assert_allclose(wlon, b.geometry.x, atol=1e-7)
    np.testing.assert_allclose(wlat, b.geometry.y, atol=1e-7)

    out = tmp_path / "bd09"
    argv = _partition_args(
        cli_run["communities"], csv, out, "--input-crs", "bd09", "--communities-crs", "wgs84"
    )
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    grids, assignments, _ = _read_outputs(out)
    ref_grids, ref_assignments, _ = _read_outputs(cli_run["out"])
    cols = ["grid_code", "households", "buildings", "status"]
    pd.testing.assert_frame_equal(pd.DataFrame(grids[cols]), pd.DataFrame(ref_grids[cols]))
    pd.testing.assert_frame_equal(assignments, ref_assignments)
    np.testing.assert_allclose(grids["area_m2"], ref_grids["area_m2"], rtol=1e-3)


def test_household_bounds_options(files, sample_subset, tmp_path, capsys, check_plan):
    """--min-households/--max-households change the bounds every grid must meet."""
    out = tmp_path / "bounds"
    code = main(
        _partition_args(
            files["communities"],
            files["buildings"],
            out,
            "--min-households",
            300,
            "--max-households",
            600,
        )
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "户数达标：" in captured.out and "（下限 300 户）" in captured.out
    grids, _, report = _read_outputs(out)
    assert report["parameters"]["min_households"] == 300
    assert report["parameters"]["max_households"] == 600
    feasible = [c["community_id"] for c in report["communities"] if c["infeasible_reason"] is None]
    ok = grids[grids["community_id"].isin(feasible)]
    assert len(ok) > 0
    assert (ok["status"] == "ok").all()
    assert ok["households"].between(300, 600).all(), ok[["grid_code", "households"]]
    assert (grids.loc[grids["households"] > 600, "status"] == "oversize_building").all()
    assert int(grids["households"].sum()) == int(sample_subset.buildings["households"].sum())


# --------------------------------------------------------------------------- bad inputs


def _fails(argv, capsys) -> str:
    """Run the command expecting exit code 2; return the error paragraph."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.out, captured.err)
    assert "wrote:" not in captured.out
    return _error_paragraph(captured.err)


def test_missing_file(files, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "communities.geojson"
    message = _fails(_partition_args(missing, files["buildings"], tmp_path / "o"), capsys)
    assert str(missing) in message
    assert "not found" in message and "check the path" in message
    assert not (tmp_path / "o").exists()


def test_missing_file_in_a_process(files, tmp_path):
    missing = tmp_path / "no_such_households.csv"
    proc = subprocess.run(
        [*_console_script(), *_partition_args(files["communities"], missing, tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    message = _error_paragraph(proc.stderr)
    assert str(missing) in message and "not found" in message
    assert proc.stdout == ""


def test_duplicated_community_ids(sample_subset, files, tmp_path, capsys):
    comm = sample_subset.communities.copy()
    comm.loc[1, "community_id"] = comm.loc[0, "community_id"]
    path = tmp_path / "dup.geojson"
    comm.to_file(path, engine="pyogrio")
    message = _fails(_partition_args(path, files["buildings"], tmp_path / "o"), capsys)
    assert str(path) in message
    assert comm.loc[0, "community_id"] in message
    assert "rows 1, 2" in message
    assert "own id" in message and "--community-id" in message


def test_negative_household_count_in_csv(sample_subset, files, tmp_path, capsys):
    b = sample_subset.buildings
    counts = b["households"].to_numpy().copy()
    counts[2] = -5
    csv = _points_csv(
        b.assign(households=counts), tmp_path / "neg.csv", lon=b.geometry.x, lat=b.geometry.y
    )
    message = _fails(
        _partition_args(files["communities"], csv, tmp_path / "o", "--input-crs", "wgs84"), capsys
    )
    assert str(csv) in message
    assert "negative at row 3" in message and "-5" in message
    assert "whole numbers" in message and "--households-col" in message


def test_swapped_lon_lat_csv(sample_subset, files, tmp_path, capsys):
    b = sample_subset.buildings
    csv = _points_csv(b, tmp_path / "swapped.csv", lon=b.geometry.y, lat=b.geometry.x)
    message = _fails(
        _partition_args(files["communities"], csv, tmp_path / "o", "--input-crs", "wgs84"), capsys
    )
    assert str(csv) in message
    assert "swapped" in message and "every row" in message
    assert "--lon-col" in message or "exchange" in message


def test_swapped_columns_inside_lonlat_range(sample_subset, files, tmp_path, capsys):
    """Swapped columns that are still valid degrees are caught against the boundaries."""
    comm = sample_subset.communities
    # move the district to lon 60 / lat 30: written as (lat, lon), the households land at
    # lon 30 / lat 60, valid degrees, but nowhere near the boundaries
    shift = np.array([-55.0, 0.0])
    moved = comm.set_geometry(shapely.transform(comm.geometry.to_numpy(), lambda c: c + shift))
    path = tmp_path / "moved.geojson"
    moved.to_file(path, engine="pyogrio")
    b = sample_subset.buildings
    x, y = b.geometry.x.to_numpy() + shift[0], b.geometry.y.to_numpy() + shift[1]
    csv = _points_csv(b, tmp_path / "swapped_valid.csv", lon=y, lat=x)
    message = _fails(_partition_args(path, csv, tmp_path / "o", "--input-crs", "wgs84"), capsys)
    assert str(csv) in message and str(path) in message
    assert "(lat, lon)" in message and "--lon-col" in message


def test_file_without_crs(sample_subset, files, tmp_path, capsys):
    shp = tmp_path / "no_crs.shp"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        comm = sample_subset.communities.rename(columns={"community_id": "id"})
        comm[["id", "geometry"]].set_crs(None, allow_override=True).to_file(shp)
    assert not shp.with_suffix(".prj").exists()
    message = _fails(_partition_args(shp, files["buildings"], tmp_path / "o"), capsys)
    assert str(shp) in message
    assert "declares no CRS" in message and "--input-crs" in message and ".prj" in message


def test_unknown_input_crs(files, tmp_path, capsys):
    message = _fails(
        _partition_args(
            files["communities"], files["buildings"], tmp_path / "o", "--input-crs", "baidu-9x"
        ),
        capsys,
    )
    assert "'baidu-9x'" in message
    # --input-crs is for the households (and for boundaries that declare no CRS).
    assert str(files["buildings"]) in message
    assert "bd09" in message and "EPSG:" in message


def test_bad_bounds(files, tmp_path, capsys):
    message = _fails(
        _partition_args(
            files["communities"],
            files["buildings"],
            tmp_path / "o",
            "--min-households",
            900,
            "--max-households",
            800,
        ),
        capsys,
    )
    assert "min_households=900" in message and "--min-households" in message


@pytest.mark.parametrize("where", ["file", "inside_file"])
def test_out_is_a_file(files, tmp_path, capsys, where):
    """Checked before any work (it used to fail with a traceback after the whole run)."""
    blocker = tmp_path / "out.txt"
    blocker.write_text("not a folder")
    out = blocker if where == "file" else blocker / "grids"
    message = _fails(_partition_args(files["communities"], files["buildings"], out), capsys)
    assert str(out) in message and "--out" in message
    assert "not a folder" in message and "pass the path of a folder" in message
    assert blocker.read_text() == "not a folder"


def test_summary_never_rounds_up_to_100_percent(capsys):
    """One grid out of bounds among 2,000 must not read as 100.0 %."""
    from gridkit.cli.files import print_summary

    report = {
        "gridkit_version": "x",
        "parameters": {"min_households": 400, "max_households": 800},
        "totals": {
            "communities": 400, "households": 1_200_000, "household_rows": 9000,
            "grids": 2000, "time_s": 1.0, "pct_grids_in_bounds_where_feasible": 99.95,
            "grids_in_feasible_communities": 2000, "feasible_communities": 400,
            "grids_by_status": {"above_max": 1, "ok": 1999}, "households_assigned": 1_200_000,
            "households_unassigned": 0, "rows_unassigned": 0, "unassigned_by_reason": {},
        },
        "communities": [],
    }  # fmt: skip
    print_summary(report, {}, lang="en")
    out = capsys.readouterr().out
    assert "in bounds: 1999 of 2000 grids (99.9 %); others: 1 above the maximum" in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["partition", "--communities", "x.geojson"])
    assert exc.value.code == 2
    assert "--households" in capsys.readouterr().err


def test_read_back_matches_reader(files, sample_subset):
    """The files the CLI reads give the subset back (sanity of the fixtures)."""
    comm = read_boundaries(files["communities"])
    hh = read_households(files["buildings"])
    assert comm["community_id"].tolist() == sample_subset.communities["community_id"].tolist()
    assert hh["households"].tolist() == sample_subset.buildings["households"].tolist()
    assert hh["building_id"].tolist() == sample_subset.buildings["building_id"].tolist()


def test_default_and_offline_map_outputs(files, tmp_path, capsys):
    """Without --no-map, partition writes map.html; --offline-map embeds every script."""
    argv = [
        a
        for a in _partition_args(files["communities"], files["buildings"], tmp_path / "o")
        if a != "--no-map"
    ]
    assert main(argv) == 0
    grids = json.loads((tmp_path / "o" / "grids.geojson").read_text(encoding="utf-8"))
    html = (tmp_path / "o" / "map.html").read_text(encoding="utf-8")
    assert "leaflet" in html
    for feature in grids["features"]:
        assert feature["properties"]["grid_code"] in html
    offline_argv = [str(tmp_path / "off") if a == str(tmp_path / "o") else a for a in argv]
    assert main([*offline_argv, "--offline-map"]) == 0
    offline = (tmp_path / "off" / "map.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=\"https?://", offline)
    assert not re.search(r"<link[^>]+href=\"https?://", offline)
    assert offline == html  # offline is the default
    online_argv = [str(tmp_path / "on") if a == str(tmp_path / "o") else a for a in argv]
    assert main([*online_argv, "--online-map"]) == 0
    online = (tmp_path / "on" / "map.html").read_text(encoding="utf-8")
    assert re.search(r"<script[^>]+src=\"https?://", online) and "tile.openstreetmap" in online
    capsys.readouterr()
