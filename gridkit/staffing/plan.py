"""The staffing plan that :func:`gridkit.staffing.assign_workers` returns, its files, its checks.

:class:`StaffingPlan` holds who serves each grid and what is missing, and writes the
:data:`STAFFING_FILES`; :func:`read_previous_roster` reads an earlier plan back (for
re-staffing); :func:`verify_staffing` checks every hard rule of a plan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import ROSTER_COLUMNS, SHORTAGE_COLUMNS
from gridkit.errors import InputError
from gridkit.export import (
    OutputSet,
    check_set,
    original_text,
    read_output_layer,
    to_assignments_csv,
    to_geojson,
    to_report_json,
)
from gridkit.maps import explore, save_map
from gridkit.staffing.policy import StaffingPolicy

__all__ = [
    "ROSTER_COLUMNS",
    "SHORTAGE_COLUMNS",
    "STAFFING_FILES",
    "StaffingPlan",
    "read_previous_roster",
    "verify_staffing",
]

#: Files ``gridkit assign`` writes, by kind (one set: :class:`gridkit.export.OutputSet`).
STAFFING_FILES = {
    "roster": "roster.csv",
    "grids": "grids.geojson",
    "shortages": "shortages.csv",
    "report": "staffing_report.json",
    "map": "map.html",
}


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
    buildings
        The buildings building roles served (``building_id``, ``grid_code``,
        ``community_id``, ``households``); ``None`` without building roles.
    applies
        Per role limited to some units (weak grids, listed grids, grid types,
        ``min_households``), the codes (grid codes, community ids or building ids) of
        the units it applies to; a role not listed applies to every unit of its scope.
    """

    roster: pd.DataFrame
    grids: gpd.GeoDataFrame
    shortages: pd.DataFrame
    hires: pd.DataFrame
    people: pd.DataFrame
    summary: dict[str, Any]
    policy: StaffingPolicy = field(repr=False)
    buildings: pd.DataFrame | None = field(default=None, repr=False)
    applies: dict[str, list[str]] = field(default_factory=dict, repr=False)

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
        report = {k: v for k, v in self.summary.items() if k != "timing"}
        with OutputSet(out_dir, "assign", known=STAFFING_FILES.values()) as out:
            to_assignments_csv(self.roster, out.path(STAFFING_FILES["roster"]))
            to_geojson(self.grids, out.path(STAFFING_FILES["grids"]))
            to_assignments_csv(self.shortages, out.path(STAFFING_FILES["shortages"]))
            to_report_json(report, out.path(STAFFING_FILES["report"]))
            if map_html:
                save_map(
                    explore(self.grids, offline=offline), out.path(STAFFING_FILES["map"])
                )
            written = out.commit()
        return {kind: written[n] for kind, n in STAFFING_FILES.items() if n in written}


# --------------------------------------------------------------------------- an earlier plan


def read_previous_roster(previous: Any) -> tuple[pd.DataFrame | None, gpd.GeoDataFrame | None]:
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


# --------------------------------------------------------------------------- verification


def verify_staffing(plan: StaffingPlan) -> list[str]:
    """Check every hard rule of a plan; return the problems found (empty when it holds).

    Checked: every grid (community, building) a role applies to has its required people
    of the role, counting the reported shortages, and no unit exceeds its maximum or is
    served where the role does not apply; nobody serves more units or households than
    their capacity, or grids of several communities where the policy forbids it, or
    outside their home community where the role has ``home_community = "same"``;
    pinned people serve their pinned units; unavailable and ineligible people serve
    nowhere; every roster person is in ``plan.people`` once.

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
    hh_of = {
        "grid": grids.set_index("grid_code")["households"],
        "community": grids.groupby("community_id")["households"].sum(),
    }
    if plan.buildings is not None:
        hh_of["building"] = plan.buildings.set_index("building_id")["households"]
    key_of = {"grid": "grid_code", "community": "community_id", "building": "building_id"}
    short = {
        (r.scope, _unit_code(r), r.role): int(r.missing)
        for r in plan.shortages.itertuples(index=False)
    }
    for role, rp in plan.policy.roles.items():
        if rp.unit not in hh_of:
            problems.append(f"{role} serves buildings but the plan has no buildings")
            continue
        sub = roster[roster["role"] == role]
        hh = hh_of[rp.unit]
        if role in plan.applies:
            hh = hh.reindex(plan.applies[role])
        units, hh = hh.index.to_numpy(dtype=object), hh.to_numpy(dtype=np.int64)
        counts = sub.drop_duplicates([key_of[rp.unit], "worker_id"]).groupby(
            key_of[rp.unit]).size()
        outside = sorted(set(counts.index.astype(str)) - set(units.astype(str)))
        if outside:
            problems.append(f"{role} serves {', '.join(outside)}, where the role does not apply")
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
        served = rows[key_of[rp.unit]].unique() if rp.unit in hh_of else []
        hh = int(hh_of[rp.unit].reindex(served).sum()) if rp.unit in hh_of else 0
        if len(served) > person["max_units"]:
            problems.append(f"{worker} serves {len(served)} {rp.unit}s, capacity "
                            f"{person['max_units']}")
        if person["max_households"] and hh > person["max_households"]:
            problems.append(f"{worker} serves {hh} households, capacity "
                            f"{person['max_households']}")
        if rp.same_community and rows["community_id"].nunique() > 1:
            problems.append(f"{worker} ({rp.role}) serves grids of several communities")
        if rp.home_community == "same" and (rows["community_id"] != person["home_community"]
                                            ).any():
            problems.append(f"{worker} ({rp.role}) serves outside their home community")
    assigned = set(roster["worker_id"])
    for person in people.itertuples(index=False):
        pins = [c for c in str(person.pinned).split(";") if c]
        if not pins:
            continue
        rp = plan.policy.roles[person.role]
        rows = roster[roster["worker_id"] == person.worker_id]
        held = set(rows["grid_code"]) | set(rows["community_id"])
        if "building_id" in rows:
            held |= set(rows["building_id"])
        if rp.unit == "community":
            held |= set(rows["community_id"].map(dict(zip(grids["community_id"],
                                                           grids["community_name"],
                                                           strict=False))))
        if not set(pins) <= held:
            problems.append(f"{person.worker_id} is pinned to {', '.join(pins)} but serves "
                            f"{', '.join(sorted(map(str, held))) or 'nothing'}")
        if person.status == "unavailable" and person.worker_id in assigned:
            problems.append(f"{person.worker_id} is unavailable but assigned")
    return problems


def _unit_code(row: Any) -> str:
    """The unit a shortage row is about: its building, grid or community."""
    if row.scope == "building":
        return str(row.building_id)
    return str(row.grid_code) if row.scope == "grid" else str(row.community_id)
