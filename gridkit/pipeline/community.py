"""One community's task in a file-to-file run: its input, its solve on a worker, its result.

:func:`solve_community` runs on a worker (a local process or a Dask worker): the
community's units from its shard and outline, :func:`gridkit.partition.partition_community`,
then its grids dissolved.  The :class:`CommunityResult` it returns is small enough to
ship and store: :meth:`CommunityResult.to_arrays` and :meth:`CommunityResult.from_arrays`
are its form in the work folder (:mod:`gridkit.pipeline.storage`, no pickle).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.partition import CommunityPlan, GridRules, partition_community
from gridkit.pipeline.execute import code_fingerprint
from gridkit.pipeline.grids import GridRow, community_grids, unit_compound_names
from gridkit.pipeline.inputs import barriers_near
from gridkit.pipeline.storage import DamagedWorkFile
from gridkit.units import MERGE_DISTANCE, build_units

__all__ = [
    "CommunityInput",
    "CommunityResult",
    "solve_community",
]


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
        :func:`gridkit.pipeline.code_fingerprint` of the process that made it.
    plan
        The community plan (labels per unit, solver figures, notes).
    grids
        One :data:`gridkit.pipeline.GridRow` per grid (geometry in the metric CRS).
    n_units, households, notes
        Units (buildings), households and the remarks made while building cells.
    buildings
        Per unit: ``building_id``, ``households``, ``rows``, ``x``, ``y`` (metric),
        ``grid`` (position in ``grids``), ``split_of`` and ``compound`` (the compound's
        name, :func:`gridkit.pipeline.grids.unit_compound_names`).
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
        """The result as named arrays for :func:`gridkit.pipeline.save_arrays` (no pickle).

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
            "building_compound": np.array(
                [None if v is None or pd.isna(v) else str(v)
                 for v in b.get("compound", pd.Series([None] * len(b))).to_numpy(dtype=object)],
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
            What :func:`gridkit.pipeline.load_arrays` read.
        community_id, input_hash
            The result wanted: anything else (another community, stale inputs) is None.

        Raises
        ------
        gridkit.pipeline.DamagedWorkFile
            The arrays are not a result gridkit stored.
        """
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
                    "compound": arrays["building_compound"]
                    if "building_compound" in arrays
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
            "compound": unit_compound_names(u),
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

