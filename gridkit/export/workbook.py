"""The Excel summary of an output folder: one sheet per level, Chinese headers, totals.

``gridkit export DIR --to summary.xlsx`` (or :func:`write_summary_xlsx`) turns the grid
layer of a ``partition``, ``regenerate`` or ``assign`` folder into the workbook a street
office prints or forwards:

========  ==============================================================================
sheet     rows
========  ==============================================================================
街道      one per street: communities, grids, households, buildings, grids in bounds and
          their share, households per grid (mean, fewest, most), staffing when present
社区      one per community, the same figures, plus whether it needs attention and why
网格      one per grid: code, name, type, district, street, community, households,
          buildings, compounds, area, compactness, status (code and words), the people
          serving it when staffed (dedicated grids, 专属网格, are counted apart on the
          other sheets: 专属网格数, and left out of the share in bounds)
需要处理  what needs a person's action (:mod:`gridkit.export.headlines`), when ``report.json``
          is in the folder
========  ==============================================================================

Every sheet ends with a 合计 (total) row.  Cells go through
:func:`gridkit.export.spreadsheet_safe`, like every table gridkit writes, and the file
is written whole or not at all.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import (
    GRID_TYPE_WORDS,
    IN_BOUNDS_STATUSES,
    ROLE_LABELS,
    STAFFING_COLUMNS,
    STATUS_WORDS,
    UNBOUNDED_STATUSES,
)
from gridkit.errors import InputError
from gridkit.export.files import original_text, spreadsheet_safe
from gridkit.export.headlines import CAUSES, attention
from gridkit.export.outputs import atomic_write_bytes, check_set, read_output_layer

__all__ = ["GRID_HEADERS", "ROLE_HEADERS", "summary_tables", "write_summary_xlsx"]

#: Chinese headers of the grid sheet, by grid-layer column.
GRID_HEADERS: dict[str, str] = {
    "grid_code": "网格编码",
    "grid_name": "网格名称",
    "grid_type": "网格类型",
    "district_name": "区县",
    "district_code": "区县代码",
    "street": "街道",
    "street_code": "街道代码",
    "community_id": "社区代码",
    "community_name": "社区名称",
    "households": "户数",
    "buildings": "楼栋数",
    "compounds": "所含小区",
    "area_m2": "面积（平方米）",
    "compactness": "紧凑度",
    "status": "状态代码",
    "status_words": "状态",
}

#: Chinese names of the staffing columns (``gridkit assign``), in order.
ROLE_HEADERS: dict[str, str] = {r: ROLE_LABELS[r] for r in STAFFING_COLUMNS if r in ROLE_LABELS}
_MISSING = "missing_roles"
_TOTAL = "合计"


def _names(values: pd.Series) -> set[str]:
    """The people named in staffing cells ("张三、李四"), each once."""
    out: set[str] = set()
    for value in values:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        out.update(v.strip() for v in str(value).split("、") if v.strip())
    return out


def _read_folder(folder: Path) -> tuple[gpd.GeoDataFrame, dict | None, pd.DataFrame | None]:
    path = folder / "grids.geojson"
    if not path.is_file():
        raise InputError(
            f"folder '{folder}' holds no grids.geojson: pass the folder written by "
            "`gridkit partition`, `regenerate` or `assign`."
        )
    check_set(folder, ["grids.geojson", "report.json"])
    grids = read_output_layer(
        path, what="grid layer", fix="Write the folder again with the gridkit command."
    )
    report = None
    report_path = folder / "report.json"
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(
                f"'{report_path}' is not valid JSON ({exc}): write the folder again."
            ) from None
    roster = None
    roster_path = folder / "roster.csv"
    if roster_path.is_file():
        check_set(folder, ["roster.csv"])
        roster = pd.read_csv(roster_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        roster = roster.map(original_text).rename(columns=original_text)
        if not {"role", "worker_id", "community_id", "status"} <= set(roster.columns):
            roster = None
    return grids, report, roster


def _level(
    frame: pd.DataFrame, keys: list[str], roles: list[str], roster: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Figures of one level (street or community) from the grid table.

    People are counted once each: by ``worker_id`` in ``roster.csv`` when the folder
    has one, else by name in the grid layer.
    """
    g = frame.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame(
        {
            "社区数": g["community_id"].nunique(),
            "网格数": g.size(),
            "户数": g["households"].sum(),
            "楼栋数": g["buildings"].sum(),
            "达标网格数": g["in_bounds"].sum(),
        }
    )
    if frame["dedicated"].any():  # dedicated grids: counted apart, no household bounds
        out["专属网格数"] = g["dedicated"].sum()
        residential = frame[~frame["dedicated"]].groupby(keys, dropna=False, sort=True)
        hh = residential["households"]
        out["达标率（%）"] = (
            100 * out["达标网格数"] / (out["网格数"] - out["专属网格数"]).clip(lower=1)
        ).round(1)
        out["平均每格户数"] = hh.mean().reindex(out.index).round(0)
        out["最少户数"] = hh.min().reindex(out.index)
        out["最多户数"] = hh.max().reindex(out.index)
    else:
        out["达标率（%）"] = (100 * out["达标网格数"] / out["网格数"]).round(1)
        out["平均每格户数"] = g["households"].mean().round(0)
        out["最少户数"] = g["households"].min()
        out["最多户数"] = g["households"].max()
    for role in roles:  # people, each counted once (a mediator serves several grids)
        if roster is not None:
            mine = roster[roster["role"] == role]
            counts = mine.groupby(keys, dropna=False)["worker_id"].nunique()
            out[f"{ROLE_HEADERS[role]}人数"] = counts.reindex(out.index).fillna(0).astype(int)
        else:
            out[f"{ROLE_HEADERS[role]}人数"] = g[role].agg(_names).map(len)
    if roles:
        out["缺员网格数"] = g["short"].sum()
    return out.reset_index()


