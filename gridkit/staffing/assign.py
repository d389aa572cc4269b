"""Staff every grid: assign grid workers, leaders, police and helpers with OR-Tools.

:func:`assign_workers` takes a grid layer (``gridkit partition`` output), a roster
(:func:`gridkit.roster.read_workers`) and a staffing policy
(:func:`gridkit.roster.load_policy`) and returns a :class:`StaffingPlan`: who serves each
grid (``roster``), the grid layer with the names per role (``grids``), what is missing
(``shortages``, and the new people that would close each gap) and a ``summary``.

Distances are metres in the local UTM zone (:func:`gridkit.crs.local_metric_crs`) from a
person's home point to the *nearest point* of the grid (0 when they live in it), or of
the community for community-level roles; a person known only by their home community
is measured from that community's boundary.  The model (``gridkit._assign_model``) is
solved per role, lexicographically: fewest new hires, then (re-staffing) fewest people
moved, then least distance plus penalties for crossing community lines and for
unbalanced workload.  See ``docs/staffing.md``.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.contracts import GRID_COLUMNS, ROSTER_COLUMNS, SHORTAGE_COLUMNS
from gridkit.crs import local_metric_crs
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import readers as io
from gridkit.io import validate as _validate
from gridkit.staffing._model import RoleProblem, RoleSolution, solve_role
from gridkit.staffing.roster import (
    ROLE_LABELS,
    ROLES,
    WORKER_COLUMNS,
    RolePolicy,
    StaffingPolicy,
    load_policy,
    mask_phone,
    read_workers,
)
from gridkit.units import dissolve_cells
from gridkit.utils import __version__, progress_class

tqdm = progress_class()

__all__ = [
    "ROSTER_COLUMNS",
    "SHORTAGE_COLUMNS",
    "STAFFING_FILES",
    "StaffingPlan",
    "assign_workers",
    "read_grids",
    "read_previous",
    "verify_staffing",
]

logger = logging.getLogger(__name__)

#: Files ``gridkit assign`` writes, by kind (one set: :class:`gridkit.outputs.OutputSet`).
STAFFING_FILES = {
    "roster": "roster.csv",
    "grids": "grids.geojson",
    "shortages": "shortages.csv",
    "report": "staffing_report.json",
    "map": "map.html",
}

GridsLike = gpd.GeoDataFrame | str | os.PathLike[str]
WorkersLike = pd.DataFrame | str | os.PathLike[str]
PolicyLike = StaffingPolicy | Mapping[str, Any] | str | os.PathLike[str] | None

#: Column of the enriched grid layer listing what a grid lacks, e.g. ``police:1``.
MISSING_COLUMN = "missing_roles"
_SEPARATOR = "、"  # between names in the grid layer
_KEEP_SHARE = 0.5  # a new grid is "in place" for a person if this share lies in their old grid
_DM = 10  # model cost units per metre (decimetres)
#: One assignment: role, scope, roster row index, unit index, distance (m), crosses a
#: community line, status (assigned / pinned / kept / moved / new).
_Record = tuple[str, str, int, int, float, bool, str]


# --------------------------------------------------------------------------- reading grids


def read_grids(grids: GridsLike) -> gpd.GeoDataFrame:
    """Read and check a grid layer to staff: a GeoDataFrame, a ``grids.geojson`` or its folder.

    The file is read by :func:`gridkit.audit.read_grids` (codes, geometry repairs,
    coordinates, a gridkit export's GCJ-02/BD-09 marker); staffing also needs each grid's
    community and households.

    Parameters
    ----------
    grids
        The output of ``gridkit partition`` (the folder, or its ``grids.geojson``), any
        polygon layer with ``grid_code``, ``community_id`` and ``households`` columns,
        or a GeoDataFrame (copied, never modified).  Worker columns of an earlier
        ``gridkit assign`` are dropped (they are recomputed).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, sorted by ``grid_code``, with the grid contract columns first
        (``grid_name``, ``community_name`` default to the codes when absent), then any
        other source columns, and ``attrs["source"]``.

    Raises
    ------
    InputError
        If the path is missing, codes are missing or duplicated, a grid has no community,
        households are not whole numbers ≥ 0, or geometries are not polygons.
    """
    from gridkit.audit import read_grids as read_grid_map

    if isinstance(grids, str | os.PathLike):
        path = Path(grids)
        if path.is_dir():
            path = path / "grids.geojson"
        if not path.is_file():
            msg = (
                f"grid layer '{path}' not found: pass the folder written by `gridkit partition "
                "--out DIR` or its grids.geojson (run `gridkit partition` first)."
            )
            raise InputError(msg)
        if path.name == "grids.geojson":
            from gridkit.export import check_set

            check_set(path.parent, ["grids.geojson"])
        grids = path
    frame = read_grid_map(grids)
    source = str(frame.attrs.get("source"))
    problems = _validate.Problems(source, "grid layer")
    rows = frame["row"].to_numpy()
    missing = frame["community_id"].isna().to_numpy()
    if missing.all():
        problems.add(
            "no `community_id` column: every grid belongs to one community; use the "
            "grids.geojson written by `gridkit partition`."
        )
    elif missing.any():
        problems.add(
            f"column `community_id` is empty at {_validate.rows_text(rows[missing])}: every "
            "grid belongs to one community."
        )
    households = None
    if "households" not in frame.columns:
        problems.add(
            "no `households` column; available: "
            f"{io.columns_text([c for c in frame.columns if c not in ('row', 'geometry')])}. "
            "Use the grids.geojson written by `gridkit partition`."
        )
    else:
        households = _validate.check_household_counts(
            frame["households"], rows, column="households",
            option="a layer with correct `households`", problems=problems,
        )
    problems.raise_if_any()

    frame["households"] = households
    if "grid_name" not in frame:
        frame["grid_name"] = frame["grid_code"]
    if "community_name" not in frame:
        frame["community_name"] = frame["community_id"]
    for col in GRID_COLUMNS:
        if col not in frame:
            frame[col] = None
    if frame["area_m2"].isna().all():
        metric = frame.geometry.to_crs(local_metric_crs(frame))
        frame["area_m2"] = np.round(metric.area.to_numpy(), 1)
    # earlier staffing columns are recomputed; `crs_note` described the file, not the frame
    dropped = [c for c in (*ROLES, MISSING_COLUMN, "crs_note", "row") if c in frame.columns]
    geometry = frame.geometry.name
    extra = [c for c in frame.columns if c not in (*GRID_COLUMNS, *dropped, geometry)]
    out = gpd.GeoDataFrame(
        frame[[*GRID_COLUMNS, *extra]], geometry=frame.geometry.to_numpy(), crs=4326
    )
    out = out.sort_values("grid_code", kind="stable").reset_index(drop=True)
    out.attrs["source"] = source
    return out


# --------------------------------------------------------------------------- the plan


@dataclass
class StaffingPlan:
    """Who serves each grid, what is missing, and how the plan was found.

    Attributes
    ----------
    roster
        One row per (grid, person) in grid-code and role order: :data:`ROSTER_COLUMNS`
        (community-level roles get one row per grid of their community), then
        ``phone`` (masked unless ``include_phone``) when the roster has phones.
    grids
        The grid layer (EPSG:4326) with one column per role (names joined by "、";
        community-level roles repeated on every grid of the community) and
        ``missing_roles`` (e.g. ``"police:1"``).
    shortages
        One row per grid (or community) and role lacking people: :data:`SHORTAGE_COLUMNS`.
    hires
        The new people that would close every gap: ``role``, ``community_id``,
        ``community_name``, ``people``, ``units`` (the grid codes or the community they
        would serve, ``;``-separated).
    people
        One row per roster person (nobody is dropped), in roster order: ``worker_id``,
        ``name``, ``role``, ``status`` (``assigned``, ``unavailable``, ``spare``,
        ``idle``), ``units`` and ``households`` served, the capacities applied
        (``max_units``, ``max_households``, 0 = none), ``pinned``, the resolved
        ``home_community`` ("" outside the grids), ``reason`` and the roster ``row``.
    summary
        Figures of the run (what ``staffing_report.json`` holds, plus ``timing``).
    policy
        The policy applied.
    """

    roster: pd.DataFrame
    grids: gpd.GeoDataFrame
    shortages: pd.DataFrame
    hires: pd.DataFrame
    people: pd.DataFrame
    summary: dict[str, Any]
    policy: StaffingPolicy = field(repr=False)

    def write(
        self, out_dir: str | os.PathLike[str], *, map_html: bool = False, offline: bool = True
    ) -> dict[str, Path]:
        """Write roster.csv, grids.geojson, shortages.csv, staffing_report.json (and map.html).

        Parameters
        ----------
        out_dir
            Output folder, created if needed.
        map_html
            Also write ``map.html`` (:func:`gridkit.maps.explore` of the staffed grids).
        offline
            The map needs no network (the default); ``False`` loads its scripts from
            CDNs and shows OpenStreetMap tiles.

        Returns
        -------
        dict
            Paths by output name.  Files are byte-identical for identical input (the
            report leaves out the run times).
        """
        from gridkit.export import OutputSet, to_assignments_csv, to_geojson, to_report_json

        report = {k: v for k, v in self.summary.items() if k != "timing"}
        with OutputSet(out_dir, "assign", known=STAFFING_FILES.values()) as out:
            to_assignments_csv(self.roster, out.path(STAFFING_FILES["roster"]))
            to_geojson(self.grids, out.path(STAFFING_FILES["grids"]))
            to_assignments_csv(self.shortages, out.path(STAFFING_FILES["shortages"]))
            to_report_json(report, out.path(STAFFING_FILES["report"]))
            if map_html:
                from gridkit.maps import explore, save_map

                save_map(
                    explore(self.grids, offline=offline), out.path(STAFFING_FILES["map"])
                )
            written = out.commit()
        return {kind: written[n] for kind, n in STAFFING_FILES.items() if n in written}


# --------------------------------------------------------------------------- preparation


@dataclass
class _Units:
    """Grids or communities as the model's units (metric CRS)."""

    scope: str
    codes: np.ndarray
    community: np.ndarray  # community index of each unit
    households: np.ndarray
    geoms: np.ndarray


@dataclass
class _People:
    """The roster, resolved against the grids."""

    frame: gpd.GeoDataFrame
    home_comm: np.ndarray  # community index, -1 when unknown / outside the district
    home_geom: np.ndarray  # metric point, else the home community polygon
    pinned: list[list[int]]  # unit indices (grids or communities, by the role's scope)
    max_units: np.ndarray
    max_households: np.ndarray  # 0: no limit


@dataclass
class _RoleInput:
    role: str
    policy: RolePolicy
    units: _Units
    people: np.ndarray  # row indices into the roster (available people of the role)
    distance: np.ndarray  # (P,) metres
    cross: np.ndarray  # (P,) bool
    problem: RoleProblem
    pruned: bool


@dataclass
class _Context:
    layer: gpd.GeoDataFrame
    grids: _Units
    communities: _Units
    community_names: np.ndarray
    people: _People
    policy: StaffingPolicy
    roles: list[_RoleInput]
    previous: bool


def _community_units(layer: gpd.GeoDataFrame, metric: np.ndarray) -> tuple[_Units, np.ndarray]:
    """Communities as units (their grids dissolved), and the community index of each grid."""
    ids, geoms = dissolve_cells(metric, layer["community_id"].to_numpy(dtype=str))
    comm_of_grid = np.searchsorted(ids, layer["community_id"].to_numpy(dtype=str))
    hh = np.bincount(comm_of_grid, weights=layer["households"], minlength=len(ids))
    return (
        _Units("community", ids.astype(object), np.arange(len(ids)), hh.astype(np.int64), geoms),
        comm_of_grid,
    )


def _resolve_people(
    workers: gpd.GeoDataFrame,
    grids: _Units,
    communities: _Units,
    names: np.ndarray,
    policy: StaffingPolicy,
    metric_crs: Any,
) -> _People:
    """Match homes and pins to communities and grids; check capacities; collect problems."""
    source = str(workers.attrs.get("source") or "<workers>")
    problems = _validate.Problems(source, "workers")
    n = len(workers)
    rows = workers["row"].to_numpy()
    comm_index = {str(c): i for i, c in enumerate(communities.codes)}
    name_index: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        name_index.setdefault(str(name), []).append(i)
    grid_index = {str(c): i for i, c in enumerate(grids.codes)}

    metric = workers.geometry.to_crs(metric_crs).to_numpy()
    has_point = ~shapely.is_missing(metric)
    point_comm = np.full(n, -1, dtype=np.int64)
    if has_point.any():
        tree = shapely.STRtree(grids.geoms)
        where = tree.query(metric[has_point], predicate="intersects")
        first = pd.Series(where[1]).groupby(where[0]).min()
        idx = np.flatnonzero(has_point)
        point_comm[idx[first.index.to_numpy()]] = grids.community[first.to_numpy()]

    declared = np.full(n, -1, dtype=np.int64)
    unknown: dict[str, list[int]] = {}
    ambiguous: dict[str, list[int]] = {}
    for i, text in enumerate(workers["home_community"]):
        if text is None or (not isinstance(text, str) and pd.isna(text)):
            continue
        text = str(text)
        if text in comm_index:
            declared[i] = comm_index[text]
        elif len(name_index.get(text, [])) == 1:
            declared[i] = name_index[text][0]
        elif text in name_index:
            ambiguous.setdefault(text, []).append(int(rows[i]))
        elif has_point[i]:
            declared[i] = -2  # outside the district: use the point
        else:
            unknown.setdefault(text, []).append(int(rows[i]))
    if unknown:
        items = [f"{t!r} at {_validate.rows_text(r)}" for t, r in unknown.items()]
        problems.add(
            f"home community not in the grid layer and no home point ({format_ids(items)}): "
            f"write a community id or name of the grids (e.g. {communities.codes[0]!r} or "
            f"{names[0]!r}), or give the home's lon/lat."
        )
    if ambiguous:
        items = [f"{t!r} at {_validate.rows_text(r)}" for t, r in ambiguous.items()]
        problems.add(
            f"home community name matches several communities ({format_ids(items)}): write "
            "the community id instead."
        )
    mismatch = (declared >= 0) & (point_comm >= 0) & (declared != point_comm)
    home_comm = np.where(declared >= 0, declared, point_comm)

    roles = workers["role"].to_numpy(dtype=object)
    max_units = np.zeros(n, dtype=np.int64)
    max_households = np.zeros(n, dtype=np.int64)
    pinned: list[list[int]] = [[] for _ in range(n)]
    wrong_cap: list[int] = []
    bad_pin: dict[str, list[int]] = {}
    for i in range(n):
        rp = policy.roles[roles[i]]
        own = "max_grids" if rp.scope == "grid" else "max_communities"
        other = "max_communities" if rp.scope == "grid" else "max_grids"
        if not pd.isna(workers[other].iat[i]):
            wrong_cap.append(i)
        cap = workers[own].iat[i]
        max_units[i] = rp.max_units if pd.isna(cap) else int(cap)
        hh_cap = workers["max_households"].iat[i]
        max_households[i] = (rp.max_households or 0) if pd.isna(hh_cap) else int(hh_cap)
        codes = workers["pinned_grid"].iat[i]
        if codes is None or (not isinstance(codes, str) and pd.isna(codes)):
            continue
        for code in str(codes).split(";"):
            if rp.scope == "grid":
                unit = grid_index.get(code)
            elif code in comm_index:
                unit = comm_index[code]
            elif code in grid_index:
                unit = int(grids.community[grid_index[code]])
            else:
                unit = name_index[code][0] if len(name_index.get(code, [])) == 1 else None
            if unit is None:
                bad_pin.setdefault(code, []).append(int(rows[i]))
            elif unit not in pinned[i]:
                pinned[i].append(unit)
    if wrong_cap:
        problems.add(
            f"capacity in the wrong column at {_validate.rows_text(rows[wrong_cap])}: grid "
            "roles take `max_grids`, community roles (mediator, legal_adviser) "
            "`max_communities`; move the value."
        )
    if bad_pin:
        items = [f"{c!r} at {_validate.rows_text(r)}" for c, r in bad_pin.items()]
        problems.add(
            f"pinned grid not in the grid layer ({format_ids(items)}): correct the code or "
            "clear the cell; after grids were redrawn, pass the earlier plan as `previous` "
            "(CLI `--previous`) to keep people near their old grids instead."
        )
    _check_pins(rows, roles, pinned, max_units, max_households, grids, communities, policy,
                problems)
    problems.raise_if_any()
    if mismatch.any():
        warnings.warn(
            f"workers '{source}': the home point lies in another community than the declared "
            f"home community at {_validate.rows_text(rows[mismatch])}; the declared community "
            "counts for the cross-community penalty, the point for distances. Correct one of "
            "them if this is a mistake.",
            GridkitWarning,
            stacklevel=3,
        )
    home_geom = metric.copy()
    no_point = ~has_point
    home_geom[no_point] = communities.geoms[home_comm[no_point]]
    return _People(workers, home_comm, home_geom, pinned, max_units, max_households)


def _check_pins(
    rows: np.ndarray,
    roles: np.ndarray,
    pinned: list[list[int]],
    max_units: np.ndarray,
    max_households: np.ndarray,
    grids: _Units,
    communities: _Units,
    policy: StaffingPolicy,
    problems: _validate.Problems,
) -> None:
    """Pins must fit the person's capacity, one community, and the unit's cap."""
    per_unit: dict[tuple[str, int], list[int]] = {}
    too_many, too_big, spread = [], [], []
    for i, units in enumerate(pinned):
        if not units:
            continue
        rp = policy.roles[roles[i]]
        u = grids if rp.scope == "grid" else communities
        if len(units) > max_units[i]:
            too_many.append(i)
        if max_households[i] and u.households[units].sum() > max_households[i]:
            too_big.append(i)
        if rp.same_community and len(set(u.community[units])) > 1:
            spread.append(i)
        for t in units:
            per_unit.setdefault((roles[i], t), []).append(i)
    if too_many:
        problems.add(
            f"more pinned grids than the person's capacity at {_validate.rows_text(rows[too_many])}"
            ": pin fewer grids or raise `max_grids`/`max_communities`."
        )
    if too_big:
        problems.add(
            f"pinned grids hold more households than `max_households` at "
            f"{_validate.rows_text(rows[too_big])}: pin fewer grids or raise the capacity."
        )
    if spread:
        problems.add(
            f"pinned grids lie in several communities at {_validate.rows_text(rows[spread])}, "
            "but the role's policy has same_community = true: pin grids of one community."
        )
    for (role, t), members in per_unit.items():
        rp = policy.roles[role]
        u = grids if rp.scope == "grid" else communities
        cap = rp.max_people(rp.required(u.households[[t]]))[0]
        if len(members) > cap:
            problems.add(
                f"{len(members)} people of role {role} are pinned to {rp.scope} "
                f"{u.codes[t]} at {_validate.rows_text(rows[members])}, but it takes at most "
                f"{cap}: unpin some of them or raise the policy's `max_per_{rp.scope}`."
            )


def _keep_pairs(
    previous: pd.DataFrame | None,
    old_grids: gpd.GeoDataFrame | None,
    ctx_units: dict[str, _Units],
    metric_crs: Any,
    policy: StaffingPolicy,
) -> tuple[dict[tuple[str, str], set[int]], set[tuple[str, str]]]:
    """Units each previous (worker, role) may keep, and who held any assignment."""
    keep: dict[tuple[str, str], set[int]] = {}
    had: set[tuple[str, str]] = set()
    if previous is None:
        return keep, had
    grids = ctx_units["grid"]
    comm_index = {str(c): i for i, c in enumerate(ctx_units["community"].codes)}
    grid_index = {str(c): i for i, c in enumerate(grids.codes)}
    old_geom: dict[str, Any] = {}
    if old_grids is not None and len(old_grids):
        old_metric = old_grids.to_crs(metric_crs)
        old_geom = dict(zip(old_metric["grid_code"].astype(str), old_metric.geometry, strict=True))
    tree = shapely.STRtree(grids.geoms)
    areas = shapely.area(grids.geoms)
    overlap_cache: dict[str, set[int]] = {}

    def in_place(code: str) -> set[int]:
        if code not in overlap_cache:
            if code in old_geom:
                geom = old_geom[code]
                cand = tree.query(geom, predicate="intersects")
                inter = shapely.area(shapely.intersection(grids.geoms[cand], geom))
                overlap_cache[code] = {
                    int(t) for t, a in zip(cand, inter, strict=True)
                    if a >= _KEEP_SHARE * areas[t] - 1e-6
                }
            else:
                overlap_cache[code] = {grid_index[code]} if code in grid_index else set()
        return overlap_cache[code]

    for rec in previous.itertuples(index=False):
        role, worker = str(rec.role), str(rec.worker_id)
        if role not in policy.roles:
            continue
        had.add((worker, role))
        units = keep.setdefault((worker, role), set())
        code = "" if pd.isna(rec.grid_code) else str(rec.grid_code)
        if policy.roles[role].scope == "grid":
            units |= in_place(code)
        else:
            comm = getattr(rec, "community_id", None)
            comm = None if comm is None or pd.isna(comm) else str(comm)
            if comm in comm_index:
                units.add(comm_index[comm])
            elif code in grid_index:
                units.add(int(grids.community[grid_index[code]]))
    return keep, had


def read_previous(previous: Any) -> tuple[pd.DataFrame | None, gpd.GeoDataFrame | None]:
    """The roster and (when known) the grid layer of an earlier staffing plan.

    Parameters
    ----------
    previous
        ``None``, a :class:`StaffingPlan`, a roster DataFrame, a ``roster.csv`` path, or
        the folder written by ``gridkit assign`` (``roster.csv`` and ``grids.geojson``:
        with the old grid shapes a person counts as "in place" in any new grid that lies at
        least half in their old grid, even when codes changed).

    Returns
    -------
    roster, grids
        ``grids`` is ``None`` when only a roster is known (grids are then matched by code).
    """
    if previous is None:
        return None, None
    if isinstance(previous, StaffingPlan):
        return previous.roster, previous.grids
    grids = None
    if isinstance(previous, pd.DataFrame):
        roster, source = previous, "<DataFrame>"
    elif isinstance(previous, str | os.PathLike):
        path = Path(previous)
        folder = path if path.is_dir() else None
        fix = (
            "Pass the folder exactly as an earlier `gridkit assign --out DIR` wrote it, or "
            "leave out --previous to staff the grids afresh."
        )
        if folder is not None:
            from gridkit.export import check_set, read_output_layer

            check_set(folder, ["roster.csv", "grids.geojson"])
            path = folder / "roster.csv"
            if (folder / "grids.geojson").is_file():
                grids = read_output_layer(
                    folder / "grids.geojson", what="previous staffed grid layer", fix=fix
                )
        source = os.fspath(path)
        if not path.is_file():
            msg = (
                f"previous roster '{source}' not found: pass the folder of an earlier "
                "`gridkit assign --out DIR` run or its roster.csv."
            )
            raise InputError(msg)
        try:
            roster = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False,
                                 na_values=[""])  # fmt: skip
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"cannot read the previous roster '{source}' ({first}). {fix}"
            ) from None
        from gridkit.export import original_text

        roster = roster.map(original_text).rename(columns=original_text)
    else:
        msg = (
            f"`previous` must be a StaffingPlan, a roster DataFrame or a path, got "
            f"{type(previous).__name__}."
        )
        raise InputError(msg)
    missing = [c for c in ("grid_code", "role", "worker_id") if c not in roster.columns]
    if missing:
        msg = (
            f"previous roster '{source}' lacks column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: pass the roster.csv written by `gridkit assign`."
        )
        raise InputError(msg)
    return roster, grids


