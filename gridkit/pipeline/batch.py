"""File-to-file runs that scale to a province: partitioned reading, one task per community.

:func:`partition_files` is what ``gridkit partition`` runs:

1. **Shard** (:mod:`gridkit.shard`): the households file is read in chunks and each
   row is appended to its community's shard in the work folder; no process ever
   holds all the households.
2. **Solve**: one task per community (:func:`solve_community`: its units from its
   shard and outline, then :func:`gridkit.partition.partition_community`, then its
   grids dissolved), run on a back-end of :mod:`gridkit.execute` (local processes by
   default, or a Dask cluster).  Each result is written to the work folder as soon
   as it arrives, with the hash of everything it was made from (inputs, settings,
   code), so ``resume=True`` skips the communities already done and never reuses a
   stale result.  A community that fails is reported and the others go on.
3. **Assemble**: the per-community results are streamed, in community order, into
   the outputs of :meth:`gridkit.pipeline.GridPlan.write` (``grids.geojson``,
   ``assignments.csv``, ``report.json``, ``buildings.geojson``, ``map.html``), each
   written to a temporary file and moved into place at the end.

The outputs are byte for byte those of :func:`gridkit.make_grids` followed by
:meth:`~gridkit.pipeline.GridPlan.write` on the same inputs (``report.json`` but
for its timings), whatever the back-end, the number of workers or the chunk size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import PLAN_FILES
from gridkit.crs import local_metric_crs
from gridkit.errors import InputError
from gridkit.export import OutputSet, spreadsheet_safe
from gridkit.partition import CommunityPlan, GridRules, partition_community
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
from gridkit.pipeline.grids import (
    GridRow,
    buildings_layer,
    community_grids,
    empty_grid,
    grid_layer,
    split_compounds_of,
)
from gridkit.pipeline.inputs import (
    barriers_in,
    barriers_near,
    check_settings,
    ensure_boundary_columns,
)
from gridkit.pipeline.report import RowTotals, report_from
from gridkit.pipeline.shard import (
    DEFAULT_CHUNK_ROWS,
    DamagedWorkFile,
    HouseholdFile,
    WorkDir,
    load_arrays,
    load_shard,
    shard_households,
)
from gridkit.units import MERGE_DISTANCE, build_units

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "BatchRun",
    "CommunityInput",
    "CommunityResult",
    "HouseholdFile",
    "partition_files",
    "solve_community",
]

log = logging.getLogger(__name__)

#: The work folder used when none is given: inside the output folder, removed after a
#: run in which every community succeeded.
DEFAULT_WORK = ".gridkit-work"

#: Outputs in the order they are written and listed.
OUTPUT_NAMES = PLAN_FILES


@dataclass
class CommunityInput:
    """Everything one community's task needs (sent to the worker that solves it)."""

    community_id: str
    boundary: gpd.GeoDataFrame  # one row, EPSG:4326
    households: gpd.GeoDataFrame  # the community's rows, EPSG:4326
    crs: str  # the run's metric CRS (WKT)
    rules: GridRules
    time_limit: float
    seed: int
    workers: int
    keep_compounds: bool
    barriers: gpd.GeoDataFrame | None  # barriers near the community, metric CRS
    input_hash: str
    prove: bool = False
    merge_distance: float = MERGE_DISTANCE
    compounds: gpd.GeoDataFrame | None = None  # compound outlines near it, metric CRS
    compound_buildings_col: str | None = None