def _total_row(
    table: pd.DataFrame,
    label_col: str,
    grids: pd.DataFrame,
    roles,
    roster: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``table`` with a 合计 row: sums, and shares / means over all grids."""
    total: dict[str, object] = dict.fromkeys(table.columns)
    total[label_col] = _TOTAL
    for col in table.columns:
        if col in ("社区数",):
            total[col] = int(grids["community_id"].nunique())
        elif col in ("网格数",):
            total[col] = len(grids)
        elif col in ("户数", "楼栋数", "达标网格数", "缺员网格数", "专属网格数"):
            total[col] = table[col].sum()
        elif col.endswith("人数"):
            role = next(r for r, h in ROLE_HEADERS.items() if f"{h}人数" == col)
            total[col] = (
                len(_names(grids[role]))
                if roster is None
                else int(roster.loc[roster["role"] == role, "worker_id"].nunique())
            )
    if "达标率（%）" in table.columns:
        sized = grids[~grids["dedicated"]] if grids["dedicated"].any() else grids
        total["达标率（%）"] = round(100 * int(grids["in_bounds"].sum()) / max(len(sized), 1), 1)
        total["平均每格户数"] = round(float(sized["households"].mean()), 0) if len(sized) else 0
        total["最少户数"] = sized["households"].min()
        total["最多户数"] = sized["households"].max()
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def summary_tables(
    grids: pd.DataFrame, report: dict | None = None, roster: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """The sheets of the summary workbook, by sheet name (Chinese headers, 合计 rows).

    Parameters
    ----------
    grids
        The grid layer (``grids.geojson`` of a ``partition``, ``regenerate`` or
        ``assign`` folder): ``grid_code``, ``community_id``, ``households`` and
        ``status`` at least; staffing columns (``grid_worker``, ``police``, …) when
        staffed.
    report
        The folder's ``report.json``, for the 需要处理 sheet and community notes.
    roster
        The folder's ``roster.csv`` (``gridkit assign``): people are counted by
        ``worker_id`` (assigned and pinned rows); without it, by name.

    Returns
    -------
    dict
        ``{"街道": ..., "社区": ..., "网格": ..., "需要处理": ...}`` (the last only
        with a report).

    Raises
    ------
    InputError
        If a required column is missing.
    """
    missing = [c for c in ("grid_code", "community_id", "households", "status") if c not in grids]
    if missing:
        raise InputError(
            f"the grid layer lacks {', '.join(missing)}: it does not look like a gridkit grid "
            "layer (make one with `gridkit partition`)."
        )
    g = pd.DataFrame(grids.drop(columns=grids.geometry.name, errors="ignore")).copy()
    for col, default in (("street", ""), ("community_name", ""), ("grid_name", ""),
                         ("buildings", 0)):  # fmt: skip
        if col not in g:
            g[col] = default
    for col in ("grid_code", "community_id", "street_code", "district_code"):
        if col in g:  # codes are text (no 4.2e+11 in Excel)
            g[col] = g[col].map(lambda v: "" if v is None or v != v else str(v))
    g["street"] = g["street"].fillna("").astype(str)
    g["community_name"] = g["community_name"].fillna("").astype(str)
    g["households"] = pd.to_numeric(g["households"], errors="coerce").fillna(0).astype(int)
    g["buildings"] = pd.to_numeric(g["buildings"], errors="coerce").fillna(0).astype(int)
    g["in_bounds"] = g["status"].astype(str).isin(IN_BOUNDS_STATUSES)
    g["dedicated"] = g["status"].astype(str).isin(UNBOUNDED_STATUSES)
    if "grid_type" in g:
        g["grid_type"] = g["grid_type"].map(
            lambda v: "" if v is None or v != v else GRID_TYPE_WORDS["zh"].get(str(v), str(v))
        )
    roles = [r for r in ROLE_HEADERS if r in g.columns]
    if roles:
        short = g[_MISSING].fillna("").astype(str) != "" if _MISSING in g else False
        g["short"] = short
    words = STATUS_WORDS["zh"]
    g["status_words"] = g["status"].map(lambda s: words.get(str(s), str(s)))
    g = g.sort_values(["street", "community_id", "grid_code"], kind="stable")

    if roster is not None and roles:
        where = g.drop_duplicates("community_id").set_index("community_id")
        roster = roster[roster["status"].astype(str).isin(["assigned", "pinned"])].copy()
        roster["community_id"] = roster["community_id"].astype(str)
        roster["street"] = roster["community_id"].map(where["street"]).fillna("")
        roster["community_name"] = roster["community_id"].map(where["community_name"]).fillna("")
    else:
        roster = None
    streets = _level(g, ["street"], roles, roster).rename(columns={"street": "街道"})
    streets = _total_row(streets, "街道", g, roles, roster)
    communities = _level(g, ["street", "community_id", "community_name"], roles, roster)
    communities = communities.drop(columns="社区数").rename(
        columns={"street": "街道", "community_id": "社区代码", "community_name": "社区名称"}
    )
    needs: dict[str, list[str]] = {}
    if report is not None:
        for items in attention(report).values():
            for f in items:
                needs.setdefault(f.community_id, []).append(f.subject or f.note)
    communities["需要处理"] = [
        "；".join(dict.fromkeys(needs.get(str(cid), []))) for cid in communities["社区代码"]
    ]
    communities = _total_row(communities, "街道", g, roles, roster)

    grid_cols = [c for c in GRID_HEADERS if c in g.columns]
    sheet = g[grid_cols].rename(columns=GRID_HEADERS)
    if "area_m2" in g:
        sheet["面积（平方米）"] = pd.to_numeric(g["area_m2"], errors="coerce").round(0)
    if "compactness" in g:
        sheet["紧凑度"] = pd.to_numeric(g["compactness"], errors="coerce").round(3)
    for role in roles:
        sheet[ROLE_HEADERS[role]] = g[role].fillna("")
    if roles and _MISSING in g:
        sheet["缺员岗位"] = g[_MISSING].fillna("")
    total = dict.fromkeys(sheet.columns)
    total["网格编码"] = _TOTAL
    total["户数"] = int(g["households"].sum())
    total["楼栋数"] = int(g["buildings"].sum())
    if "面积（平方米）" in sheet:
        total["面积（平方米）"] = float(sheet["面积（平方米）"].sum())
    n_dedicated = int(g["dedicated"].sum())
    total["状态"] = f"达标 {int(g['in_bounds'].sum())} / {len(g) - n_dedicated}" + (
        f"（另有专属网格 {n_dedicated} 个）" if n_dedicated else ""
    )
    sheet = pd.concat([sheet, pd.DataFrame([total])], ignore_index=True)

    tables = {"街道": streets, "社区": communities, "网格": sheet}
    if report is not None:
        params = report.get("parameters", {})
        fmt = {"min": params.get("min_households", "?"), "max": params.get("max_households", "?")}
        rows = [
            {
                "原因": CAUSES[key].title["zh"].format(**fmt),
                "处理办法": CAUSES[key].todo.get("zh", "").format(**fmt),
                "社区代码": f.community_id,
                "社区名称": f.community_name,
                "对象": f.subject or "",
                "户数": f.households,
                "说明": f.note,
            }
            for key, items in attention(report).items()
            for f in items
        ]
        tables["需要处理"] = pd.DataFrame(
            rows, columns=["原因", "处理办法", "社区代码", "社区名称", "对象", "户数", "说明"]
        )
    return tables


def write_summary_xlsx(src: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the summary workbook of an output folder (``gridkit export DIR --to x.xlsx``).

    Parameters
    ----------
    src
        A folder written by ``gridkit partition``, ``regenerate`` or ``assign``.
    path
        The ``.xlsx`` file; its folder is created.  Written whole or not at all.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        If ``src`` holds no grid layer, or a file of its set was changed.
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    folder = Path(src)
    grids, report, roster = _read_folder(folder)
    tables = summary_tables(grids, report, roster)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, table in tables.items():
            spreadsheet_safe(table).to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            sheet.freeze_panes = "A2"
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            if len(table) and name != "需要处理":
                for cell in sheet[len(table) + 1]:
                    cell.font = Font(bold=True)
            for k, col in enumerate(table.columns, start=1):
                values = [str(col), *map(str, table[col].head(200).tolist())]
                width = max(sum(2 if ord(ch) > 0x2E80 else 1 for ch in v) for v in values)
                sheet.column_dimensions[get_column_letter(k)].width = min(max(width + 2, 8), 60)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(out, buffer.getvalue())