def _prepare(
    layer: gpd.GeoDataFrame,
    workers: gpd.GeoDataFrame,
    policy: StaffingPolicy,
    previous: Any = None,
) -> _Context:
    """Everything the per-role models need (the geometry half of the adapter)."""
    metric_crs = local_metric_crs(layer)
    metric = layer.geometry.to_crs(metric_crs).to_numpy()
    communities, comm_of_grid = _community_units(layer, metric)
    grids = _Units(
        "grid", layer["grid_code"].to_numpy(dtype=object), comm_of_grid,
        layer["households"].to_numpy(dtype=np.int64), metric,
    )
    names = (
        layer.drop_duplicates("community_id").set_index("community_id")["community_name"]
        .reindex(communities.codes).astype(str).to_numpy(dtype=object)
    )
    people = _resolve_people(workers, grids, communities, names, policy, metric_crs)
    prev_roster, prev_grids = read_previous(previous)
    units = {"grid": grids, "community": communities}
    keep, had = _keep_pairs(prev_roster, prev_grids, units, metric_crs, policy)

    roles_col = workers["role"].to_numpy(dtype=object)
    ids = workers["worker_id"].to_numpy(dtype=object)
    available = ~workers["unavailable"].to_numpy(dtype=bool)
    inputs: list[_RoleInput] = []
    for role in ROLES:
        rp = policy.roles[role]
        u = units[rp.scope]
        members = np.flatnonzero((roles_col == role) & available)
        members = members[np.argsort(ids[members].astype(str), kind="stable")]
        required = rp.required(u.households)
        if len(members) == 0 and not required.any():
            continue
        inputs.append(_role_input(role, rp, u, members, required, people, keep, had, policy))
    return _Context(layer, grids, communities, names, people, policy, inputs,
                    previous is not None)


