"""Province benchmark: millions of households through the Dask back-end, files to files.

Usage::

    python benchmarks/province.py [--districts 60] [--scale 1.3] [--time-limit 0.3]
                                  [--workers 2] [--folder /tmp/gridkit-province]

1. **Generate** (once per folder and parameters) a province-like input:
   ``--districts`` sample districts (``gridkit.datasets.make_sample(seed=i)``) side
   by side on an 8-wide lattice, each with its own county code, every building's
   households multiplied by ``--scale``, written as ``communities.geojson`` and
   ``households.csv`` with **one row per household** (``make_households``).  60
   districts at scale 1.3 are about 2,040 communities and 5,000,000 household rows
   (a 330 MB CSV).  The generator writes district by district and never holds the
   province either.
2. **Run** a real cluster on this machine: ``dask scheduler`` and ``--workers``
   ``dask worker --nthreads 1`` processes (the recipe of docs/cluster.md), then
   ``gridkit partition --scheduler tcp://... --no-map`` as a separate process, which
   reads the CSV in chunks into per-community shards, solves one task per community
   on the workers and assembles the outputs.
3. **Report** (JSON on stdout): wall time and its phases (reading, solving,
   assembling, from the work folder's log), time per community (mean, median, p95,
   max; building units vs solving), peak memory (max RSS) of the gridkit client, of
   every worker and of the scheduler, grid quality, and an extrapolation to a
   100-core cluster.

The machine this was written on has 2 cores; run it under ``nice`` when others
share it.  ``--districts 12`` is a quick (about 1,000,000-household) version.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

import gridkit as gk

BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- input


def generate(folder: Path, districts: int, scale: float) -> dict:
    """Write communities.geojson and households.csv (one row per household); return counts."""
    stamp = folder / "generated.json"
    params = {"districts": districts, "scale": scale, "gridkit": gk.__version__}
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        return json.loads(stamp.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "households.csv"
    csv.unlink(missing_ok=True)
    communities = []
    rows = households = 0
    started = time.perf_counter()
    for i in range(districts):
        c, b = gk.datasets.make_sample(seed=i)
        dx, dy = 0.06 * (i % 8), 0.04 * (i // 8)
        c = c.assign(geometry=c.geometry.translate(dx, dy))
        b = b.assign(geometry=b.geometry.translate(dx, dy))
        county = f"{420001 + i:06d}"  # a county code per district: 12-digit community codes
        c["community_id"] = county + c["community_id"].str[6:]
        c["street_code"] = county + c["street_code"].str[6:]
        b["building_id"] = f"D{i:03d}-" + b["building_id"]
        b["households"] = np.maximum(1, np.round(b["households"] * scale)).astype(np.int64)
        communities.append(c)
        points = gk.datasets.make_households(b, seed=i)
        table = pd.DataFrame(
            {
                "household_id": points["household_id"].to_numpy(),
                "building_id": points["building_id"].to_numpy(),
                "compound": f"D{i:03d}-" + points["compound"].astype(str).to_numpy(),
                "lon": points.geometry.x.to_numpy(),
                "lat": points.geometry.y.to_numpy(),
            }
        )
        table.to_csv(csv, mode="a", header=i == 0, index=False, float_format="%.7f")
        rows += len(table)
        households += int(b["households"].sum())
        print(f"generated district {i + 1}/{districts}: {rows:,} rows", file=sys.stderr)
    all_communities = gpd.GeoDataFrame(pd.concat(communities, ignore_index=True), crs=4326)
    gk.to_geojson(all_communities, folder / "communities.geojson")
    info = {
        "params": params,
        "communities": len(all_communities),
        "household_rows": rows,
        "households": households,
        "csv_mb": round(csv.stat().st_size / 2**20, 1),
        "generate_s": round(time.perf_counter() - started, 1),
    }
    stamp.write_text(json.dumps(info))
    return info


# --------------------------------------------------------------------------- cluster


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=log.parent)


def start_cluster(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    """``dask scheduler`` and ``workers`` ``dask worker --nthreads 1`` (with nannies)."""
    info = folder / "scheduler.json"
    info.unlink(missing_ok=True)
    procs = [
        start(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(info)],
            folder / "scheduler.log",
        )
    ]  # fmt: skip
    while not info.exists():
        time.sleep(0.2)
    time.sleep(0.2)
    address = json.loads(info.read_text())["address"]
    for k in range(workers):
        procs.append(
            start(
                [str(BIN / "dask"), "worker", address, "--name", f"w{k + 1}", "--nthreads", "1",
                 "--nworkers", "1", "--memory-limit", "0", "--no-dashboard",
                 "--local-directory", str(folder / f"w{k + 1}")],
                folder / f"w{k + 1}.log",
            )
        )  # fmt: skip
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=300)
    return address, procs


class RssSampler(threading.Thread):
    """Resident memory of some processes every few seconds (to see whether it grows)."""

    def __init__(self, pids: list[int], every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples: list[tuple[float, list[float]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        started = time.time()
        while not self._halt.wait(self.every):
            mb = []
            for pid in self.pids:
                try:
                    mb.append(psutil.Process(pid).memory_info().rss / 2**20)
                except psutil.Error:
                    mb.append(float("nan"))
            self.samples.append((time.time() - started, mb))

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def timeline(self, points: int = 8) -> list[dict]:
        """A few samples spread over the run: seconds, client MB, scheduler MB."""
        if not self.samples:
            return []
        picks = np.unique(np.linspace(0, len(self.samples) - 1, points).round().astype(int))
        return [
            {"s": round(self.samples[i][0]), "client_mb": round(self.samples[i][1][0]),
             "scheduler_mb": round(self.samples[i][1][1])}
            for i in picks
        ]  # fmt: skip


def max_rss_mb() -> float:
    """Peak resident memory of the calling process (Linux: ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--districts", type=int, default=60)
    parser.add_argument("--scale", type=float, default=1.3, help="households per building x")
    parser.add_argument("--time-limit", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/gridkit-province"))
    parser.add_argument("--cores", type=int, default=100, help="cores to extrapolate to")
    args = parser.parse_args(argv)
    folder = args.folder
    made = generate(folder / "input", args.districts, args.scale)

    run_dir = folder / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    address, procs = start_cluster(run_dir, args.workers)
    out, work = run_dir / "out", run_dir / "work"
    cmd = [
        str(BIN / "gridkit"), "partition",
        "--communities", str(folder / "input" / "communities.geojson"),
        "--households", str(folder / "input" / "households.csv"),
        "--input-crs", "wgs84",
        "--out", str(out), "--work-dir", str(work), "--no-map",
        "--time-limit", str(args.time_limit),
        "--chunk-rows", str(args.chunk_rows),
        "--scheduler", address,
    ]  # fmt: skip
    load_before = os.getloadavg()
    try:
        started = time.time()
        with (run_dir / "gridkit.stdout").open("w") as so, (run_dir / "gridkit.stderr").open(
            "w"
        ) as se:
            proc = subprocess.Popen(cmd, stdout=so, stderr=se)
        sampler = RssSampler([proc.pid, procs[0].pid])
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        ended = time.time()
        client_mb = usage.ru_maxrss / 1024
        from distributed import Client

        with Client(address, timeout=60) as client:
            worker_mb = client.run(max_rss_mb)
            scheduler_mb = client.run_on_scheduler(max_rss_mb)
    finally:
        for p in procs[::-1]:
            p.send_signal(signal.SIGTERM)
        for p in procs[::-1]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    if proc.returncode != 0:
        print((run_dir / "gridkit.stderr").read_text()[-3000:], file=sys.stderr)
        return proc.returncode

    log = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    ok = [e for e in log if e["status"] == "ok"]
    task = np.array([e["task_s"] for e in ok])
    units = np.array([e["units_s"] for e in ok])
    solve = np.array([e["solve_s"] for e in ok])
    stamps = np.array([e["time"] for e in ok])
    first_start = float(np.min(stamps - task))  # the first task started: reading was done
    read_s = first_start - started
    solve_s = float(stamps.max()) - first_start
    assemble_s = ended - float(stamps.max())
    report = json.loads((out / "report.json").read_text())
    totals = report["totals"]
    wall = ended - started
    slots_here = args.workers
    solve_100 = max(solve_s * slots_here / args.cores, float(task.max()))
    figures = {
        "input": made,
        "communities": totals["communities"],
        "household_rows": totals["household_rows"],
        "households": totals["households"],
        "grids": totals["grids"],
        "pct_grids_in_bounds_where_feasible": totals["pct_grids_in_bounds_where_feasible"],
        "grids_by_status": totals["grids_by_status"],
        "failed_communities": totals.get("communities_failed", 0),
        "time_limit": args.time_limit,
        "cluster": f"dask scheduler + {args.workers} x dask worker --nthreads 1 on "
        f"{os.cpu_count()} cores",
        "load_average_1min": {
            "start": round(load_before[0], 1),
            "end": round(os.getloadavg()[0], 1),
        },
        "chunk_rows": args.chunk_rows,
        "wall_s": round(wall, 1),
        "phases_s": {
            "read_and_shard": round(read_s, 1),
            "solve": round(solve_s, 1),
            "assemble_and_write": round(assemble_s, 1),
        },
        "per_community_s": {
            "count": len(task),
            "mean": round(float(task.mean()), 3),
            "median": round(float(np.median(task)), 3),
            "p95": round(float(np.percentile(task, 95)), 3),
            "max": round(float(task.max()), 3),
            "units_mean": round(float(units.mean()), 3),
            "solve_mean": round(float(solve.mean()), 3),
        },
        "communities_per_worker": pd.Series([e["worker"] for e in ok]).value_counts().tolist(),
        "peak_rss_mb": {
            "gridkit_client": round(client_mb, 1),
            "workers": {k: round(v, 1) for k, v in sorted(worker_mb.items())},
            "scheduler": round(scheduler_mb, 1),
            "timeline": sampler.timeline(),
        },
        "extrapolation": {
            "cores": args.cores,
            "assumption": "one single-threaded worker per core as here; the solve phase "
            "scales with workers down to the longest community; reading and assembling "
            "stay on the client as measured",
            "solve_s": round(solve_100, 1),
            "wall_s": round(read_s + solve_100 + assemble_s, 1),
        },
    }
    json.dump(figures, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
