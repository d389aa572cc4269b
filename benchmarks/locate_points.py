"""Benchmark: ``gridkit locate`` on many points over the bundled sample district.

Usage::

    python benchmarks/locate_points.py [--points 100000] [--seed 0]

Partitions the sample (bundled files, default settings) once, writes ``--points`` random
points over its extent (10 % beyond it, so some fall outside every grid) as a CSV, then
times :func:`gridkit.locate.locate_points` and the whole ``gridkit locate`` command, and
checks every answer against an independent point-in-polygon test (GEOS ``within`` via a
spatial join).  Prints the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.cli import main
from gridkit.datasets import get_path
from gridkit.locate import locate_points


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        main(["partition", "--communities", str(get_path("communities")),
              "--households", str(get_path("buildings")), "--out", str(tmp / "plan"),
              "--no-map", "-q"])  # fmt: skip
        print(f"partition of the sample: {time.perf_counter() - t0:.1f} s")
        grids = gpd.read_file(tmp / "plan" / "grids.geojson")
        rng = np.random.default_rng(args.seed)
        x0, y0, x1, y1 = grids.total_bounds
        dx, dy = (x1 - x0) * 0.1, (y1 - y0) * 0.1
        table = pd.DataFrame({
            "id": [f"R{i:06d}" for i in range(args.points)],
            "lon": rng.uniform(x0 - dx, x1 + dx, args.points),
            "lat": rng.uniform(y0 - dy, y1 + dy, args.points),
        })  # fmt: skip
        csv = tmp / "points.csv"
        table.to_csv(csv, index=False)

        t0 = time.perf_counter()
        located = locate_points(tmp / "plan", csv, id_col="id", input_crs="wgs84")
        t_fn = time.perf_counter() - t0
        t0 = time.perf_counter()
        main(["locate", "--grids", str(tmp / "plan"), "--points", str(csv), "--id-col", "id",
              "--input-crs", "wgs84", "--out", str(tmp / "answers.csv"), "-q"])  # fmt: skip
        t_cli = time.perf_counter() - t0

        pts = gpd.GeoDataFrame(geometry=located.geometry.to_numpy(), crs=4326)
        hits = gpd.sjoin(pts, grids[["grid_code", "geometry"]], predicate="within", how="left")
        expected = hits["grid_code"].groupby(level=0).first()
        inside = located["match"] == "inside"
        agree_inside = (located.loc[inside, "grid_code"] == expected[inside]).all()
        agree_outside = expected[located["match"] == "nearest"].isna().all()
        counts = located["match"].value_counts()
        print(f"grids: {len(grids)}; points: {len(located):,} "
              f"(inside {counts.get('inside', 0):,}, on a line {counts.get('edge', 0):,}, "
              f"outside {counts.get('nearest', 0):,})")  # fmt: skip
        print(f"locate_points: {t_fn:.2f} s ({len(located) / t_fn:,.0f} points/s), "
              f"of which reading the CSV is part")  # fmt: skip
        print(f"gridkit locate (read, locate, write CSV): {t_cli:.2f} s")
        print(f"agrees with point-in-polygon: inside {agree_inside}, outside {agree_outside}")


if __name__ == "__main__":
    main_()