def _role_input(
    role: str,
    rp: RolePolicy,
    u: _Units,
    members: np.ndarray,
    required: np.ndarray,
    people: _People,
    keep: dict[tuple[str, str], set[int]],
    had: set[tuple[str, str]],
    policy: StaffingPolicy,
) -> _RoleInput:
    """The arrays of one role: candidate pairs, their distances and costs, the capacities."""
    ids = people.frame["worker_id"].to_numpy(dtype=object)
    n_w, n_t = len(members), len(u.codes)
    dist = (
        shapely.distance(people.home_geom[members][:, None], u.geoms[None, :])
        if n_w
        else np.zeros((0, n_t))
    )
    dist = np.round(dist, 1)
    cand = np.ones((n_w, n_t), dtype=bool)
    pruned = n_w * n_t > policy.max_pairs
    if pruned:
        k = policy.candidates
        cand[:] = False
        rows = np.arange(n_w)[:, None]
        cand[rows, np.argsort(dist, axis=1, kind="stable")[:, : min(k, n_t)]] = True
        cols = np.arange(n_t)[None, :]
        cand[np.argsort(dist, axis=0, kind="stable")[: min(k, n_w), :], cols] = True
    keep_mask = np.zeros((n_w, n_t), dtype=bool)
    pin_mask = np.zeros((n_w, n_t), dtype=bool)
    for j, w in enumerate(members):
        for t in keep.get((str(ids[w]), role), ()):
            keep_mask[j, t] = True
        for t in people.pinned[w]:
            pin_mask[j, t] = True
    cand |= keep_mask | pin_mask
    pair_w, pair_t = np.nonzero(cand)
    home = people.home_comm[members][pair_w]
    cross = home != u.community[pair_t]
    distance = dist[pair_w, pair_t]
    cost = np.round(_DM * (distance + policy.cross_community_m * cross)).astype(np.int64)
    problem = RoleProblem(
        households=u.households,
        group=u.community,
        required=required,
        max_people=rp.max_people(required),
        max_units=people.max_units[members],
        max_households=people.max_households[members],
        pair_w=pair_w,
        pair_t=pair_t,
        pair_cost=cost,
        pair_pinned=pin_mask[pair_w, pair_t],
        pair_keep=keep_mask[pair_w, pair_t],
        had_previous=np.array([(str(ids[w]), role) in had for w in members], dtype=bool),
        same_group=rp.same_community,
        assign_all=rp.assign_all,
        hire_max_units=rp.max_units,
        balance_weight=round(_DM * policy.balance_m_per_household),
        idle_cost=round(_DM * policy.idle_m),
    )
    return _RoleInput(role, rp, u, members, distance, cross, problem, pruned)


