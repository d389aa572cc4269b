"""What :func:`gridkit.regenerate.regenerate` returns and writes: the new plan with its
changes (``changes.csv``), the grid diff (``diff.geojson``), the summary and the codes ever
issued (``codes.json``).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.export import (
    PLAN_FILES,
    OutputSet,
    to_assignments_csv,
    to_geojson,
    to_report_json,
    write_plan_files,
)
from gridkit.maps import add_changes_layer, explore, save_map
from gridkit.pipeline import GridPlan, pct_floor
from gridkit.regenerate.community import CommunityOutcome
from gridkit.regenerate.previous import CODES_FILE, Previous

__all__ = ["CHANGE_COLUMNS", "REGEN_FILES", "RegenPlan", "build_regen_plan"]

log = logging.getLogger(__name__)

#: Files ``regenerate`` writes beside those of a grid plan, by kind.
REGEN_FILES = {
    "changes": "changes.csv",
    "diff": "diff.geojson",
    "summary": "summary.json",
    "codes": CODES_FILE,
}
#: Columns of ``changes.csv``.
CHANGE_COLUMNS = [
    "household_id",
    "row",
    "building_id",
    "community_id",
    "households",
    "old_grid_code",
    "new_grid_code",
    "change",
]


@dataclass
class RegenPlan:
    """What :func:`regenerate` produces.

    Attributes
    ----------
    grids, assignments
        The full new grid layer and household table (the contract of ``gridkit partition``).
    changes
        One row per household row whose grid changed (:data:`CHANGE_COLUMNS`).
    diff
        Every grid of either map with ``change`` = ``unchanged``, ``reshaped``,
        ``added`` or ``removed`` (EPSG:4326; removed grids keep their old polygon).
    report
        The partition report plus a ``regenerate`` section (the summary).
    summary
        Households unchanged %, grids kept / changed / added / retired, retired codes.
    codes
        Every code ever issued per community (what ``codes.json`` holds).
    plan
        The underlying :class:`gridkit.pipeline.GridPlan`.
    """

    grids: gpd.GeoDataFrame
    assignments: pd.DataFrame
    changes: pd.DataFrame
    diff: gpd.GeoDataFrame
    report: dict
    summary: dict
    codes: dict[str, list[str]]
    plan: GridPlan = field(repr=False)

    def write(
        self, out_dir: str | os.PathLike, *, map_html: bool = False, offline: bool = True
    ) -> dict[str, Path]:
        """Write the grid layer (as ``partition``), changes.csv, diff.geojson, summary.json
        and codes.json (and map.html with the changed grids highlighted).

        ``report.json`` holds the partition report plus a ``regenerate`` section (the
        figures of ``summary.json``).  The map needs no network unless ``offline=False``.
        """
        names = {k: v for k, v in PLAN_FILES.items() if k != "map"}
        names.update({**REGEN_FILES, "map": PLAN_FILES["map"]})
        with OutputSet(out_dir, "regenerate", known=names.values()) as outputs:
            self.plan.report["regenerate"] = self.summary
            write_plan_files(self.plan, outputs, map_html=False)
            to_assignments_csv(self.changes, outputs.path(names["changes"]))
            to_geojson(self.diff, outputs.path(names["diff"]))
            to_report_json(self.summary, outputs.path(names["summary"]))
            codes = {
                "format": "gridkit-codes/1",
                "communities": {
                    cid: {
                        "issued": sorted(issued),
                        "retired": sorted(set(issued) - set(self._in_use.get(cid, []))),
                    }
                    for cid, issued in sorted(self.codes.items())
                },
            }
            to_report_json(codes, outputs.path(names["codes"]))
            if map_html:
                self._write_map(outputs.path(names["map"]), offline=offline)
            written = outputs.commit()
        return {kind: written[name] for kind, name in names.items() if name in written}

    @property
    def _in_use(self) -> dict[str, list[str]]:
        return self.grids.groupby("community_id")["grid_code"].agg(list).to_dict()

    def _write_map(self, path: Path, *, offline: bool = True) -> Path:
        m = explore(self.grids, communities=self.plan.units.communities, offline=offline)
        return save_map(add_changes_layer(m, self.diff), path)


def build_regen_plan(
    plan: GridPlan,
    prev: Previous,
    units,
    old_codes: np.ndarray,
    row_hh: np.ndarray,
    row_existing: np.ndarray,
    unit_existing: np.ndarray,
    outcomes: list[CommunityOutcome],
    started: float,
    *,
    row_old_codes: np.ndarray | None = None,
) -> RegenPlan:
    """Changes, diff, summary and issued codes of a regenerated plan.

    ``row_old_codes`` gives the previous grid of the household rows without a unit (in
    a dedicated parcel), ``""`` elsewhere."""
    u = units.units
    membership = units.membership
    households = plan.assignments
    uid = membership["unit_id"]
    has_unit = uid.notna().to_numpy()
    row_old = np.full(len(membership), "", dtype=object)
    row_old[has_unit] = old_codes[uid[has_unit].to_numpy(dtype=np.int64)]
    if row_old_codes is not None:
        extra = ~has_unit & (np.asarray(row_old_codes, dtype=object) != "")
        row_old[extra] = np.asarray(row_old_codes, dtype=object)[extra]
    new_codes = households["grid_code"].to_numpy(dtype=object)
    # unit-level new codes
    unit_new = np.full(len(u), "", dtype=object)
    unit_new[uid[has_unit].to_numpy(dtype=np.int64)] = new_codes[has_unit]
    hh_unit = u["households"].to_numpy(dtype=np.int64)
    hh_prev = np.where(unit_existing, hh_unit, 0)  # households that were there before
    row_old[~row_existing] = ""  # a new building had no grid
    changed = (row_old != new_codes) | (~row_existing & (new_codes != ""))
    change = np.where(
        ~row_existing,
        "new",
        np.where(row_old == "", "placed", np.where(new_codes == "", "unassigned", "moved")),
    ).astype(object)
    changes = pd.DataFrame(
        {
            "household_id": households["household_id"].to_numpy(),
            "row": households["row"].to_numpy(),
            "building_id": _row_buildings(units, has_unit, uid),
            "community_id": households["community_id"].to_numpy(),
            "households": pd.array(row_hh, dtype="Int64"),
            "old_grid_code": row_old,
            "new_grid_code": new_codes,
            "change": change,
        }
    )[changed]
    ids = prev.household_ids
    if ids is not None:  # households of the previous run that are gone (demolished)
        a = prev.assignments
        gone = a[~a["household_id"].isin(set(households["household_id"].astype(str)))]
        gone = gone[gone["grid_code"] != ""]
        removed = pd.DataFrame(
            {
                "household_id": gone["household_id"].to_numpy(),
                "row": pd.array([pd.NA] * len(gone), dtype="Int64"),
                "building_id": "",
                "community_id": gone["community_id"].to_numpy() if "community_id" in gone else "",
                "households": pd.array([pd.NA] * len(gone), dtype="Int64"),
                "old_grid_code": gone["grid_code"].to_numpy(),
                "new_grid_code": "",
                "change": "removed",
            }
        )
        changes = pd.concat([changes, removed], ignore_index=True) if len(removed) else changes
    changes = changes.reset_index(drop=True)[CHANGE_COLUMNS]
    # grid-level diff
    old = prev.grids
    old_by_code = old.set_index("grid_code")
    new = plan.grids
    rows = []
    before = set(old["grid_code"])
    after = set(new["grid_code"])
    for r in new.itertuples():
        code = r.grid_code
        members = unit_new == code
        if code in before:
            o = old_by_code.loc[code]
            located = old_codes == code
            moved_in = int(hh_prev[members & ~located].sum())
            moved_out = int(hh_prev[located & ~members].sum())
            same = moved_in == 0 and moved_out == 0
            geometry_changed = not shapely.equals_exact(
                shapely.normalize(o.geometry), shapely.normalize(r.geometry), tolerance=1e-6
            )
            rows.append(
                (code, r.community_id, "unchanged" if same else "reshaped", int(o["households"]),
                 int(r.households), int(o["buildings"]), int(r.buildings), moved_in, moved_out,
                 geometry_changed, r.geometry)
            )  # fmt: skip
        else:
            moved_in = int(hh_prev[members].sum())
            rows.append(
                (code, r.community_id, "added", 0, int(r.households), 0, int(r.buildings),
                 moved_in, 0, True, r.geometry)
            )  # fmt: skip
    for o in old[~old["grid_code"].isin(after)].itertuples():
        located = old_codes == o.grid_code
        rows.append(
            (o.grid_code, o.community_id, "removed", int(o.households), 0, int(o.buildings), 0,
             0, int(hh_prev[located].sum()), True, o.geometry)
        )  # fmt: skip
    cols = [
        "grid_code", "community_id", "change", "old_households", "households", "old_buildings",
        "buildings", "households_in", "households_out", "geometry_changed", "geometry",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=cols).sort_values("grid_code", kind="stable")
    diff = gpd.GeoDataFrame(frame.reset_index(drop=True), geometry="geometry", crs=4326)
    # codes ever issued
    issued = {cid: set(codes) for cid, codes in prev.issued.items()}
    for cid, code in zip(new["community_id"], new["grid_code"], strict=True):
        issued.setdefault(str(cid), set()).add(str(code))
    kinds = Counter(diff["change"])
    base = row_existing & (row_old != "")
    base_hh = int(row_hh[base].sum())
    kept_hh = int(row_hh[base & (row_old == new_codes)].sum())
    retired = sorted(before - after)
    summary = {
        "previous": prev.source,
        "households": int(row_hh.sum()),
        "households_in_previous_grids": base_hh,
        "households_unchanged": kept_hh,
        "households_moved": base_hh - kept_hh,
        "households_unchanged_pct": pct_floor(kept_hh, base_hh),
        "households_new": int(row_hh[~row_existing & (new_codes != "")].sum()),
        "households_placed": int(row_hh[row_existing & ~base & (new_codes != "")].sum()),
        "rows_removed": int((changes["change"] == "removed").sum()),
        "grids_previous": len(before),
        "grids": len(after),
        "grids_kept": int(kinds.get("unchanged", 0)),
        "grids_changed": int(kinds.get("reshaped", 0)),
        "grids_added": int(kinds.get("added", 0)),
        "grids_retired": int(kinds.get("removed", 0)),
        "kept_grids_with_new_polygon": int(
            ((diff["change"] == "unchanged") & diff["geometry_changed"]).sum()
        ),
        "added_codes": sorted(after - before),
        "retired_codes": retired,
        "communities_re_solved": [
            {
                "community_id": o.plan.community_id,
                "units_re_solved": o.region_units,
                "previous_grids_freed": o.region_grids,
                "whole_community": o.expanded,
            }
            for o in outcomes
            if o.region_units
        ],
        "time_s": round(time.perf_counter() - started, 3),
    }
    report = dict(plan.report)
    report["regenerate"] = summary
    codes = {cid: sorted(c) for cid, c in issued.items()}
    log.info(
        "regenerated %d grids: %d kept, %d changed, %d added, %d retired; %.2f%% of households "
        "unchanged",
        len(after),
        summary["grids_kept"],
        summary["grids_changed"],
        summary["grids_added"],
        summary["grids_retired"],
        summary["households_unchanged_pct"],
    )
    return RegenPlan(
        grids=plan.grids,
        assignments=plan.assignments,
        changes=changes,
        diff=diff,
        report=report,
        summary=summary,
        codes=codes,
        plan=plan,
    )


def _row_buildings(units, has_unit: np.ndarray, uid: pd.Series) -> np.ndarray:
    out = np.full(len(has_unit), "", dtype=object)
    b = units.units["building_id"].to_numpy(dtype=object)
    vals = b[uid[has_unit].to_numpy(dtype=np.int64)]
    out[has_unit] = [str(v) if v is not None and not pd.isna(v) else "" for v in vals]
    return out
