"""The output vocabulary other systems read: column names, statuses, roles and file names.

One place for the names written into ``grids.geojson``, ``roster.csv`` and the other files
of an output set (the contract in ``gridkit/schemas`` and the README's "Outputs" tables).
Modules that write or read those files import the names from here.
"""

from __future__ import annotations

__all__ = [
    "COMPREHENSIVE",
    "DEDICATED",
    "DEDICATED_TYPES",
    "GRID_COLUMNS",
    "GRID_TYPE_WORDS",
    "IN_BOUNDS_STATUSES",
    "OWN_GRID_STATUSES",
    "PLAN_FILES",
    "ROLES",
    "ROLE_LABELS",
    "ROSTER_COLUMNS",
    "SHORTAGE_COLUMNS",
    "STAFFING_COLUMNS",
    "STATUSES",
    "STATUS_WORDS",
    "UNBOUNDED_STATUSES",
    "WORKER_COLUMNS",
]

# -- the grid layer (grids.geojson) ---------------------------------------------------

#: Columns of the grid layer, in order (the contract of ``grids.geojson``).
GRID_COLUMNS = [
    "grid_code",
    "grid_name",
    "community_id",
    "community_name",
    "street",
    "households",
    "buildings",
    "area_m2",
    "compactness",
    "status",
    "compound",
    # added with dedicated grids and the hierarchy (after the older columns, so that
    # readers by position keep working)
    "grid_type",
    "street_code",
    "district_code",
    "district_name",
    "compounds",
]

#: ``grid_type`` of a residential grid (综合网格: the grids drawn by households).
COMPREHENSIVE = "comprehensive"

#: ``status`` of a dedicated grid (专属网格): one non-residential parcel (a school, a
#: hospital, a park, ...) carved out of its community; no household bounds apply.
DEDICATED = "dedicated"

#: Dedicated grid types gridkit knows, with the words read for them in an input's
#: ``type`` column (compared case-insensitively).  Any other type is kept as given.
DEDICATED_TYPES: dict[str, tuple[str, ...]] = {
    "school": ("school", "学校"),
    "hospital": ("hospital", "医院"),
    "park": ("park", "公园"),
    "enterprise": ("enterprise", "企业"),
    "market": ("market", "市场"),
    "industrial_park": ("industrial_park", "industrial park", "产业园区", "工业园区"),
}

#: Grid types in words, for grid names, maps and spreadsheets.
GRID_TYPE_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        COMPREHENSIVE: "综合网格",
        "school": "学校",
        "hospital": "医院",
        "park": "公园",
        "enterprise": "企业",
        "market": "市场",
        "industrial_park": "产业园区",
    },
    "en": {
        COMPREHENSIVE: "comprehensive",
        "school": "school",
        "hospital": "hospital",
        "park": "park",
        "enterprise": "enterprise",
        "market": "market",
        "industrial_park": "industrial park",
    },
}

#: Every status a grid of a plan can have (``status`` column).
STATUSES = (
    "ok",
    "below_min",
    "above_max",
    "oversize_building",
    "oversize_compound",
    "split_compound",
    "multi_part",
    DEDICATED,
)

#: Statuses of a grid made of one unit that stands alone (see :func:`own_grid_kinds`).
OWN_GRID_STATUSES = ("oversize_building", "oversize_compound", "split_compound")

#: Grid statuses that are within the household bounds (``split_compound``: one of the
#: fewest grids a big compound is split into; ``multi_part``: in bounds, with an island).
IN_BOUNDS_STATUSES = ("ok", "split_compound", "multi_part")

#: Grid statuses outside the count of the household bounds: a dedicated grid has no
#: bounds, so headlines and reports count it apart (neither in bounds nor out of them).
UNBOUNDED_STATUSES = (DEDICATED,)