# --------------------------------------------------------------------------- the main function


def assign_workers(
    grids: GridsLike,
    workers: WorkersLike,
    *,
    policy: PolicyLike = None,
    previous: Any = None,
    time_limit: float = 10.0,
    seed: int = 0,
    threads: int = 1,
    include_phone: bool = False,
    verbose: bool = False,
) -> StaffingPlan:
    """Assign the people of a roster to grids and communities under a staffing policy.

    Parameters
    ----------
    grids
        The grid layer: a GeoDataFrame, ``grids.geojson`` or the ``gridkit partition``
        output folder (see :func:`read_grids`).
    workers
        The roster: a path or frame read with :func:`gridkit.roster.read_workers` (a frame
        it already returned is accepted as is).
    policy
        The staffing policy: ``None`` for the defaults, a TOML path, a dict or a
        :class:`~gridkit.roster.StaffingPolicy` (see :func:`gridkit.roster.load_policy`).
    previous
        An earlier plan to re-staff from (a :class:`StaffingPlan`, its roster, or the
        folder / ``roster.csv`` written by ``gridkit assign``): current assignments are
        kept where the rules still allow, moving as few people as possible.
    time_limit
        CP-SAT deterministic time budget per role and phase (about seconds); roles solved
        by min-cost flow do not use it.
    seed
        CP-SAT random seed.
    threads
        CP-SAT workers per solve (interleaved above 1, so results stay reproducible).
    include_phone
        Put the full phone numbers in ``roster``; by default they are masked
        (``138****5678``): phone numbers are personal data.
    verbose
        Show a progress bar over the roles.

    Returns
    -------
    StaffingPlan
        ``roster``, ``grids``, ``shortages``, ``hires``, ``people``, ``summary``.

    Raises
    ------
    InputError
        Bad grids, roster, policy or previous plan; roster rows that do not match the
        grids (unknown home community without a point, unknown pinned grid, pins beyond a
        capacity).  Every problem is listed with its rows.
    SolverError
        If CP-SAT finds no plan in the time budget (raise ``time_limit``).

    Notes
    -----
    Each role is solved on its own: by min-cost flow when nobody serves more than one grid
    (exact, milliseconds), else by CP-SAT (patterns of up to ``max_grids`` grids of one
    community for ``same_community`` roles).
    Per role, three phases are solved, each keeping the optimum of the previous one:
    fewest new hires (shortages, by community), fewest people moved (re-staffing only),
    then least total cost: home-to-unit distance, plus ``cross_community_m`` for each
    unit outside the person's home community, plus ``balance_m_per_household`` per
    household of workload imbalance, plus ``idle_m`` per idle person of an
    ``assign_all`` role.  See ``docs/staffing.md`` for the model.

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely.geometry import box
    >>> from gridkit.roster import read_workers
    >>> grids = gpd.GeoDataFrame({"grid_code": ["C1-001", "C1-002"], "community_id": "C1",
    ...                           "households": [500, 700]},
    ...                          geometry=[box(115.0, 30.2, 115.005, 30.205),
    ...                                    box(115.005, 30.2, 115.01, 30.205)], crs=4326)
    >>> workers = read_workers(pd.DataFrame({
    ...     "worker_id": ["A", "B"], "name": ["王芳", "李军"], "role": ["专职网格员"] * 2,
    ...     "lon": [115.0075, 115.0025], "lat": [30.2025, 30.2025]}), input_crs="wgs84")
    >>> grid_workers_only = {"roles": {
    ...     "grid_leader": {"per_grid": 0}, "police": {"per_grid": 0},
    ...     "part_time": {"per_grid": 0}, "mediator": {"per_community": 0},
    ...     "legal_adviser": {"per_community": 0}}}
    >>> plan = assign_workers(grids, workers, policy=grid_workers_only)
    >>> plan.roster[["grid_code", "worker_id", "distance_m"]].values.tolist()
    [['C1-001', 'B', 0.0], ['C1-002', 'A', 0.0]]
    >>> plan.shortages.empty, plan.summary["totals"]["all_optimal"]
    (True, True)
    """
    started = time.perf_counter()
    rules = load_policy(policy)
    layer = read_grids(grids)
    if (
        isinstance(workers, gpd.GeoDataFrame)
        and tuple(workers.columns[: len(WORKER_COLUMNS)]) == WORKER_COLUMNS
    ):
        people_frame = workers.copy()  # already normalised by read_workers
    else:
        people_frame = read_workers(workers)
    ctx = _prepare(layer, people_frame, rules, previous)
    solutions: dict[str, RoleSolution] = {}
    timing: dict[str, Any] = {}
    for ri in tqdm(ctx.roles, desc="roles", unit="role", disable=not verbose):
        t0 = time.perf_counter()
        solutions[ri.role] = solve_role(
            ri.problem, time_limit=time_limit, seed=seed, threads=threads, label=ri.role
        )
        timing[ri.role] = round(time.perf_counter() - t0, 3)
        sol = solutions[ri.role]
        logger.info(
            "assign %s: %d people, %d units, %d pairs, %s, cost %.0f m (gap %.3f%%), %d new "
            "people needed, %.2f s", ri.role, ri.problem.n_people, ri.problem.n_units,
            len(ri.problem.pair_w), sol.status, sol.objective / _DM, 100 * sol.gap,
            len(sol.hires), timing[ri.role],
        )
    plan = _assemble(ctx, solutions, time_limit=time_limit, seed=seed, threads=threads,
                     include_phone=include_phone)
    plan.summary["timing"] = {"total_s": round(time.perf_counter() - started, 3),
                              "roles_s": timing}
    logger.info(
        "assign_workers: %d people in %d grids, %d slots missing, %.1f s",
        plan.summary["totals"]["assigned_people"], len(layer),
        plan.summary["totals"]["slots_missing"], plan.summary["timing"]["total_s"],
    )
    return plan


