"""File-to-file runs that scale to a province: partitioned reading, one task per community.

:func:`partition_files` is what ``gridkit partition`` runs:

1. **Shard** (:mod:`gridkit.pipeline.shards`): the households file is read in chunks and
   each row is appended to its community's shard in the work folder
   (:mod:`gridkit.pipeline.workdir`); no process ever holds all the households.
2. **Solve**: one task per community (:func:`gridkit.pipeline.solve_community`: its units
   from its shard and outline, then :func:`gridkit.partition.partition_community`, then its
   grids dissolved), run on a back-end of :mod:`gridkit.pipeline.execute` (local processes
   by default, or a Dask cluster).  Each result is written to the work folder as soon
   as it arrives, with the hash of everything it was made from (inputs, settings,
   code), so ``resume=True`` skips the communities already done and never reuses a
   stale result.  A community that fails is reported and the others go on.
3. **Assemble** (:mod:`gridkit.pipeline.assembly`): the per-community results are
   streamed, in community order, into the outputs of
   :meth:`gridkit.pipeline.GridPlan.write` (``grids.geojson``, ``assignments.csv``,
   ``report.json``, ``buildings.geojson``, ``map.html``), each written to a temporary
   file and moved into place at the end.

The outputs are byte for byte those of :func:`gridkit.make_grids` followed by
:meth:`~gridkit.pipeline.GridPlan.write` on the same inputs (``report.json`` but
for its timings), whatever the back-end, the number of workers or the chunk size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import local_metric_crs
from gridkit.errors import InputError
from gridkit.partition import GridRules
from gridkit.pipeline.assembly import assemble_and_write
from gridkit.pipeline.bounds import bounds_report, community_bounds
from gridkit.pipeline.community import CommunityInput, CommunityResult, solve_community
from gridkit.pipeline.dedicated import carving_of
from gridkit.pipeline.execute import (
    WORKERS,
    Backend,
    Failure,
    LocalBackend,
    Task,
    code_fingerprint,
    open_backend,
    run_communities,
)
from gridkit.pipeline.inputs import barriers_in, check_settings, ensure_boundary_columns
from gridkit.pipeline.shards import DEFAULT_CHUNK_ROWS, HouseholdFile, load_shard, shard_households
from gridkit.pipeline.storage import DamagedWorkFile
from gridkit.pipeline.workdir import DEFAULT_WORK, WorkDir
from gridkit.units import MERGE_DISTANCE

__all__ = [
    "BatchRun",
    "partition_files",
]

@dataclass
class BatchRun:
    """What :func:`partition_files` did.

    Attributes
    ----------
    report
        The ``report.json`` content.
    paths
        The files written, by kind (``grids``, ``assignments``, ``report``,
        ``buildings``, ``map``).
    failures
        Communities that could not be partitioned, by id.
    solved, reused
        Communities solved in this run, and taken from the work folder (resume).
    task_times
        Seconds per community solved in this run (units + solve + grids).
    backend
        Where they were solved.
    work_dir
        The work folder, or None when it was removed after a complete run.
    dashboard
        The Dask dashboard link, when a cluster was used.
    """

    report: dict
    paths: dict[str, Path]
    failures: dict[str, Failure]
    solved: int
    reused: int
    task_times: list[float]
    backend: str
    work_dir: Path | None
    dashboard: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else repr(part).encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _frame_hash(frame: gpd.GeoDataFrame | None) -> str:
    """Content hash of a small frame (boundaries, compounds, barriers): values and WKB."""
    if frame is None:
        return "none"
    h = hashlib.sha256()
    for col in frame.columns:
        if col == frame.geometry.name:
            values = shapely.to_wkb(frame.geometry.to_numpy())
            h.update(b"".join(len(w).to_bytes(8, "little") + w for w in values))
        else:
            h.update(str(col).encode() + b"=")
            h.update(pd.util.hash_pandas_object(frame[col].astype(object), index=False)
                     .to_numpy().tobytes())  # fmt: skip
    h.update(str(frame.crs).encode())
    return h.hexdigest()


class _BarrierIndex:
    """Barriers (metric CRS) and an STRtree, to pick those near one community."""

    def __init__(self, barriers: gpd.GeoDataFrame | None) -> None:
        self.barriers = barriers
        self.tree = None if barriers is None else shapely.STRtree(barriers.geometry.to_numpy())

    def near(self, geometry: shapely.Geometry) -> gpd.GeoDataFrame | None:
        """A superset of the barriers :func:`gridkit.pipeline.barriers_near` keeps."""
        if self.barriers is None:
            return None
        xmin, ymin, xmax, ymax = geometry.bounds
        box = shapely.box(xmin - 1.0, ymin - 1.0, xmax + 1.0, ymax + 1.0)
        hits = np.sort(self.tree.query(box))
        return self.barriers.iloc[hits] if len(hits) else None


def _settings_hash(
    rules: GridRules,
    time_limit: float,
    seed: int,
    keep_compounds: bool,
    prove: bool = False,
    merge_distance: float = MERGE_DISTANCE,
) -> str:
    return _hash(
        rules.min_households,
        rules.max_households,
        rules.target_households,
        rules.balance_weight,
        float(time_limit),
        int(seed),
        bool(keep_compounds),
        WORKERS,
        bool(prove),
        float(merge_distance),
    )


def partition_files(
    boundaries: gpd.GeoDataFrame,
    households: HouseholdFile | str | os.PathLike | pd.DataFrame,
    out: str | os.PathLike,
    *,
    min_households: int = 400,
    max_households: int = 800,
    target_households: int | None = None,
    balance_weight: float = 1.0,
    time_limit: float = 5.0,
    seed: int = 0,
    jobs: int | None = None,
    scheduler: Any = None,
    work_dir: str | os.PathLike | None = None,
    resume: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_compounds: bool = True,
    compounds: gpd.GeoDataFrame | None = None,
    barriers: gpd.GeoDataFrame | None = None,
    map_html: bool = False,
    offline: bool = True,
    lang: str = "zh",
    verbose: bool = False,
    on_failure=None,
    prove: bool = False,
    merge_distance: float = MERGE_DISTANCE,
    compound_buildings_col: str | None = None,
    dedicated: gpd.GeoDataFrame | None = None,
    community_rules: str | os.PathLike | Mapping | None = None,
) -> BatchRun:
    """Partition every community of a district or a province, from files to files.

    Parameters
    ----------
    boundaries
        Communities from :func:`gridkit.read_boundaries` (all of them are held in
        memory: a province's outlines are small).
    households
        The households file (a path, or a :class:`gridkit.pipeline.HouseholdFile` with
        the reading options of :func:`gridkit.read_households`), read ``chunk_rows``
        rows at a time; or a (Geo)DataFrame.
    out
        Output folder: ``grids.geojson``, ``assignments.csv``, ``report.json``,
        ``buildings.geojson`` and (``map_html``) ``map.html``.
    min_households, max_households, target_households, balance_weight, time_limit, seed
        As for :func:`gridkit.make_grids`; so are ``prove``, ``merge_distance``,
        ``compound_buildings_col`` and ``dedicated`` (dedicated-grid parcels, carved
        out of their communities before anything is read or solved).
    jobs
        Local processes (default: all cores), or the workers of a ``"local"``
        Dask cluster.
    scheduler
        ``None`` (local processes), ``"local"`` (a Dask ``LocalCluster``), a Dask
        scheduler address ``tcp://HOST:PORT`` or a ``distributed.Client``.
    work_dir
        Folder of the shards and per-community results (default ``out/.gridkit-work``,
        removed after a run in which every community succeeded).
    resume
        Reuse the shards and the results an earlier run left in ``work_dir`` (only
        those made from the same inputs, settings and code).
    chunk_rows
        Household rows read at a time.
    keep_compounds, compounds, barriers
        As for :func:`gridkit.make_grids`.
    map_html, offline, lang
        Write ``map.html`` (``offline``, the default: scripts embedded and no web
        basemap, as every map gridkit writes; ``lang``: its labels, ``zh`` or ``en``).
    verbose
        Progress bars (stderr), the dashboard link and failures as they happen.
    on_failure
        Called with each :class:`gridkit.pipeline.Failure` as it happens.

    community_rules
        Household bounds by community type, and ``min_households``/``max_households``
        columns of ``boundaries``, as for :func:`gridkit.make_grids`.

    Returns
    -------
    BatchRun
        The report, the files written, the failures and the run's figures.
    """
    started = time.perf_counter()
    rules = GridRules(
        min_households=min_households,
        max_households=max_households,
        target_households=target_households,
        balance_weight=balance_weight,
    )
    check_settings(time_limit, seed, merge_distance)
    if not isinstance(households, HouseholdFile | pd.DataFrame):
        households = HouseholdFile(os.fspath(households))
    if isinstance(households, HouseholdFile):
        households.check()
    boundaries = ensure_boundary_columns(boundaries).reset_index(drop=True)
    bounds = community_bounds(boundaries, rules, community_rules=community_rules)
    out = Path(out)
    created_out = not out.exists()
    default_work = work_dir is None
    # Connect first: a wrong scheduler address fails before minutes of reading.
    with open_backend(scheduler, jobs=jobs) as backend:
        dashboard = getattr(backend, "dashboard_link", None)
        if verbose and dashboard:
            print(f"Dask dashboard: {dashboard}", file=sys.stderr)
        work = WorkDir(
            out / DEFAULT_WORK if default_work else Path(work_dir),
            resume=resume,
            flag="--out" if default_work else "--work-dir",
        )
        if verbose and not resume and work.earlier_results:
            print(
                f"note: starting afresh in {work.path}: {work.earlier_results} results of an "
                "earlier run were removed (pass --resume to reuse them)",
                file=sys.stderr,
            )
        try:
            run = _run(
                boundaries,
                households,
                out,
                work,
                backend,
                rules=rules,
                bounds=bounds,
                bounds_info=bounds_report(bounds, community_rules),
                time_limit=time_limit,
                seed=seed,
                resume=resume,
                chunk_rows=chunk_rows,
                keep_compounds=keep_compounds,
                compounds=compounds,
                barriers=barriers,
                prove=prove,
                merge_distance=merge_distance,
                compound_buildings_col=compound_buildings_col,
                dedicated=dedicated,
                map_html=map_html,
                offline=offline,
                lang=lang,
                verbose=verbose,
                on_failure=on_failure,
                started=started,
            )
        except InputError:
            # Bad input: nothing worth keeping (unless resuming), and no output folder
            # where there was none.
            if default_work and not resume:
                work.remove()
                if created_out:
                    with contextlib.suppress(OSError):
                        out.rmdir()
            raise
        finally:
            work.close()
    run.dashboard = dashboard
    if default_work and not run.failures:
        work.remove()
    else:
        run.work_dir = work.path
    return run


def _run(
    boundaries: gpd.GeoDataFrame,
    households: HouseholdFile | pd.DataFrame,
    out: Path,
    work: WorkDir,
    backend: Backend,
    *,
    rules: GridRules,
    bounds: Mapping[str, GridRules],
    bounds_info: dict | None,
    time_limit: float,
    seed: int,
    resume: bool,
    chunk_rows: int,
    keep_compounds: bool,
    compounds: gpd.GeoDataFrame | None,
    barriers: gpd.GeoDataFrame | None,
    prove: bool,
    merge_distance: float,
    compound_buildings_col: str | None,
    dedicated: gpd.GeoDataFrame | None,
    map_html: bool,
    offline: bool,
    lang: str,
    verbose: bool,
    on_failure,
    started: float,
) -> BatchRun:
    """Shard, solve and assemble (see :func:`partition_files`)."""
    metric = local_metric_crs(boundaries)
    crs_wkt = metric.to_wkt()
    comm_metric = boundaries.to_crs(metric).reset_index(drop=True)
    fingerprint = code_fingerprint()
    timings: dict[str, float] = {}
    # dedicated parcels: the communities less them are what is sharded and solved
    carving = carving_of(boundaries, dedicated, metric)
    solved = boundaries if carving is None else carving.residential.reset_index(drop=True)
    solved_metric = comm_metric if carving is None else solved.to_crs(metric)
    pieces = None if carving is None else carving.pieces.to_crs(metric).geometry.to_numpy()

    # 1. shards (reused on resume when made from the same inputs)
    shard_key = _hash(
        fingerprint,
        _frame_hash(solved[["community_id", "geometry"]]),
        _frame_hash(None if carving is None else carving.pieces),
        households.describe() if isinstance(households, HouseholdFile) else "frame",
        _frame_hash(compounds),
        int(chunk_rows),
        crs_wkt,
        str(compound_buildings_col),
    )
    manifest = work.read_manifest() if resume else None
    if manifest is None or manifest.get("key") != shard_key or not isinstance(
        households, HouseholdFile
    ):
        shards = shard_households(
            households,
            solved,
            metric,
            work,
            compounds=compounds,
            chunk_rows=chunk_rows,
            progress=verbose,
            compound_buildings_col=compound_buildings_col,
            pieces=pieces,
        )
        manifest = {"key": shard_key, **shards}
        work.write_manifest(manifest)
    timings["read_s"] = time.perf_counter() - started

    # 2. tasks: the hash of each community's inputs; skip those already done
    barrier_index = _BarrierIndex(barriers_in(barriers, metric))
    compound_index = _BarrierIndex(
        compounds.to_crs(metric) if compounds is not None and keep_compounds else None
    )
    settings = _settings_hash(rules, time_limit, seed, keep_compounds, prove, merge_distance)
    todo: list[tuple[int, str, str, int]] = []
    hashes: dict[int, str] = {}
    reused = 0
    for key, info in manifest["communities"].items():
        k = int(key)
        cid = str(boundaries.at[k, "community_id"])
        near = barrier_index.near(solved_metric.geometry.iloc[k])
        walls = compound_index.near(solved_metric.geometry.iloc[k])
        own = bounds.get(cid, rules)
        hashes[k] = _hash(
            fingerprint,
            settings,
            own.min_households,
            own.max_households,
            own.target_households,
            info["hash"],
            cid,
            shapely.to_wkb(solved.geometry.iloc[k]),
            crs_wkt,
            _frame_hash(near) if near is not None else "none",
            _frame_hash(walls) if walls is not None else "none",
        )
        if resume and work.has_result(cid, hashes[k]):
            reused += 1
        else:
            todo.append((k, cid, hashes[k], info["rows"]))
    todo.sort(key=lambda t: -t[3])  # largest first: the longest do not finish last alone

    def payload(k: int, cid: str, input_hash: str):
        def load() -> CommunityInput:
            try:
                rows = load_shard(work.shard_path(k), manifest["communities"][str(k)]["hash"])
            except (FileNotFoundError, DamagedWorkFile) as exc:
                raise InputError(
                    f"the work folder '{work.path}' is damaged (the shard of community {cid}: "
                    f"{exc}): run the same command without --resume to start afresh."
                ) from None
            return CommunityInput(
                community_id=cid,
                boundary=solved.iloc[[k]],
                households=rows,
                crs=crs_wkt,
                rules=bounds.get(cid, rules),
                time_limit=time_limit,
                seed=seed,
                workers=WORKERS,
                keep_compounds=keep_compounds,
                barriers=barrier_index.near(solved_metric.geometry.iloc[k]),
                input_hash=input_hash,
                prove=prove,
                merge_distance=merge_distance,
                compounds=compound_index.near(solved_metric.geometry.iloc[k]),
                compound_buildings_col="compound_buildings"
                if "compound_buildings" in rows
                else None,
            )

        return load

    tasks = [
        Task(k, cid, key=f"gridkit-{cid}-{h[:16]}", payload=payload(k, cid, h))
        for k, cid, h, _ in todo
    ]

    # 3. solve: each result is stored as soon as it arrives
    failures: dict[str, Failure] = {}
    task_times: list[float] = []
    solve_started = time.perf_counter()
    if isinstance(backend, LocalBackend):
        backend.jobs = min(backend.jobs, max(1, len(tasks)))
    for task, outcome in run_communities(
        solve_community, tasks, backend, total=len(tasks), progress=verbose
    ):
        if isinstance(outcome, CommunityResult) and outcome.fingerprint != fingerprint:
            outcome = Failure(
                task.community_id,
                "solved by a worker running other gridkit code or library versions "
                f"(fingerprint {outcome.fingerprint}, here {fingerprint}): result refused",
            )
        if isinstance(outcome, Failure):
            failures[task.community_id] = outcome
            work.save_failure(outcome, hashes[task.index])
            if on_failure is not None:
                on_failure(outcome)
        else:
            work.save_result(outcome)
            task_times.append(outcome.times["task_s"])
    timings["solve_s"] = time.perf_counter() - solve_started

    # 4. assemble and write
    assemble_started = time.perf_counter()
    report, paths = assemble_and_write(
        boundaries,
        comm_metric,
        metric,
        manifest,
        hashes,
        work,
        failures,
        out,
        rules=rules,
        bounds=bounds,
        bounds_info=bounds_info,
        time_limit=time_limit,
        seed=seed,
        started=started,
        map_html=map_html,
        offline=offline,
        lang=lang,
        carving=carving,
    )
    timings["assemble_s"] = time.perf_counter() - assemble_started
    return BatchRun(
        report=report,
        paths=paths,
        failures=failures,
        solved=len(tasks) - len(failures),
        reused=reused,
        task_times=task_times,
        backend=backend.describe(),
        work_dir=None,
        timings=timings,
    )