@dataclass
class CommunityResult:
    """One community's grids, small enough to store and ship (no cells).

    Attributes
    ----------
    community_id, input_hash
        The community and the hash of everything the result was made from.
    fingerprint
        :func:`gridkit.execute.code_fingerprint` of the process that made it.
    plan
        The community plan (labels per unit, solver figures, notes).
    grids
        One :data:`gridkit.pipeline.GridRow` per grid (geometry in the metric CRS).
    n_units, households, notes
        Units (buildings), households and the remarks made while building cells.
    buildings
        Per unit: ``building_id``, ``households``, ``rows``, ``x``, ``y`` (metric)
        and ``grid`` (position in ``grids``).
    rows, row_grid
        Input row number of each household row, and its grid (position in ``grids``).
    worker, times
        Who solved it (``host:pid``) and how long each step took, in seconds.
    """

    community_id: str
    input_hash: str
    fingerprint: str
    plan: CommunityPlan
    grids: list[GridRow]
    n_units: int
    households: int
    notes: list[str]
    buildings: pd.DataFrame
    rows: np.ndarray
    row_grid: np.ndarray
    worker: str
    times: dict[str, float] = field(default_factory=dict)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The result as named arrays for :func:`gridkit.shard.save_arrays` (no pickle).

        Scalars, notes and the plan's figures go into one JSON text (``meta``); the
        grids, buildings, labels and rows into arrays; geometries as WKB.
        """
        plan = self.plan
        labels = plan.labels
        meta = {
            "format": "gridkit-result/1",
            "community_id": self.community_id,
            "input_hash": self.input_hash,
            "fingerprint": self.fingerprint,
            "n_units": int(self.n_units),
            "households": int(self.households),
            "notes": [str(n) for n in self.notes],
            "worker": self.worker,
            "times": {k: float(v) for k, v in self.times.items()},
            # every field of the plan but its labels (arrays below), so a field added to
            # CommunityPlan is stored too (it must be JSON-able: text, numbers, lists)
            "plan": {
                f.name: _json_value(getattr(plan, f.name))
                for f in dataclasses.fields(plan)
                if f.name != "labels"
            },
            "labels_name": labels.name,
        }
        grids = list(zip(*self.grids, strict=True)) if self.grids else [()] * 6
        b = self.buildings
        building_ids = [v if isinstance(v, str) else None for v in b["building_id"]]
        return {
            "meta": np.array([json.dumps(meta, ensure_ascii=False)]),
            "labels_index": labels.index.to_numpy(),
            "labels": labels.to_numpy(),
            "grid_code": np.array(grids[0], dtype=object),
            "grid_community": np.array(grids[1], dtype=object),
            "grid_households": np.array(grids[2], dtype=np.int64),
            "grid_buildings": np.array(grids[3], dtype=np.int64),
            "grid_wkb": np.array(list(shapely.to_wkb(np.array(grids[4], dtype=object))),
                                 dtype=object) if self.grids else np.array([], dtype=object),
            "grid_status": np.array(grids[5], dtype=object),
            "building_id": np.array(building_ids, dtype=object),
            "building_households": b["households"].to_numpy(dtype=np.int64),
            "building_rows": b["rows"].to_numpy(dtype=np.int64),
            "building_x": b["x"].to_numpy(dtype=float),
            "building_y": b["y"].to_numpy(dtype=float),
            "building_grid": b["grid"].to_numpy(dtype=np.int32),
            "building_split_of": np.array(
                [None if v is None or pd.isna(v) else str(v)
                 for v in b.get("split_of", pd.Series([None] * len(b))).to_numpy(dtype=object)],
                dtype=object,
            ),
            "rows": np.asarray(self.rows, dtype=np.int64),
            "row_grid": np.asarray(self.row_grid),
        }  # fmt: skip

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], community_id: str, input_hash: str
    ) -> CommunityResult | None:
        """The result stored by :meth:`to_arrays`, or None when it is another one.

        Parameters
        ----------
        arrays
            What :func:`gridkit.shard.load_arrays` read.
        community_id, input_hash
            The result wanted: anything else (another community, stale inputs) is None.

        Raises
        ------
        gridkit.shard.DamagedWorkFile
            The arrays are not a result gridkit stored.
        """
        from gridkit.pipeline.shard import DamagedWorkFile

        try:
            meta = json.loads(str(arrays["meta"][0]))
            if meta.get("format") != "gridkit-result/1":
                raise ValueError("not a gridkit result")
            if meta["community_id"] != community_id or meta["input_hash"] != input_hash:
                return None
            p = dict(meta["plan"])
            p["grid_status"] = {int(k): str(v) for k, v in p["grid_status"]}
            plan = CommunityPlan(
                labels=pd.Series(arrays["labels"], index=pd.Index(arrays["labels_index"]),
                                 name=meta["labels_name"]),
                **p,
            )  # fmt: skip
            geoms = shapely.from_wkb(arrays["grid_wkb"]) if len(arrays["grid_wkb"]) else []
            grids = [
                (str(code), str(comm), int(hh), int(nb), geom, str(status))
                for code, comm, hh, nb, geom, status in zip(
                    arrays["grid_code"], arrays["grid_community"], arrays["grid_households"],
                    arrays["grid_buildings"], geoms, arrays["grid_status"], strict=True,
                )
            ]  # fmt: skip
            buildings = pd.DataFrame(
                {
                    "building_id": arrays["building_id"],
                    "households": arrays["building_households"],
                    "rows": arrays["building_rows"],
                    "x": arrays["building_x"],
                    "y": arrays["building_y"],
                    "grid": arrays["building_grid"],
                    "split_of": arrays["building_split_of"]
                    if "building_split_of" in arrays
                    else np.full(len(arrays["building_grid"]), None, dtype=object),
                }
            )
            return cls(
                community_id=meta["community_id"],
                input_hash=meta["input_hash"],
                fingerprint=meta["fingerprint"],
                plan=plan,
                grids=grids,
                n_units=int(meta["n_units"]),
                households=int(meta["households"]),
                notes=list(meta["notes"]),
                buildings=buildings,
                rows=arrays["rows"],
                row_grid=arrays["row_grid"],
                worker=str(meta["worker"]),
                times={k: float(v) for k, v in meta["times"].items()},
            )
        except (KeyError, ValueError, TypeError, IndexError, shapely.errors.ShapelyError) as exc:
            raise DamagedWorkFile(f"result of community {community_id}: {exc}") from None


def _json_value(value: Any) -> Any:
    """A plan field as JSON of the same kind (int stays int, float float; dicts as pairs).

    Examples
    --------
    >>> _json_value({np.int64(1): "ok"}), _json_value(np.float64(2.0)), _json_value(3)
    ([[1, 'ok']], 2.0, 3)
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, dict):
        return [[_json_value(k), _json_value(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in the work folder")


def solve_community(task: CommunityInput) -> CommunityResult:
    """Units, grids and the result of one community (runs on a worker)."""
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        units = build_units(
            task.boundary,
            task.households,
            crs=task.crs,
            merge_distance=task.merge_distance,
            barriers=task.barriers,
            compounds=task.compounds,
            split_above=task.rules.max_households,
            compound_buildings_col=task.compound_buildings_col,
        )
    unplaced = units.membership["unit_id"].isna().to_numpy()
    if unplaced.any():
        rows = task.households["row"].to_numpy()[unplaced]
        raise RuntimeError(
            f"{int(unplaced.sum())} household rows (rows {', '.join(map(str, rows[:10]))}) "
            f"were placed in community {task.community_id} when the file was read, but lie "
            f"outside its outline when its cells are built ({'; '.join(map(str, caught))}); "
            "check the outline (an invalid polygon?)"
        )
    built = time.perf_counter()
    u = units.units
    plan = partition_community(
        u,
        rules=task.rules,
        time_limit=task.time_limit,
        seed=task.seed,
        workers=task.workers,
        keep_compounds=task.keep_compounds,
        barriers=barriers_near(task.barriers, u),
        prove=task.prove,
    )
    solved = time.perf_counter()
    codes, grids = community_grids(u, plan)
    position = {row[0]: k for k, row in enumerate(grids)}
    unit_grid = np.array([position[c] for c in codes], dtype=np.int32)
    row_unit = units.membership["unit_id"].to_numpy(dtype=np.int64)
    buildings = pd.DataFrame(
        {
            "building_id": u["building_id"].to_numpy(dtype=object),
            "households": u["households"].to_numpy(dtype=np.int64),
            "rows": u["rows"].to_numpy(dtype=np.int64),
            "x": u["x"].to_numpy(dtype=float),
            "y": u["y"].to_numpy(dtype=float),
            "grid": unit_grid,
            "split_of": u["split_of"].to_numpy(dtype=object)
            if "split_of" in u
            else np.full(len(u), None, dtype=object),
        }
    )
    return CommunityResult(
        community_id=task.community_id,
        input_hash=task.input_hash,
        fingerprint=code_fingerprint(),
        plan=plan,
        grids=grids,
        n_units=len(u),
        households=int(u["households"].sum()),
        notes=list(units.notes.get(task.community_id, [])),
        buildings=buildings,
        rows=task.households["row"].to_numpy(dtype=np.int64),
        row_grid=unit_grid[row_unit],
        worker=f"{socket.gethostname()}:{os.getpid()}",
        times={
            "units_s": built - started,
            "solve_s": solved - built,
            "task_s": time.perf_counter() - started,
        },
    )


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
) -> BatchRun:
    """Partition every community of a district or a province, from files to files.

    Parameters
    ----------
    boundaries
        Communities from :func:`gridkit.read_boundaries` (all of them are held in
        memory: a province's outlines are small).
    households
        The households file (a path, or a :class:`gridkit.shard.HouseholdFile` with
        the reading options of :func:`gridkit.read_households`), read ``chunk_rows``
        rows at a time; or a (Geo)DataFrame.
    out
        Output folder: ``grids.geojson``, ``assignments.csv``, ``report.json``,
        ``buildings.geojson`` and (``map_html``) ``map.html``.
    min_households, max_households, target_households, balance_weight, time_limit, seed
        As for :func:`gridkit.make_grids`; so are ``prove``, ``merge_distance`` and
        ``compound_buildings_col``.
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
        Called with each :class:`gridkit.execute.Failure` as it happens.

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

    # 1. shards (reused on resume when made from the same inputs)
    shard_key = _hash(
        fingerprint,
        _frame_hash(boundaries[["community_id", "geometry"]]),
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
            boundaries,
            metric,
            work,
            compounds=compounds,
            chunk_rows=chunk_rows,
            progress=verbose,
            compound_buildings_col=compound_buildings_col,
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
        near = barrier_index.near(comm_metric.geometry.iloc[k])
        walls = compound_index.near(comm_metric.geometry.iloc[k])
        hashes[k] = _hash(
            fingerprint,
            settings,
            info["hash"],
            cid,
            shapely.to_wkb(boundaries.geometry.iloc[k]),
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
                boundary=boundaries.iloc[[k]],
                households=rows,
                crs=crs_wkt,
                rules=rules,
                time_limit=time_limit,
                seed=seed,
                workers=WORKERS,
                keep_compounds=keep_compounds,
                barriers=barrier_index.near(comm_metric.geometry.iloc[k]),
                input_hash=input_hash,
                prove=prove,
                merge_distance=merge_distance,
                compounds=compound_index.near(comm_metric.geometry.iloc[k]),
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
    report, paths = _assemble_and_write(
        boundaries,
        comm_metric,
        metric,
        manifest,
        hashes,
        work,
        failures,
        out,
        rules=rules,
        time_limit=time_limit,
        seed=seed,
        started=started,
        map_html=map_html,
        offline=offline,
        lang=lang,
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


def _iter_results(
    boundaries: gpd.GeoDataFrame,
    manifest: dict,
    hashes: dict[int, str],
    work: WorkDir,
    failures: dict[str, Failure],
) -> Iterator[tuple[int, str, CommunityResult | None]]:
    """``(index, id, result)`` of every community, in order (None: no households or failed)."""
    for k, cid in enumerate(boundaries["community_id"].astype(str)):
        info = manifest["communities"].get(str(k))
        if info is None:
            yield k, cid, None
            continue
        result = work.load_result(cid, hashes[k])
        if result is None and cid not in failures:
            failures[cid] = Failure(cid, "no result in the work folder (it was removed?)")
        yield k, cid, result


def _assemble_and_write(
    boundaries: gpd.GeoDataFrame,
    comm_metric: gpd.GeoDataFrame,
    metric,
    manifest: dict,
    hashes: dict[int, str],
    work: WorkDir,
    failures: dict[str, Failure],
    out: Path,
    *,
    rules: GridRules,
    time_limit: float,
    seed: int,
    started: float,
    map_html: bool,
    offline: bool,
    lang: str = "zh",
) -> tuple[dict, dict[str, Path]]:
    """Stream the per-community results into the outputs, written as one set.

    The files go through :class:`gridkit.outputs.OutputSet`: a run killed at any
    point leaves the previous set or the new one in ``out``, never a mix.
    """
    from gridkit.export import to_geojson, to_report_json

    n = len(boundaries)
    grid_rows: list[GridRow] = []
    plans: list[CommunityPlan] = []
    notes: dict[str, list[str]] = {}
    n_units: list[Any] = [0] * n
    households = np.zeros(n, dtype=np.int64)
    building_parts: list[pd.DataFrame] = []
    compound_of: dict[str, str] = {}
    code_of_row = np.full(manifest["rows"] + 1, -1, dtype=np.int64)
    codes: list[str] = []
    unit_offset = 0
    for k, cid, result in _iter_results(boundaries, manifest, hashes, work, failures):
        if result is None:
            if cid in failures:
                n_units[k] = None
                households[k] = manifest["communities"][str(k)]["households"]
            else:
                grid_rows.append(empty_grid(cid, comm_metric.geometry.iloc[k]))
            continue
        base = len(codes)
        codes += [row[0] for row in result.grids]
        grid_rows += result.grids
        plans.append(result.plan)
        if result.notes:
            notes[cid] = result.notes
        n_units[k] = result.n_units
        households[k] = result.households
        code_of_row[result.rows] = base + result.row_grid
        b = result.buildings
        building_parts.append(
            pd.DataFrame(
                {
                    "unit_id": np.arange(unit_offset, unit_offset + len(b), dtype=np.int64),
                    "community_id": cid,
                    "building_id": b["building_id"].to_numpy(dtype=object),
                    "households": b["households"].to_numpy(dtype=np.int64),
                    "rows": b["rows"].to_numpy(dtype=np.int64),
                    "x": b["x"].to_numpy(dtype=float),
                    "y": b["y"].to_numpy(dtype=float),
                    "code": base + b["grid"].to_numpy(dtype=np.int64),
                }
            )
        )
        if "split_of" in b:
            compound_of.update(
                split_compounds_of(
                    np.array([result.grids[g][0] for g in b["grid"].to_numpy()], dtype=object),
                    b["split_of"].to_numpy(dtype=object),
                )
            )
        unit_offset += len(b)
    communities = comm_metric.copy()
    communities["n_units"] = pd.array(n_units, dtype="Int64")
    communities["households"] = households
    grids = grid_layer(grid_rows, communities, metric, compound_of=compound_of)
    code_array = np.array([*codes, ""], dtype=object)  # -1 -> ""

    names = {kind: name for kind, name in OUTPUT_NAMES.items() if map_html or kind != "map"}
    with OutputSet(out, "partition", known=OUTPUT_NAMES.values()) as outputs:
        to_geojson(grids.to_crs(4326), outputs.path(names["grids"]))
        rows = _write_assignments(
            outputs.path(names["assignments"]),
            work,
            manifest,
            boundaries,
            code_of_row,
            code_array,
            failures,
        )
        report = report_from(
            grids,
            communities,
            notes,
            plans,
            rows,
            rules=rules,
            time_limit=time_limit,
            seed=seed,
            elapsed=time.perf_counter() - started,
            failures=failures,
        )
        to_report_json(report, outputs.path(names["report"]))
        units = pd.concat(building_parts or [_no_units()], ignore_index=True)
        buildings = buildings_layer(units, code_array[units["code"].to_numpy()], metric)
        to_geojson(buildings, outputs.path(names["buildings"]))
        if map_html:
            from gridkit.maps import explore, save_map

            m = explore(
                grids.to_crs(4326), communities=communities, households=buildings,
                offline=offline, lang=lang,
            )  # fmt: skip
            save_map(m, outputs.path(names["map"]))
        written = outputs.commit()
    return report, {kind: written[name] for kind, name in names.items()}


def _no_units() -> pd.DataFrame:
    """An empty building table (a run in which every community failed)."""
    int64, obj = np.int64, object
    columns = {"unit_id": int64, "community_id": obj, "building_id": obj, "households": int64,
               "rows": int64, "x": float, "y": float, "code": int64}  # fmt: skip
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _write_assignments(
    path: Path,
    work: WorkDir,
    manifest: dict,
    boundaries: gpd.GeoDataFrame,
    code_of_row: np.ndarray,
    code_array: np.ndarray,
    failures: dict[str, Failure],
) -> RowTotals:
    """``assignments.csv`` chunk by chunk, in input order; returns the row totals."""
    ids = np.array([*boundaries["community_id"].astype(str), ""], dtype=object)  # -1 -> ""
    failed = np.zeros(len(ids), dtype=bool)
    if failures:
        failed[:-1] = boundaries["community_id"].astype(str).isin(list(failures)).to_numpy()
    totals = RowTotals()
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        for chunk in range(manifest["chunks"]):
            try:
                table = load_arrays(work.rows_path(chunk))
            except (FileNotFoundError, DamagedWorkFile) as exc:
                raise InputError(
                    f"the work folder '{work.path}' is damaged (chunk table {chunk}: {exc}): run "
                    "the same command without --resume to start afresh."
                ) from None
            community = table["community"].astype(np.int64)
            reason = np.where(
                community < 0,
                "outside_communities",
                np.where(failed[community], "community_failed", ""),
            ).astype(object)
            frame = pd.DataFrame(
                {
                    "household_id": table["household_id"],
                    "row": table["row"],
                    "community_id": ids[community],
                    "grid_code": code_array[code_of_row[table["row"]]],
                    "reason": reason,
                }
            )
            spreadsheet_safe(frame).to_csv(
                fh, index=False, header=chunk == 0, lineterminator="\n"
            )
            totals.add(table["households"], reason)
    return totals