# --------------------------------------------------------------------------- assembling


def _assemble(ctx: _Context, solutions: dict[str, RoleSolution], *, time_limit: float,
              seed: int, threads: int, include_phone: bool) -> StaffingPlan:
    frame = ctx.people.frame
    ids = frame["worker_id"].to_numpy(dtype=object)
    names = frame["name"].to_numpy(dtype=object)
    layer = ctx.layer
    grids_of_comm = [np.flatnonzero(ctx.grids.community == k)
                     for k in range(len(ctx.communities.codes))]

    records: list[_Record] = []
    shortage_rows = []
    hire_rows = []
    role_stats: dict[str, dict[str, Any]] = {}
    served_units = np.zeros(len(frame), dtype=np.int64)
    served_hh = np.zeros(len(frame), dtype=np.int64)
    for ri in ctx.roles:
        sol = solutions[ri.role]
        p = ri.problem
        chosen = np.flatnonzero(sol.chosen)
        for i in chosen:
            w = ri.people[p.pair_w[i]]
            t = int(p.pair_t[i])
            if p.pair_pinned[i]:
                status = "pinned"
            elif not ctx.previous:
                status = "assigned"
            elif p.pair_keep[i]:
                status = "kept"
            elif p.had_previous[p.pair_w[i]]:
                status = "moved"
            else:
                status = "new"
            records.append((ri.role, ri.policy.scope, int(w), t, float(ri.distance[i]),
                            bool(ri.cross[i]), status))
            served_units[w] += 1
            served_hh[w] += int(p.households[t])
        real = np.bincount(p.pair_t[chosen], minlength=p.n_units)
        new = np.zeros(p.n_units, dtype=np.int64)
        for k, units in sol.hires:
            for t in units:
                new[t] += 1
            hire_rows.append({
                "role": ri.role,
                "community_id": str(ctx.communities.codes[k]),
                "community_name": str(ctx.community_names[k]),
                "people": 1,
                "units": ";".join(str(ri.units.codes[t]) for t in units),
            })
        for t in np.flatnonzero(new):
            comm = int(ri.units.community[t])
            shortage_rows.append({
                "scope": ri.policy.scope,
                "grid_code": str(ri.units.codes[t]) if ri.policy.scope == "grid" else "",
                "community_id": str(ctx.communities.codes[comm]),
                "community_name": str(ctx.community_names[comm]),
                "role": ri.role,
                "role_zh": ROLE_LABELS[ri.role],
                "required": int(p.required[t]),
                "assigned": int(real[t]),
                "missing": int(new[t]),
            })
        dist = ri.distance[chosen]
        people_used = len(np.unique(p.pair_w[chosen]))
        loads = np.bincount(p.pair_w[chosen], weights=p.households[p.pair_t[chosen]],
                            minlength=p.n_people)[np.unique(p.pair_w[chosen])]
        phases = [
            {"phase": ph.phase, "status": ph.status,
             "objective": None if ph.objective is None else _units_out(ph.phase, ph.objective),
             "bound": None if ph.bound is None else _units_out(ph.phase, ph.bound)}
            for ph in sol.phases
        ]
        role_stats[ri.role] = {
            "label_zh": ROLE_LABELS[ri.role],
            "scope": ri.policy.scope,
            "people_available": p.n_people,
            "people_assigned": people_used,
            "units": p.n_units,
            "required": int(p.required.sum()),
            "filled": int(real.sum()),
            "missing": int(new.sum()),
            "new_people_needed": len(sol.hires),
            "assignments": len(chosen),
            "total_distance_m": round(float(dist.sum()), 1),
            "mean_distance_m": round(float(dist.mean()), 1) if len(dist) else None,
            "max_distance_m": round(float(dist.max()), 1) if len(dist) else None,
            "cross_community": int(ri.cross[chosen].sum()),
            "households_per_person": {
                "min": int(loads.min()), "mean": round(float(loads.mean()), 1),
                "max": int(loads.max()),
            } if len(loads) else None,
            "solver": {
                "method": sol.method,
                "status": sol.status,
                "objective_m": round(sol.objective / _DM, 1),
                "bound_m": round(sol.bound / _DM, 1),
                "gap": round(sol.gap, 6),
                "phases": phases,
                "pairs": len(p.pair_w),
                "pruned_to_candidates": ri.pruned,
            },
        }

    roster = _roster_frame(records, ctx, grids_of_comm, ids, names, include_phone)
    shortages = pd.DataFrame(shortage_rows, columns=list(SHORTAGE_COLUMNS))
    if len(shortages):
        rank = shortages["role"].map({r: i for i, r in enumerate(ROLES)}).to_numpy()
        order = np.lexsort((rank, shortages["grid_code"].to_numpy(dtype=str),
                            shortages["community_id"].to_numpy(dtype=str)))
        shortages = shortages.iloc[order].reset_index(drop=True)
    hires = _hires_frame(hire_rows)
    enriched = _enrich(layer, roster, shortages, ctx)
    people = _people_frame(ctx, served_units, served_hh, solutions)
    summary = _summary(ctx, role_stats, records, enriched, shortages, hires, people,
                       time_limit=time_limit, seed=seed, threads=threads, solutions=solutions)
    return StaffingPlan(roster=roster, grids=enriched, shortages=shortages, hires=hires,
                        people=people, summary=summary, policy=ctx.policy)


