"""Helpers of the batch and Dask tests: input files, CLI runs and output comparisons."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from gridkit.cli.commands import main
from gridkit.datasets.synthetic import make_households

#: The output files compared byte for byte (map.html holds folium's random element ids).
COMPARED = ("grids.geojson", "assignments.csv", "buildings.geojson")

#: Report keys measured with a clock (they differ between any two runs).
TIMING_KEYS = {"time_s", "deterministic_time"}


def strip_timing(value):
    """A report without its timing fields (recursively)."""
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def assert_same_outputs(a: Path, b: Path) -> None:
    """Byte-identical layers and assignments, the same report but for its timings."""
    for name in COMPARED:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs: {a} {b}"
    ra = json.loads((a / "report.json").read_text(encoding="utf-8"))
    rb = json.loads((b / "report.json").read_text(encoding="utf-8"))
    assert strip_timing(ra) == strip_timing(rb)
    assert json.dumps(strip_timing(ra)) == json.dumps(strip_timing(rb))  # key order too


def write_inputs(
    folder: Path, communities: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, *, seed: int = 1
) -> dict[str, Path]:
    """``communities.geojson`` and ``households.csv`` (one row per household, lon/lat)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "communities": folder / "communities.geojson",
        "households": folder / "households.csv",
    }
    communities.to_file(paths["communities"], engine="pyogrio")
    points = make_households(buildings.reset_index(drop=True), seed=seed)
    table = pd.DataFrame(
        {
            "household_id": [f"H{i:07d}" for i in range(len(points))],
            "building_id": points["building_id"].to_numpy(),
            "compound": points["compound"].to_numpy(),
            "lon": points.geometry.x.to_numpy(),
            "lat": points.geometry.y.to_numpy(),
        }
    )
    table.to_csv(paths["households"], index=False, float_format="%.7f")
    return paths


def partition_args(paths: dict[str, Path], out: Path, *extra, time_limit="0.5") -> list[str]:
    """``gridkit partition`` arguments for the files of :func:`write_inputs`."""
    return [
        "partition",
        "--communities", str(paths["communities"]),
        "--households", str(paths["households"]),
        "--input-crs", "wgs84",
        "--out", str(out),
        "--no-map",
        "--time-limit", str(time_limit),
        *map(str, extra),
    ]  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``gridkit`` in this process: exit code, stdout and stderr."""
    capture = pytest.MonkeyPatch()
    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        code = main(argv)
    finally:
        capture.undo()
    return code, stdout.getvalue(), stderr.getvalue()


def log_entries(work: Path) -> list[dict]:
    """The lines of a work folder's ``log.jsonl``."""
    path = work / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def bowtie_of(geometry):
    """A self-intersecting polygon over ``geometry``'s bounding box (an invalid outline)."""
    import shapely

    minx, miny, maxx, maxy = geometry.bounds
    return shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])


def community_ids(path: Path) -> np.ndarray:
    """Community ids of an assignments.csv."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return table["community_id"].to_numpy()