#: Statuses in words, for headlines and spreadsheets.
STATUS_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "ok": "达标",
        "split_compound": "达标（拆分小区）",
        "multi_part": "达标（含飞地）",
        "dedicated": "专属网格",
        "below_min": "户数不足",
        "above_max": "户数超标",
        "oversize_building": "超大楼栋",
        "oversize_compound": "超大小区（楼栋不详）",
        "not_contiguous": "不连续",
        "overlap": "重叠",
        "outside_community": "超出社区",
        "crosses_community": "跨社区",
    },
    "en": {
        "ok": "in bounds",
        "split_compound": "in bounds (part of a split compound)",
        "multi_part": "in bounds (with an island)",
        "dedicated": "dedicated",
        "below_min": "below the minimum",
        "above_max": "above the maximum",
        "oversize_building": "oversize building",
        "oversize_compound": "oversize compound (buildings unknown)",
        "not_contiguous": "not contiguous",
        "overlap": "overlapping",
        "outside_community": "outside its community",
        "crosses_community": "crossing a community line",
    },
}

# -- staffing (roster.csv, shortages.csv, the enriched grid layer) -----------------

#: The roles, in the order of the enriched grid layer's columns.
ROLES: tuple[str, ...] = (
    "grid_worker",
    "grid_leader",
    "police",
    "part_time",
    "volunteer",
    "mediator",
    "legal_adviser",
)

#: Chinese name of each role (accepted in rosters, used in messages and generated rosters).
ROLE_LABELS: dict[str, str] = {
    "grid_worker": "专职网格员",
    "grid_leader": "网格长",
    "police": "民警",
    "part_time": "兼职网格员",
    "volunteer": "志愿者",
    "mediator": "民调员",
    "legal_adviser": "法律顾问",
}

#: Columns of :func:`read_workers`' result, in order (other source columns follow).
WORKER_COLUMNS: tuple[str, ...] = (
    "worker_id",
    "name",
    "role",
    "home_community",
    "phone",
    "max_grids",
    "max_communities",
    "max_households",
    "pinned_grid",
    "unavailable",
    "row",
    "geometry",
)

#: Staffing columns of the enriched grid layer (one per role, names joined by "、", plus
#: ``missing_roles``), in the order map popups list them after the grid columns.  Not
#: :data:`WORKER_COLUMNS`, the columns of a roster of workers.
STAFFING_COLUMNS: tuple[str, ...] = (
    "grid_leader",
    "grid_worker",
    "police",
    "part_time",
    "volunteer",
    "mediator",
    "legal_adviser",
    "missing_roles",
)

#: Columns of ``roster.csv`` (``phone`` follows when the roster has phone numbers).
ROSTER_COLUMNS = (
    "grid_code",
    "role",
    "worker_id",
    "name",
    "distance_m",
    "community_id",
    "scope",
    "status",
)

#: Columns of ``shortages.csv``.
SHORTAGE_COLUMNS = (
    "scope",
    "grid_code",
    "community_id",
    "community_name",
    "role",
    "role_zh",
    "required",
    "assigned",
    "missing",
)

# -- files --------------------------------------------------------------------------

#: Files of a grid plan (``partition``; ``regenerate`` adds its own), by kind.
PLAN_FILES = {
    "grids": "grids.geojson",
    "assignments": "assignments.csv",
    "report": "report.json",
    "buildings": "buildings.geojson",
    "map": "map.html",
}

# -- staffing: the roles a policy defines (issue 21) --------------------------------

#: What a role serves: the ``scope`` column of ``roster.csv`` and ``shortages.csv``
#: (``unit``: communities served by units such as companies or bureaus, 包联).
ROLE_SCOPES: tuple[str, ...] = ("grid", "community", "building", "unit")

#: Column of ``roster.csv`` and ``shortages.csv`` naming the building a building role
#: serves (楼栋长); written, last before ``phone``, only when the policy has such a role.
BUILDING_ID_COLUMN = "building_id"

__all__ += ["BUILDING_ID_COLUMN", "ROLE_SCOPES"]