def _units_out(phase: str, value: int) -> float | int:
    """Objective values in report units: metres for the cost phase, counts otherwise."""
    return round(value / _DM, 1) if phase == "cost" else int(value)


def _roster_frame(
    records: list[_Record],
    ctx: _Context,
    grids_of_comm: list[np.ndarray],
    ids: np.ndarray,
    names: np.ndarray,
    include_phone: bool,
) -> pd.DataFrame:
    rows = []
    for role, scope, w, t, dist, _cross, status in records:
        if scope == "grid":
            targets = [t]
            comm = int(ctx.grids.community[t])
        else:
            targets = list(grids_of_comm[t])
            comm = t
        for g in targets:
            rows.append((str(ctx.grids.codes[g]), role, str(ids[w]), str(names[w]),
                         round(dist, 1), str(ctx.communities.codes[comm]), scope, status, w))
    frame = pd.DataFrame(rows, columns=[*ROSTER_COLUMNS, "_w"])
    rank = {r: i for i, r in enumerate(ROLES)}
    if len(frame):
        key = np.lexsort((frame["worker_id"].to_numpy(dtype=str),
                          frame["role"].map(rank).to_numpy(),
                          frame["grid_code"].to_numpy(dtype=str)))
        frame = frame.iloc[key].reset_index(drop=True)
    phones = ctx.people.frame["phone"]
    if phones.notna().any():
        values = phones.to_numpy(dtype=object)[frame["_w"].to_numpy(dtype=np.int64)]
        frame["phone"] = [
            (None if v is None or pd.isna(v) else str(v)) if include_phone else mask_phone(v)
            for v in values
        ]
    return frame.drop(columns="_w")


