"""What the folium maps and the PNG pictures share: colours, words and display text.

The colours of grid statuses, the words of layers, legends, statuses and columns in
Chinese and English, :func:`html_text` (the one escape every text of a map passes),
:func:`robust_range` (the ends of the household colour scale), the drawing limits and
the checks on the arguments of :func:`gridkit.maps.explore` and
:func:`gridkit.maps.overview_png`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import COMPREHENSIVE, DEDICATED, GRID_TYPE_WORDS, ROLE_LABELS
from gridkit.errors import InputError, format_ids

__all__ = [
    "CLUSTER_THRESHOLD",
    "COLUMN_TEXT",
    "DEDICATED_COLOR",
    "MAX_ZOOM",
    "STATUS_COLORS",
    "STATUS_TEXT",
    "TEXT",
    "UNKNOWN_COLOR",
    "Basemap",
    "ColorBy",
    "Lang",
    "aliases",
    "check_color_range",
    "check_grids",
    "check_option",
    "dedicated_mask",
    "grid_type_label",
    "html_text",
    "is_missing",
    "robust_range",
    "status_label",
]


Basemap = Literal["osm", "amap", "tianditu", "none"]
ColorBy = Literal["households", "status"]
Lang = Literal["zh", "en"]

#: Point layers with more points than this are drawn as a marker cluster.
CLUSTER_THRESHOLD = 2000

#: Highest zoom level of the maps and their tiles.
MAX_ZOOM = 19
_REQUIRED = ("grid_code", "households")

STATUS_COLORS: dict[str, str] = {
    "ok": "#2ca25f",
    "below_min": "#fd8d3c",
    "above_max": "#de2d26",
    "oversize_building": "#7b3294",
    "oversize_compound": "#c51b7d",
    "split_compound": "#66bd63",
    DEDICATED: "#6a51a3",
}

#: Fill of a dedicated grid (专属网格) on a map coloured by households: it has no
#: household bounds, so it is drawn in its own colour, with a dashed outline.
DEDICATED_COLOR = STATUS_COLORS[DEDICATED]

#: Colour of a grid or point whose value or grid is unknown.
UNKNOWN_COLOR = "#9e9e9e"

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "grids_households": "网格（按户数着色）",
        "grids_status": "网格（按状态着色）",
        "labels": "网格名称",
        "communities": "社区边界",
        "streets": "街道边界",
        "points": "楼栋 / 住户",
        "workers": "网格员住址",
        "legend_households": "网格户数（户）",
        "legend_status": "网格状态",
        "osm": "OpenStreetMap",
        "amap": "高德地图",
        "tianditu": "天地图",
        "tianditu_labels": "天地图注记",
        "custom": "本地瓦片",
        "custom_attr": "本地瓦片服务",
        "unassigned": "未分配",
        "dedicated": "专属网格",
        "name": "姓名",
        "role": "岗位",
        "title": "网格划分总览（{n} 个网格）",
    },
    "en": {
        "grids_households": "Grids by households",
        "grids_status": "Grids by status",
        "labels": "Grid names",
        "communities": "Community boundaries",
        "streets": "Street boundaries",
        "points": "Buildings / households",
        "workers": "Workers' homes",
        "legend_households": "Households per grid",
        "legend_status": "Grid status",
        "osm": "OpenStreetMap",
        "amap": "Amap (Gaode)",
        "tianditu": "Tianditu",
        "tianditu_labels": "Tianditu labels",
        "custom": "Local tiles",
        "custom_attr": "local tile server",
        "unassigned": "unassigned",
        "dedicated": "Dedicated grids",
        "name": "Name",
        "role": "Role",
        "title": "Grid overview ({n} grids)",
    },
}

STATUS_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "ok": "正常",
        "below_min": "户数不足",
        "above_max": "户数超标",
        "oversize_building": "超大楼栋",
        "oversize_compound": "超大小区",
        "split_compound": "拆分小区",
        "dedicated": "专属网格",
    },
    "en": {
        "ok": "OK",
        "below_min": "below minimum",
        "above_max": "above maximum",
        "oversize_building": "oversize building",
        "oversize_compound": "oversize compound",
        "split_compound": "split compound",
        "dedicated": "dedicated grid",
    },
}

# Column labels of tooltips and popups; other columns are shown under their own name.
COLUMN_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "grid_code": "网格编码",
        "grid_name": "网格名称",
        "community_id": "社区代码",
        "community_name": "社区",
        "street": "街道",
        "street_code": "街道代码",
        "district_code": "区县代码",
        "district_name": "区县",
        "grid_type": "网格类型",
        "compounds": "所含小区",
        "households": "户数",
        "buildings": "楼栋数",
        "area_m2": "面积（平方米）",
        "compactness": "紧凑度",
        "status": "状态",
        **ROLE_LABELS,  # the roles' Chinese names, from the output vocabulary
        "missing_roles": "缺员岗位",
        "building_id": "楼栋编号",
        "household_id": "住户编号",
        "compound": "小区",
        "floors": "层数",
    },
    "en": {
        "grid_code": "Grid code",
        "grid_name": "Grid name",
        "community_id": "Community id",
        "community_name": "Community",
        "street": "Street",
        "street_code": "Street code",
        "district_code": "District code",
        "district_name": "District",
        "grid_type": "Grid type",
        "compounds": "Compounds",
        "households": "Households",
        "buildings": "Buildings",
        "area_m2": "Area (m²)",
        "compactness": "Compactness",
        "status": "Status",
        "grid_worker": "Grid worker",
        "grid_leader": "Grid leader",
        "police": "Police officer",
        "part_time": "Part-time grid worker",
        "volunteer": "Volunteer",
        "mediator": "Mediator",
        "legal_adviser": "Legal adviser",
        "missing_roles": "Missing roles",
        "building_id": "Building",
        "household_id": "Household",
        "compound": "Compound",
        "floors": "Floors",
    },
}


# --------------------------------------------------------------------------- display text


def html_text(value: Any) -> str:
    """HTML-escaped display text of a value ("" for missing values).

    The one door to the page: every text gridkit puts into a map (names, ids, codes,
    values, column names, labels, legends) passes here, because tooltips, popups,
    labels and the layer control insert their text as HTML.  ``<``, ``>``, ``&``,
    ``"`` and ``'`` become entities, so a value such as ``<img src=x onerror=...>``
    is shown as text and never runs.

    Parameters
    ----------
    value
        Any value; missing values (None, NaN, NA) give "".

    Returns
    -------
    str
        Text safe to insert into HTML (element content or a quoted attribute).

    Examples
    --------
    >>> html_text('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    >>> html_text(None)
    ''
    """
    return "" if is_missing(value) else html.escape(str(value), quote=True)


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def status_label(value: Any, lang: str) -> str:
    """Status in words; the Chinese label keeps the code: "户数不足（below_min）"."""
    if is_missing(value):
        return ""
    value = str(value)
    label = STATUS_TEXT[lang].get(value)
    if label is None:
        return value
    return f"{label}（{value}）" if lang == "zh" else label


def grid_type_label(value: Any, lang: str) -> str:
    """Grid type in words: "学校（school）", "综合网格（comprehensive）"; others as given."""
    if is_missing(value):
        return ""
    value = str(value)
    label = GRID_TYPE_WORDS[lang].get(value)
    if label is None or label == value:
        return value
    return f"{label}（{value}）" if lang == "zh" else label


def dedicated_mask(grids: pd.DataFrame) -> np.ndarray:
    """Which grids are dedicated grids (专属网格): by ``status``, else by ``grid_type``."""
    mask = np.zeros(len(grids), dtype=bool)
    if "status" in grids.columns:
        mask |= (grids["status"].astype(str) == DEDICATED).to_numpy()
    if "grid_type" in grids.columns:
        types = grids["grid_type"]
        mask |= (types.notna() & (types.astype(str) != COMPREHENSIVE)).to_numpy()
    return mask


def aliases(columns: Sequence[str], lang: str) -> list[str]:
    """Column labels of tooltips and popups (inserted as HTML: escaped like any value)."""
    names = COLUMN_TEXT[lang]
    return [html_text(names.get(c, c)) for c in columns]


# --------------------------------------------------------------------------- colour scale


def robust_range(values: Sequence[float] | np.ndarray, *, low: float = 2.0, high: float = 98.0):
    """``(vmin, vmax)`` of a colour scale that outliers do not stretch.

    The ``low`` and ``high`` percentiles of the finite values (nearest value), kept
    within Tukey's fences (1.5 interquartile ranges beyond the quartiles, so a single
    outlier among few grids is left out too), rounded to whole households and
    widened to at least 1 so the scale has a length.

    Parameters
    ----------
    values
        Households per grid (NaN and infinities are ignored).
    low, high
        Percentiles of the ends of the scale.

    Returns
    -------
    tuple of float
        ``(vmin, vmax)``; ``(0, 1)`` when there is no finite value.

    Examples
    --------
    >>> robust_range([500, 520, 610, 640, 700, 720, 9000])
    (500.0, 928.0)
    >>> robust_range(list(range(400, 800)) + [12000])
    (408.0, 792.0)
    """
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if not len(finite):
        return 0.0, 1.0
    q1, q3 = np.percentile(finite, [25, 75])
    fence = 1.5 * (q3 - q1)
    vmin = float(np.round(max(np.percentile(finite, low, method="nearest"), q1 - fence)))
    vmax = float(np.round(min(np.percentile(finite, high, method="nearest"), q3 + fence)))
    if vmax <= vmin:
        vmax = vmin + 1.0
    return vmin, vmax


def check_color_range(color_range: Any) -> tuple[float, float]:
    try:
        vmin, vmax = (float(v) for v in color_range)
    except (TypeError, ValueError):
        msg = f"`color_range` must be two numbers (low, high), got {color_range!r}."
        raise InputError(msg) from None
    if not (np.isfinite(vmin) and np.isfinite(vmax) and vmax > vmin):
        msg = f"`color_range` must be finite with high > low, got {color_range!r}."
        raise InputError(msg)
    return vmin, vmax


# --------------------------------------------------------------------------- checks


def check_option(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        msg = f"unknown `{name}` {value!r}: expected one of {choices}."
        raise InputError(msg)
    return value


def check_grids(grids: gpd.GeoDataFrame, color_by: str) -> None:
    if not isinstance(grids, gpd.GeoDataFrame):
        msg = f"`grids` must be a GeoDataFrame, got {type(grids).__name__}."
        raise InputError(msg)
    missing = [c for c in _REQUIRED if c not in grids.columns]
    if missing:
        msg = (
            f"`grids` lacks the column(s) {', '.join(missing)} "
            f"(it has {format_ids(grids.columns)}): pass the grids produced by "
            "`gridkit partition` / grids.geojson, or rename your columns."
        )
        raise InputError(msg)
    if color_by == "status" and "status" not in grids.columns:
        msg = "`color_by='status'` needs a `status` column in `grids`; use color_by='households'."
        raise InputError(msg)
    if len(grids) == 0 or grids.geometry.is_empty.all():
        msg = "`grids` has no geometry to draw: it is empty."
        raise InputError(msg)