def _hires_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["role", "community_id", "community_name", "people", "units"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    grouped = (
        frame.groupby(["role", "community_id", "community_name"], sort=False)
        .agg(people=("people", "sum"), units=("units", lambda s: ";".join(sorted(
            {c for v in s for c in v.split(";") if c}))))
        .reset_index()
    )
    rank = {r: i for i, r in enumerate(ROLES)}
    order = np.lexsort((grouped["community_id"].to_numpy(dtype=str),
                        grouped["role"].map(rank).to_numpy()))
    return grouped.iloc[order].reset_index(drop=True)[columns]


def _enrich(layer: gpd.GeoDataFrame, roster: pd.DataFrame, shortages: pd.DataFrame,
            ctx: _Context) -> gpd.GeoDataFrame:
    out = layer.copy()
    for role in ROLES:
        sub = roster[roster["role"] == role]
        joined = sub.groupby("grid_code", sort=True)["name"].agg(_SEPARATOR.join).to_dict()
        out[role] = pd.Series([joined.get(c, "") for c in out["grid_code"]], dtype=object,
                              index=out.index)
    rank = {r: i for i, r in enumerate(ROLES)}
    missing: dict[str, list[tuple[int, str]]] = {code: [] for code in out["grid_code"]}
    for rec in shortages.itertuples(index=False):
        if rec.scope == "grid":
            targets = [rec.grid_code]
        else:
            targets = out.loc[out["community_id"] == rec.community_id, "grid_code"].tolist()
        for code in targets:
            missing[code].append((rank[rec.role], f"{rec.role}:{rec.missing}"))
    out[MISSING_COLUMN] = out["grid_code"].map(
        lambda c: ";".join(text for _, text in sorted(missing[c]))
    ).astype(object)
    geometry = out.geometry.name
    columns = [c for c in out.columns if c != geometry] + [geometry]
    return out[columns]


def _people_frame(
    ctx: _Context,
    served_units: np.ndarray,
    served_hh: np.ndarray,
    solutions: dict[str, RoleSolution],
) -> pd.DataFrame:
    frame = ctx.people.frame
    roles = frame["role"].to_numpy(dtype=object)
    unavailable = frame["unavailable"].to_numpy(dtype=bool)
    status, reason = [], []
    short_roles = {r for r, s in solutions.items() if s.hires}
    for i in range(len(frame)):
        rp = ctx.policy.roles[roles[i]]
        if unavailable[i]:
            status.append("unavailable")
            reason.append("marked unavailable in the roster")
        elif served_units[i]:
            status.append("assigned")
            reason.append("")
        elif rp.assign_all:
            status.append("idle")
            reason.append(f"every {rp.scope} near them already has max_per_{rp.scope} people")
        else:
            status.append("spare")
            reason.append(
                "not needed: every requirement of the role is met"
                if roles[i] not in short_roles
                else "no place within the rules (capacity, one community)"
            )
    comm = ctx.people.home_comm
    return pd.DataFrame({
        "worker_id": frame["worker_id"].astype(str).to_numpy(),
        "name": frame["name"].astype(str).to_numpy(),
        "role": roles,
        "status": status,
        "units": served_units,
        "households": served_hh,
        "max_units": ctx.people.max_units,
        "max_households": ctx.people.max_households,
        "pinned": frame["pinned_grid"].fillna("").astype(str).to_numpy(),
        "home_community": [str(ctx.communities.codes[c]) if c >= 0 else "" for c in comm],
        "reason": reason,
        "row": frame["row"].to_numpy(),
    })


def _summary(ctx: _Context, role_stats: dict[str, dict[str, Any]], records: list[_Record],
             enriched: gpd.GeoDataFrame, shortages: pd.DataFrame, hires: pd.DataFrame,
             people: pd.DataFrame, *,
             time_limit: float, seed: int, threads: int,
             solutions: dict[str, RoleSolution]) -> dict[str, Any]:
    dist = np.array([r[4] for r in records]) if records else np.zeros(0)
    statuses = people["status"].value_counts()
    gaps = [s.gap for s in solutions.values()]
    totals: dict[str, Any] = {
        "grids": len(ctx.layer),
        "communities": len(ctx.communities.codes),
        "households": int(ctx.layer["households"].sum()),
        "people": len(people),
        "assigned_people": int(statuses.get("assigned", 0)),
        "unavailable_people": int(statuses.get("unavailable", 0)),
        "spare_people": int(statuses.get("spare", 0)),
        "idle_people": int(statuses.get("idle", 0)),
        "slots_required": sum(s["required"] for s in role_stats.values()),
        "slots_filled": sum(s["filled"] for s in role_stats.values()),
        "slots_missing": int(shortages["missing"].sum()) if len(shortages) else 0,
        "grids_fully_staffed": int((enriched[MISSING_COLUMN] == "").sum()),
        "new_people_needed": int(hires["people"].sum()) if len(hires) else 0,
        "assignments": len(records),
        "total_distance_m": round(float(dist.sum()), 1),
        "mean_distance_m": round(float(dist.mean()), 1) if len(dist) else None,
        "cross_community_assignments": int(sum(r[5] for r in records)),
        "all_optimal": all(s.status == "OPTIMAL" for s in solutions.values()),
        "max_gap": round(max(gaps), 6) if gaps else 0.0,
    }
    if ctx.previous:
        st = pd.Series([r[6] for r in records], dtype=object)
        had = {w for ri in ctx.roles for w, h in zip(ri.people, ri.problem.had_previous,
                                                      strict=True) if h}
        moved = {r[2] for r in records if r[6] == "moved"}
        assigned = {r[2] for r in records}
        released = {w for w in had if w not in assigned}
        totals["restaffing"] = {
            "pairs_kept": int((st == "kept").sum()),
            "people_previously_assigned": len(had),
            "people_kept_in_place": len(had - moved - released),
            "people_moved": len(moved),
            "people_released": len(released),
            "people_new": len(assigned - had),
        }
    not_assigned = people[people["status"] != "assigned"]
    return {
        "gridkit_version": __version__,
        "parameters": {
            "time_limit": time_limit,
            "seed": seed,
            "threads": threads,
            "distance": "metres from the home point to the nearest point of the grid "
            "(community for community roles), 0 inside; from the home community's boundary "
            "when only the community is known",
            "metric_crs": str(local_metric_crs(ctx.layer).to_string()),
            "policy": ctx.policy.to_dict(),
        },
        "totals": totals,
        "roles": role_stats,
        "new_people_needed": hires.to_dict(orient="records"),
        "people_not_assigned": [
            {"worker_id": r.worker_id, "role": r.role, "status": r.status, "reason": r.reason,
             "row": int(r.row)}
            for r in not_assigned.itertuples(index=False)
        ],
    }


# --------------------------------------------------------------------------- verification


def verify_staffing(plan: StaffingPlan) -> list[str]:
    """Check every hard rule of a plan; return the problems found (empty when it holds).

    Checked: every grid (community) has its required people of each role, counting the
    reported shortages; no grid exceeds its maximum; nobody serves more grids,
    communities or households than their capacity, or grids of several communities
    where the policy forbids it; pinned people serve their pinned grids; unavailable
    people serve nowhere; every roster person is in ``plan.people`` once.

    Parameters
    ----------
    plan
        A plan from :func:`assign_workers`.

    Returns
    -------
    list of str
        One sentence per broken rule.
    """
    problems: list[str] = []
    grids, roster, people = plan.grids, plan.roster, plan.people
    comm_hh = grids.groupby("community_id")["households"].sum()
    grid_hh = grids.set_index("grid_code")["households"]
    short = {
        (r.scope, r.grid_code if r.scope == "grid" else r.community_id, r.role): int(r.missing)
        for r in plan.shortages.itertuples(index=False)
    }
    for role, rp in plan.policy.roles.items():
        sub = roster[roster["role"] == role]
        if rp.scope == "grid":
            units, hh = grid_hh.index.to_numpy(dtype=object), grid_hh.to_numpy(dtype=np.int64)
            counts = sub.groupby("grid_code").size()
        else:
            units, hh = comm_hh.index.to_numpy(dtype=object), comm_hh.to_numpy(dtype=np.int64)
            counts = sub.drop_duplicates(["community_id", "worker_id"]).groupby(
                "community_id").size()
        need = rp.required(hh)
        for code, r, cap in zip(units, need, rp.max_people(need), strict=True):
            have = int(counts.get(code, 0))
            missing = short.get((rp.scope, code, role), 0)
            if have + missing < r:
                problems.append(f"{rp.scope} {code} has {have} {role} (+{missing} reported "
                                f"missing) but needs {r}")
            if have > cap:
                problems.append(f"{rp.scope} {code} has {have} {role}, more than {cap}")
    if people["worker_id"].duplicated().any():
        problems.append("plan.people lists someone twice")
    info = people.set_index("worker_id")
    for worker, rows in roster.groupby("worker_id", sort=True):
        if worker not in info.index:
            problems.append(f"{worker} is in the roster but not in plan.people")
            continue
        person = info.loc[worker]
        rp = plan.policy.roles[person["role"]]
        if (rows["role"] != person["role"]).any():
            problems.append(f"{worker} serves as another role than their own")
        if person["status"] != "assigned":
            problems.append(f"{worker} is {person['status']} but serves grids")
        if rp.scope == "grid":
            served = rows["grid_code"].unique()
            hh = int(grid_hh.loc[served].sum())
        else:
            served = rows["community_id"].unique()
            hh = int(comm_hh.loc[served].sum())
        if len(served) > person["max_units"]:
            problems.append(f"{worker} serves {len(served)} {rp.scope}s, capacity "
                            f"{person['max_units']}")
        if person["max_households"] and hh > person["max_households"]:
            problems.append(f"{worker} serves {hh} households, capacity "
                            f"{person['max_households']}")
        if rp.same_community and rows["community_id"].nunique() > 1:
            problems.append(f"{worker} ({rp.role}) serves grids of several communities")
    assigned = set(roster["worker_id"])
    for person in people.itertuples(index=False):
        pins = [c for c in str(person.pinned).split(";") if c]
        if not pins:
            continue
        rp = plan.policy.roles[person.role]
        rows = roster[roster["worker_id"] == person.worker_id]
        held = set(rows["grid_code"]) | set(rows["community_id"])
        if rp.scope == "community":
            held |= set(rows["community_id"].map(dict(zip(grids["community_id"],
                                                           grids["community_name"],
                                                           strict=False))))
        if not set(pins) <= held:
            problems.append(f"{person.worker_id} is pinned to {', '.join(pins)} but serves "
                            f"{', '.join(sorted(map(str, held))) or 'nothing'}")
        if person.status == "unavailable" and person.worker_id in assigned:
            problems.append(f"{person.worker_id} is unavailable but assigned")
    return problems
