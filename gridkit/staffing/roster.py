"""Read and check worker rosters and staffing policies; generate a synthetic roster.

A roster lists the people who staff grids (网格): full-time grid workers (专职网格员),
part-time workers (兼职网格员), grid leaders (网格长), police officers (民警), volunteers
(志愿者), and per community a mediator (民调员) and a legal adviser (法律顾问).
:func:`read_workers` reads it from CSV/TSV, XLSX or a point layer into a normalised
GeoDataFrame; :func:`load_policy` reads the staffing rules (TOML) that say which roles
each grid or community needs; :func:`make_roster` invents a roster for a grid layer
(the sample district's demo).  :mod:`gridkit.assign` puts the people in their grids.

Roster columns (matched case-insensitively; the first name listed is the canonical one)
    ``worker_id`` (also ``id``, ``工号``, ``编号``) — unique; ``name`` (``姓名``);
    ``role`` (``岗位``, ``角色``) in English or Chinese, see :data:`ROLE_LABELS`;
    the home: ``lon``/``lat`` columns (or a point geometry) and/or ``home_community``
    (``community_id``, ``community``, ``社区``: a community id or name);
    optional ``phone`` (``电话``, ``手机``), ``max_grids``, ``max_communities``,
    ``max_households`` (capacities overriding the policy), ``pinned_grid`` (``固定网格``:
    keep this person in this grid; several codes separated by ``;``) and ``unavailable``
    (``不可用``: 1/0, true/false, yes/no, 是/否; the person is listed but not assigned).

Every problem of a roster is collected and raised once as an
:class:`~gridkit.errors.InputError` naming the file, the 1-based rows and the fix;
nobody is dropped silently.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj.exceptions import CRSError, ProjError

from gridkit.contracts import ROLE_LABELS, ROLES, WORKER_COLUMNS
from gridkit.crs import local_metric_crs, to_wgs84
from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import readers as io
from gridkit.io import validate as _validate

if TYPE_CHECKING:
    from gridkit.staffing.assign import GridsLike

__all__ = [
    "ROLES",
    "ROLE_LABELS",
    "WORKER_COLUMNS",
    "RolePolicy",
    "StaffingPolicy",
    "load_policy",
    "make_roster",
    "mask_phone",
    "normalise_role",
    "read_workers",
    "write_workers",
]

logger = logging.getLogger(__name__)

_ROLE_ALIASES: dict[str, str] = {
    **{role: role for role in ROLES},
    **{label: role for role, label in ROLE_LABELS.items()},
    "full_time": "grid_worker",
    "网格员": "grid_worker",
    "专职": "grid_worker",
    "parttime": "part_time",
    "兼职": "part_time",
    "leader": "grid_leader",
    "officer": "police",
    "police_officer": "police",
    "社区民警": "police",
    "警察": "police",
    "调解员": "mediator",
    "人民调解员": "mediator",
    "legal_advisor": "legal_adviser",
    "lawyer": "legal_adviser",
    "律师": "legal_adviser",
    "志愿": "volunteer",
}

_WHAT = "workers"
_ID_NAMES = ("worker_id", "id", "工号", "编号", "人员编号")
_NAME_NAMES = ("name", "姓名")
_ROLE_NAMES = ("role", "岗位", "角色", "职务")
_COMMUNITY_NAMES = ("home_community", "community_id", "community", "所在社区", "社区")
_PHONE_NAMES = ("phone", "mobile", "tel", "电话", "手机", "手机号", "联系电话")
_MAX_GRIDS_NAMES = ("max_grids", "最多网格数")
_MAX_COMMUNITIES_NAMES = ("max_communities", "最多社区数")
_MAX_HOUSEHOLDS_NAMES = ("max_households", "最多户数")
_PINNED_NAMES = ("pinned_grid", "pinned", "固定网格")
_UNAVAILABLE_NAMES = ("unavailable", "不可用")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_TRUE = frozenset({"1", "true", "yes", "y", "t", "是", "x", "unavailable", "不可用"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "否", "available", "可用"})
_SPLIT_CODES = re.compile(r"[;,；，、\s]+")

# --------------------------------------------------------------------------- roles


def normalise_role(value: Any) -> str | None:
    """The canonical role key of a roster cell, or ``None`` if it is not a known role.

    Case, blanks, hyphens and spaces are ignored.

    Examples
    --------
    >>> normalise_role("专职网格员"), normalise_role("Part-time"), normalise_role("民警")
    ('grid_worker', 'part_time', 'police')
    >>> normalise_role("caretaker") is None
    True
    """
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    key = re.sub(r"[\s\-]+", "_", str(value).strip().lower()).strip("_")
    return _ROLE_ALIASES.get(key) or _ROLE_ALIASES.get(key.replace("_", ""))


def _roles_text() -> str:
    return ", ".join(f"{role}/{ROLE_LABELS[role]}" for role in ROLES)


# --------------------------------------------------------------------------- policy

_SCOPE_KEYS: dict[str, dict[str, str]] = {
    "grid": {"per_grid": "per_unit", "max_per_grid": "max_per_unit", "max_grids": "max_units"},
    "community": {
        "per_community": "per_unit",
        "max_per_community": "max_per_unit",
        "max_communities": "max_units",
    },
}
_COMMON_KEYS = ("scope", "per_households", "max_households", "same_community", "assign_all")
_WEIGHT_KEYS = ("cross_community_m", "balance_m_per_household", "idle_m")
_MODEL_KEYS = ("max_pairs", "candidates")


@dataclass(frozen=True)
class RolePolicy:
    """The staffing rules of one role (see ``gridkit/policies/default.toml``).

    Attributes
    ----------
    role
        Role key, one of :data:`ROLES`.
    scope
        {"grid", "community"}
        What one person of the role serves: grids, or whole communities.
    per_unit
        People of the role every grid (community) needs: ``per_grid`` / ``per_community``.
    per_households
        If set, also at least one person per this many households of the grid (community).
    max_per_unit
        Most people of the role in one grid (community); ``None``: no limit.
    max_units
        Grids (communities) one person serves at most: ``max_grids`` / ``max_communities``.
    max_households
        Households one person serves at most; ``None``: no limit.
    same_community
        All grids served by one person lie in one community.
    assign_all
        Every available person gets a place (up to ``max_per_unit``), spread by households.
    """

    role: str
    scope: Literal["grid", "community"] = "grid"
    per_unit: int = 1
    per_households: int | None = None
    max_per_unit: int | None = None
    max_units: int = 1
    max_households: int | None = None
    same_community: bool = False
    assign_all: bool = False

    @property
    def unit(self) -> str:
        """``"grid"`` or ``"community"``: what the role's capacity counts."""
        return self.scope

    def required(self, households: np.ndarray) -> np.ndarray:
        """People of the role needed by units holding ``households`` households."""
        households = np.asarray(households, dtype=np.int64)
        need = np.full(households.shape, self.per_unit, dtype=np.int64)
        if self.per_households:
            need = np.maximum(need, -(-households // self.per_households))
        return need

    def max_people(self, required: np.ndarray) -> np.ndarray:
        """Most people of the role per unit (``required`` where no larger limit applies)."""
        required = np.asarray(required, dtype=np.int64)
        if self.max_per_unit is not None:
            return np.maximum(required, self.max_per_unit)
        if self.assign_all:
            return np.full(required.shape, np.iinfo(np.int32).max, dtype=np.int64)
        return required

    def to_dict(self) -> dict[str, Any]:
        """The role's table as written in a policy file (scope-specific key names)."""
        names = {v: k for k, v in _SCOPE_KEYS[self.scope].items()}
        out: dict[str, Any] = {"scope": self.scope}
        for key in ("per_unit", "per_households", "max_per_unit", "max_units", "max_households"):
            value = getattr(self, key)
            if value is not None:
                out[names.get(key, key)] = value
        out["same_community"] = self.same_community
        out["assign_all"] = self.assign_all
        return out


@dataclass(frozen=True)
class StaffingPolicy:
    """Which roles each grid and community needs, capacities, and the objective's weights.

    Load one with :func:`load_policy`; the defaults are ``gridkit/policies/default.toml``.

    Attributes
    ----------
    roles
        :class:`RolePolicy` by role key, in :data:`ROLES` order.
    cross_community_m
        Cost (metres) of each grid or community a person serves outside their home community.
    balance_m_per_household
        Cost (metres) per household of workload imbalance (see ``docs/staffing.md``).
    idle_m
        Cost (metres) of leaving an available person of an ``assign_all`` role idle.
    max_pairs, candidates
        Above ``max_pairs`` (person, unit) pairs in a role, keep the ``candidates``
        nearest units of each person and nearest people of each unit.
    source
        Where the policy came from (for messages and the report).
    """

    roles: dict[str, RolePolicy] = field(default_factory=dict)
    cross_community_m: float = 1000.0
    balance_m_per_household: float = 0.5
    idle_m: float = 20000.0
    max_pairs: int = 60000
    candidates: int = 30
    source: str = "default"

    def to_dict(self) -> dict[str, Any]:
        """The policy as a TOML-shaped dict (what ``staffing_report.json`` records)."""
        return {
            "source": self.source,
            "weights": {k: getattr(self, k) for k in _WEIGHT_KEYS},
            "model": {k: getattr(self, k) for k in _MODEL_KEYS},
            "roles": {role: p.to_dict() for role, p in self.roles.items()},
        }


def _default_tables() -> dict[str, Any]:
    text = resources.files("gridkit").joinpath("policies/default.toml").read_text("utf-8")
    return tomllib.loads(text)


def load_policy(policy: str | os.PathLike[str] | Mapping[str, Any] | StaffingPolicy | None = None,
                ) -> StaffingPolicy:
    """Load a staffing policy: defaults overlaid with a TOML file or a dict of the same shape.

    Parameters
    ----------
    policy
        ``None`` (the defaults), the path of a TOML file, a dict shaped like the
        file (``{"roles": {"police": {"max_grids": 2}}}``), or a ``StaffingPolicy``
        (returned as is).  Keys not given keep their default; a role table with a
        different ``scope`` than the default replaces that role's table.

    Returns
    -------
    StaffingPolicy

    Raises
    ------
    InputError
        If the file is missing or not valid TOML, or lists unknown sections, roles or
        keys, or values of the wrong type or range; every problem is listed.

    Examples
    --------
    >>> p = load_policy({"roles": {"police": {"max_grids": 2}}})
    >>> p.roles["police"].max_units, p.roles["grid_worker"].max_units
    (2, 1)
    >>> p.roles["mediator"].scope
    'community'
    """
    if isinstance(policy, StaffingPolicy):
        return policy
    if policy is None:
        user: Mapping[str, Any] = {}
        source = "default"
    elif isinstance(policy, Mapping):
        user, source = policy, "<dict>"
    elif isinstance(policy, str | os.PathLike):
        source = os.fspath(policy)
        p = Path(source)
        if not p.is_file():
            msg = (
                f"staffing policy file '{source}' not found (looked for {p.absolute()}): check "
                "the path, or leave out `policy` (CLI `--policy`) to use the defaults."
            )
            raise InputError(msg)
        try:
            user = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            msg = (
                f"staffing policy '{source}' is not valid TOML ({err}): fix the file; see "
                "gridkit/policies/default.toml for the format."
            )
            raise InputError(msg) from err
    else:
        msg = (
            f"`policy` must be a TOML file path, a dict or a StaffingPolicy, got "
            f"{type(policy).__name__}: pass e.g. `policy='policy.toml'`."
        )
        raise InputError(msg)
    return _build_policy(_default_tables(), user, source=source)


def _build_policy(defaults: Mapping[str, Any], user: Mapping[str, Any], *, source: str
                  ) -> StaffingPolicy:
    problems = _validate.Problems(source, "staffing policy")
    for section in user:
        if section not in ("weights", "model", "roles"):
            problems.add(
                f"unknown section [{section}]: use [weights], [model] and [roles.<role>]."
            )
    values: dict[str, Any] = {}
    for section, keys in (("weights", _WEIGHT_KEYS), ("model", _MODEL_KEYS)):
        table = _table(user.get(section, {}), f"[{section}]", problems)
        for key in table:
            if key not in keys:
                problems.add(f"unknown key `{key}` in [{section}]: use {', '.join(keys)}.")
        for key in keys:
            value = table.get(key, defaults[section][key])
            if section == "weights":
                values[key] = _number(value, f"[{section}] {key}", problems)
            else:
                values[key] = _integer(value, f"[{section}] {key}", problems, minimum=1)
    roles: dict[str, RolePolicy] = {}
    user_roles = _table(user.get("roles", {}), "[roles]", problems)
    for role in user_roles:
        if role not in ROLES:
            canonical = normalise_role(role)
            hint = f" (did you mean `{canonical}`?)" if canonical else ""
            problems.add(f"unknown role [roles.{role}]{hint}: roles are {', '.join(ROLES)}.")
    for role in ROLES:
        base = dict(defaults["roles"][role])
        mine = _table(user_roles.get(role, {}), f"[roles.{role}]", problems)
        if "scope" in mine and mine["scope"] != base.get("scope"):
            base = {}
        roles[role] = _role_policy(role, {**base, **mine}, problems)
    problems.raise_if_any()
    return StaffingPolicy(roles=roles, source=source, **values)


def _table(value: Any, where: str, problems: _validate.Problems) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    problems.add(f"{where} must be a table, got {value!r}: write it as a [section] of keys.")
    return {}


def _role_policy(role: str, table: Mapping[str, Any], problems: _validate.Problems) -> RolePolicy:
    where = f"[roles.{role}]"
    scope = table.get("scope", "grid")
    if scope not in _SCOPE_KEYS:
        problems.add(f"{where} scope = {scope!r}: use \"grid\" or \"community\".")
        return RolePolicy(role=role)
    names = _SCOPE_KEYS[scope]
    other = next(s for s in _SCOPE_KEYS if s != scope)
    kwargs: dict[str, Any] = {"role": role, "scope": scope}
    for key, value in table.items():
        if key in _COMMON_KEYS and key != "scope":
            if key in ("same_community", "assign_all"):
                if not isinstance(value, bool):
                    problems.add(f"{where} {key} = {value!r}: write true or false.")
                else:
                    kwargs[key] = value
            else:
                kwargs[key] = _integer(value, f"{where} {key}", problems, minimum=1)
        elif key in names:
            minimum = 0 if names[key] == "per_unit" else 1
            kwargs[names[key]] = _integer(value, f"{where} {key}", problems, minimum=minimum)
        elif key in _SCOPE_KEYS[other]:
            problems.add(
                f"{where} has `{key}` but scope = \"{scope}\": use "
                f"`{dict(zip(_SCOPE_KEYS[other], names, strict=True))[key]}` instead."
            )
        elif key != "scope":
            allowed = [*names, *(k for k in _COMMON_KEYS if k != "scope")]
            problems.add(f"unknown key `{key}` in {where}: use scope, {', '.join(allowed)}.")
    if scope == "community" and kwargs.get("same_community"):
        problems.add(f"{where} same_community applies to scope = \"grid\" only: remove it.")
    out = RolePolicy(**{k: v for k, v in kwargs.items() if v is not None})
    if out.max_per_unit is not None and out.max_per_unit < out.per_unit:
        problems.add(
            f"{where} allows at most {out.max_per_unit} per {scope} but requires {out.per_unit}: "
            f"raise `{'max_per_' + scope}` or lower `{'per_' + scope}`."
        )
    return out


def _integer(value: Any, where: str, problems: _validate.Problems, *, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.add(f"{where} = {value!r}: expected a whole number ≥ {minimum}.")
        return None
    return int(value)


def _number(value: Any, where: str, problems: _validate.Problems) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        problems.add(f"{where} = {value!r}: expected a number ≥ 0 (metres).")
        return 0.0
    return float(value)


# --------------------------------------------------------------------------- reading rosters


def _find(columns: list[Any], names: tuple[str, ...], problems: _validate.Problems) -> Any:
    """The first column matching one of ``names`` (case-insensitive), else ``None``."""
    for name in names:
        matches = [c for c in columns if str(c).strip().lower() == name]
        if len(matches) > 1:
            problems.add(
                f"several columns are named {name!r} ({', '.join(map(str, matches))}): rename "
                "all but one."
            )
            return None
        if matches:
            return matches[0]
    return None


def _load_roster(path: Any, *, layer: str | int | None) -> tuple[str, pd.DataFrame, bool]:
    """``(source, frame, is_table)`` of a roster path or frame."""
    if isinstance(path, str | os.PathLike) and not isinstance(path, pd.DataFrame):
        p = Path(path)
        if p.suffix.lower() in _EXCEL_SUFFIXES and p.exists():
            return os.fspath(path), _read_excel(p, layer=layer), True
        if p.exists() and p.suffix.lower() not in (".csv", ".tsv", ".txt"):
            try:
                names = [str(n) for n in pyogrio.list_layers(p)[:, 0]]
            except (RuntimeError, OSError, ValueError):
                names = []  # unreadable: io.load_file reports it
            if layer is None and len(names) > 1:
                msg = (
                    f"{_WHAT} file '{p}' has {len(names)} layers ({format_ids(names)}): pass "
                    f"`layer=...` (CLI `--workers-layer ...`) to choose one."
                )
                raise InputError(msg)
    return io.load_file(path, layer=layer, what=_WHAT, tables=True)


def _read_excel(p: Path, *, layer: str | int | None) -> pd.DataFrame:
    try:
        import openpyxl  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        msg = (
            f"reading the Excel roster '{p}' needs openpyxl: `pip install openpyxl`, or save "
            "the sheet as 'CSV UTF-8'."
        )
        raise InputError(msg) from err
    try:
        frame = pd.read_excel(p, sheet_name=0 if layer is None else layer, dtype=object)
    except (ValueError, KeyError, OSError) as err:
        msg = (
            f"cannot read {_WHAT} file '{p}' as an Excel workbook ({err}): check the file and "
            "the sheet (`layer=...`, CLI `--workers-layer`)."
        )
        raise InputError(msg) from err
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.dropna(how="all").reset_index(drop=True)


def _flags(values: pd.Series, rows: np.ndarray, *, column: str, problems: _validate.Problems
           ) -> np.ndarray:
    text = [io.cell_text(v) for v in values.to_numpy(dtype=object)]
    out = np.zeros(len(text), dtype=bool)
    bad = []
    for i, value in enumerate(text):
        key = (value or "").strip().lower()
        if key in _TRUE:
            out[i] = True
        elif key and key not in _FALSE:
            bad.append(i)
    if bad:
        problems.add(
            f"column `{column}` has values that are not yes/no at {_validate.rows_text(rows[bad])} "
            f"({format_ids(sorted({text[i] for i in bad}), limit=5)}): write 1 or 0 (also "
            "true/false, yes/no, 是/否), or leave the cell empty for available."
        )
    return out


def _capacities(values: pd.Series, rows: np.ndarray, *, column: str,
                problems: _validate.Problems) -> pd.Series:
    text = pd.Series([io.cell_text(v) for v in values.to_numpy(dtype=object)], dtype=object)
    present = text.notna().to_numpy()
    numbers = pd.to_numeric(text.where(present), errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.isfinite(numbers) & (numbers >= 1) & (numbers == np.floor(numbers)))
    if bad.any():
        problems.add(
            f"column `{column}` is not a whole number ≥ 1 at {_validate.rows_text(rows[bad])} "
            f"({format_ids(text[bad].tolist(), limit=5)}): write a capacity such as 2, or leave "
            "the cell empty to use the policy's."
        )
    good = present & ~bad
    caps = pd.array(np.where(good, numbers, 0).astype(np.int64), dtype="Int64")
    caps[~good] = pd.NA
    return pd.Series(caps)


def read_workers(
    path: str | os.PathLike[str] | pd.DataFrame,
    *,
    lon_col: str | None = None,
    lat_col: str | None = None,
    input_crs: Any = None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read a roster of grid staff into the normalised workers frame.

    Parameters
    ----------
    path
        A CSV/TSV/TXT table (UTF-8 or GB18030), an Excel workbook (``.xlsx``; needs
        openpyxl), a GeoJSON/GeoPackage/Shapefile of home points, or a DataFrame /
        GeoDataFrame (copied, never modified).  Columns: see the module docstring.
    lon_col, lat_col
        Home coordinate columns of a table (pass both or neither); auto-detected like
        :func:`gridkit.read_households` (``lon``/``lng``/``经度``, ``lat``/``纬度``, ...).
    input_crs
        CRS of the coordinates: ``"wgs84"``, ``"gcj02"`` (Amap/Gaode, Tencent), ``"bd09"``
        (Baidu) or anything pyproj accepts.  A table without it is assumed to be WGS84
        (with a warning).
    layer
        Layer of a multi-layer file, or sheet of a workbook (default: the first sheet).

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326 with a RangeIndex and ``attrs["source"]``; columns
        :data:`WORKER_COLUMNS`: ``worker_id`` (str), ``name`` (str), ``role`` (a key of
        :data:`ROLES`), ``home_community`` (str or None, as written), ``phone`` (str or
        None), ``max_grids``, ``max_communities``, ``max_households`` (Int64, NA = the
        policy's), ``pinned_grid`` (str of ``;``-separated codes, or None),
        ``unavailable`` (bool), ``row`` (1-based), ``geometry`` (home Point, or None when
        only the home community is known); then the other source columns.

    Raises
    ------
    InputError
        Listing every problem with its rows: missing columns, missing or duplicated ids,
        missing names, missing or unknown roles, rows without any home location,
        unparseable or out-of-range coordinates, bad capacities or flags, and people both
        pinned and unavailable.

    Warns
    -----
    GridkitWarning
        When a table's coordinates were assumed to be WGS84.

    Examples
    --------
    >>> import pandas as pd
    >>> roster = pd.DataFrame({"工号": ["A1", "A2"], "姓名": ["王芳", "李军"],
    ...                        "岗位": ["专职网格员", "民警"], "社区": ["420204001001"] * 2})
    >>> workers = read_workers(roster)
    >>> workers[["worker_id", "role", "home_community"]].values.tolist()
    [['A1', 'grid_worker', '420204001001'], ['A2', 'police', '420204001001']]
    """
    source, frame, is_table = _load_roster(path, layer=layer)
    if len(frame) == 0:
        msg = f"{_WHAT} file '{source}' contains no rows: check the file (and `layer`)."
        raise InputError(msg)
    problems = _validate.Problems(source, _WHAT)
    geometry_name = None if is_table else frame.geometry.name
    columns = [c for c in frame.columns if c != geometry_name]
    src = {
        "worker_id": _find(columns, _ID_NAMES, problems),
        "name": _find(columns, _NAME_NAMES, problems),
        "role": _find(columns, _ROLE_NAMES, problems),
        "home_community": _find(columns, _COMMUNITY_NAMES, problems),
        "phone": _find(columns, _PHONE_NAMES, problems),
        "max_grids": _find(columns, _MAX_GRIDS_NAMES, problems),
        "max_communities": _find(columns, _MAX_COMMUNITIES_NAMES, problems),
        "max_households": _find(columns, _MAX_HOUSEHOLDS_NAMES, problems),
        "pinned_grid": _find(columns, _PINNED_NAMES, problems),
        "unavailable": _find(columns, _UNAVAILABLE_NAMES, problems),
    }
    for key, names in (("worker_id", _ID_NAMES), ("name", _NAME_NAMES), ("role", _ROLE_NAMES)):
        if src[key] is None and not any(str(c).strip().lower() in names for c in columns):
            problems.add(
                f"no {key} column (looked for {', '.join(names)}, case-insensitive); available "
                f"columns: {io.columns_text(columns)}. Rename the column holding it."
            )
    lon_src = lat_src = None
    if is_table:
        scratch = _validate.Problems(source, _WHAT)
        lon_src, lat_src = io.pick_lonlat_columns(columns, lon_col, lat_col, problems=scratch)
        not_found = len(scratch) == 1 and scratch.messages[0].startswith("no longitude")
        if lon_col is not None or not not_found:
            for message in scratch.messages:
                problems.add(message)
        elif src["home_community"] is None:
            problems.add(
                f"no home location columns: give each person `lon`/`lat` columns (or a point "
                f"layer) and/or a `home_community` column (looked for "
                f"{', '.join(_COMMUNITY_NAMES)}); available columns: "
                f"{io.columns_text(columns)}."
            )
    elif lon_col is not None or lat_col is not None:
        problems.add(
            "`lon_col`/`lat_col` (CLI `--lon-col`/`--lat-col`) only apply to tables but this "
            "file has a geometry: drop these options."
        )
    problems.raise_if_any()
    has_coordinates = not is_table or lon_src is not None
    crs = (
        io.resolve_input_crs(
            None if is_table else frame.crs, input_crs, source=source, what=_WHAT,
            kind="households", is_table=is_table,
        )
        if has_coordinates
        else None
    )

    n = len(frame)
    rows = np.arange(1, n + 1, dtype=np.int64)
    ids = io.as_text(frame[src["worker_id"]])
    _validate.check_ids(
        ids, rows, column=str(src["worker_id"]),
        missing_fix="give every person an id (e.g. the staff number 工号).",
        duplicate_fix="give each person their own id; list a person once (one role each).",
        problems=problems,
    )
    names = io.as_text(frame[src["name"]])
    if names.isna().any():
        problems.add(
            f"column `{src['name']}` is empty at {_validate.rows_text(rows[names.isna()])}: "
            "fill in the person's name."
        )
    raw_roles = io.as_optional_text(frame[src["role"]])
    roles = raw_roles.map(normalise_role)
    missing_role = raw_roles.isna().to_numpy()
    if missing_role.any():
        problems.add(
            f"column `{src['role']}` is empty at {_validate.rows_text(rows[missing_role])}: "
            f"fill in one of {_roles_text()}."
        )
    unknown = roles.isna().to_numpy() & ~missing_role
    if unknown.any():
        values = sorted(set(raw_roles[unknown]))
        problems.add(
            f"unknown role at {_validate.rows_text(rows[unknown])} "
            f"({format_ids([repr(v) for v in values], limit=5)}): use one of {_roles_text()}."
        )
    home = (
        io.as_optional_text(frame[src["home_community"]])
        if src["home_community"] is not None
        else pd.Series([None] * n, dtype=object)
    )
    geoms, bounds = _home_points(frame, rows, is_table, lon_src, lat_src, problems)
    no_place = shapely.is_missing(geoms) & home.isna().to_numpy()
    if no_place.any():
        problems.add(
            f"no home location at {_validate.rows_text(rows[no_place])}: fill in lon/lat (or "
            "draw the home point) or the home community, so distances can be measured."
        )
    if crs is not None:
        io.check_coordinates(
            geoms, rows, crs, kind="households",
            swap_fix="exchange the lon and lat values (or pass `lon_col`/`lat_col` the other "
            "way round, CLI `--lon-col`/`--lat-col`).",
            problems=problems, bounds=bounds,
        )
    caps = {
        key: _capacities(frame[src[key]], rows, column=str(src[key]), problems=problems)
        if src[key] is not None
        else pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
        for key in ("max_grids", "max_communities", "max_households")
    }
    pinned = (
        io.as_optional_text(frame[src["pinned_grid"]]).map(
            lambda v: None if v is None else ";".join(c for c in _SPLIT_CODES.split(v) if c)
        )
        if src["pinned_grid"] is not None
        else pd.Series([None] * n, dtype=object)
    )
    unavailable = (
        _flags(frame[src["unavailable"]], rows, column=str(src["unavailable"]), problems=problems)
        if src["unavailable"] is not None
        else np.zeros(n, dtype=bool)
    )
    both = unavailable & pinned.notna().to_numpy()
    if both.any():
        problems.add(
            f"people both pinned to a grid and unavailable at {_validate.rows_text(rows[both])}: "
            f"clear `{src['pinned_grid']}` or `{src['unavailable']}` for them."
        )
    problems.raise_if_any()

    phone = (
        io.as_optional_text(frame[src["phone"]])
        if src["phone"] is not None
        else pd.Series([None] * n, dtype=object)
    )
    contract = {
        "worker_id": ids,
        "name": names,
        "role": roles.astype(object),
        "home_community": home,
        "phone": phone,
        **caps,
        "pinned_grid": pinned,
        "unavailable": unavailable,
        "row": rows,
    }
    used = {v for v in src.values() if v is not None} | {lon_src, lat_src} - {None}
    out = io.assemble_frame(contract, geoms, frame, used, source=source)
    if crs is None:
        out = out.set_crs(4326)
    else:
        try:
            out = to_wgs84(out, crs.spec)
        except (ProjError, CRSError) as err:
            msg = (
                f"{_WHAT} '{source}': cannot transform from {crs.label} to EPSG:4326 ({err}): "
                "pass the data's real CRS as `input_crs=...` (CLI `--input-crs ...`)."
            )
            raise InputError(msg) from err
        if crs.assumed:
            warnings.warn(
                f"{_WHAT} '{source}' declares no CRS (a table), so WGS84 lon/lat was assumed. If "
                "the coordinates come from Amap/Gaode or Tencent pass `input_crs='gcj02'` (CLI "
                "`--input-crs gcj02`), from Baidu `input_crs='bd09'`; pass `input_crs='wgs84'` "
                "(CLI `--input-crs wgs84`) to confirm WGS84 and silence this warning.",
                GridkitWarning,
                stacklevel=2,
            )
    logger.info(
        "read %d workers from %s (%s)", n, source,
        ", ".join(f"{r} {c}" for r, c in out["role"].value_counts().sort_index().items()),
    )
    return out


def _home_points(
    frame: pd.DataFrame,
    rows: np.ndarray,
    is_table: bool,
    lon_src: Any,
    lat_src: Any,
    problems: _validate.Problems,
) -> tuple[np.ndarray, np.ndarray]:
    """Home points (None where unknown) and their ``(n, 4)`` bounds (NaN where unknown)."""
    n = len(frame)
    geoms = np.full(n, None, dtype=object)
    if is_table and lon_src is None:
        return geoms, np.full((n, 4), np.nan)
    if is_table:
        lon = io.as_optional_text(frame[lon_src])
        lat = io.as_optional_text(frame[lat_src])
        given = (lon.notna() | lat.notna()).to_numpy()
        x = np.full(n, np.nan)
        y = np.full(n, np.nan)
        if given.any():
            x[given] = _validate.parse_coordinates(
                lon[given], rows[given], column=str(lon_src), problems=problems
            )
            y[given] = _validate.parse_coordinates(
                lat[given], rows[given], column=str(lat_src), problems=problems
            )
        ok = np.isfinite(x) & np.isfinite(y)
        geoms[ok] = shapely.points(x[ok], y[ok])
        return geoms, np.column_stack([x, y, x, y])
    raw = io.simplify_single_parts(
        shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
    )
    present = ~shapely.is_missing(raw) & ~shapely.is_empty(raw)
    types = np.array([g.geom_type if g is not None else "" for g in raw], dtype=object)
    wrong = present & (types != "Point")
    if wrong.any():
        problems.add(
            f"home geometry is not a point at {_validate.rows_text(rows[wrong])} "
            f"({', '.join(sorted(set(types[wrong])))}): draw each home as one point, or use "
            "`gdf.representative_point()`."
        )
    keep = present & ~wrong
    geoms[keep] = raw[keep]
    bounds = np.full((n, 4), np.nan)
    if keep.any():
        bounds[keep] = shapely.bounds(raw[keep])
    return geoms, bounds


def mask_phone(phone: Any) -> str | None:
    """Mask a phone number for output, keeping the first 3 and last 4 digits.

    Examples
    --------
    >>> mask_phone("13812345678"), mask_phone("027-8765 4321"), mask_phone(None)
    ('138****5678', '027****4321', None)
    >>> mask_phone("12345")
    '***45'
    """
    if phone is None or (np.ndim(phone) == 0 and pd.isna(phone)):
        return None
    digits = re.sub(r"\D", "", str(phone))
    if len(digits) >= 8:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def write_workers(workers: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a roster as a CSV (UTF-8 with BOM) or XLSX table with ``lon``/``lat`` columns.

    Parameters
    ----------
    workers
        A roster with point homes (``None`` where unknown), e.g. from :func:`make_roster`.
    path
        ``.csv`` or ``.xlsx`` (needs openpyxl).  Parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``; writing the same roster twice gives identical bytes (CSV).

    Notes
    -----
    Text cells that a spreadsheet would run as formulas get a leading ``'``
    (:func:`gridkit.export.spreadsheet_safe`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    geoms = workers.to_crs(4326).geometry.to_numpy() if workers.crs else workers.geometry.to_numpy()
    ok = ~shapely.is_missing(geoms)
    lon = np.full(len(workers), np.nan)
    lat = np.full(len(workers), np.nan)
    lon[ok], lat[ok] = shapely.get_x(geoms[ok]), shapely.get_y(geoms[ok])
    table = pd.DataFrame(workers.drop(columns=workers.geometry.name))
    table["lon"] = np.round(lon, 7)
    table["lat"] = np.round(lat, 7)
    from gridkit.export import spreadsheet_safe

    table = spreadsheet_safe(table)  # no cell runs as a formula (gridkit.export's rule)
    if path.suffix.lower() in _EXCEL_SUFFIXES:
        table.to_excel(path, index=False)
    else:
        table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    logger.info("wrote %d workers to %s", len(table), path)
    return path


# --------------------------------------------------------------------------- generator

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉斌宇浩凯琳晨雪"


def make_roster(
    grids: GridsLike,
    *,
    seed: int = 0,
    policy: str | os.PathLike[str] | Mapping[str, Any] | StaffingPolicy | None = None,
    spare: float = 0.1,
    unavailable: float = 0.03,
    pinned: float = 0.02,
    households_per_extra: int = 400,
) -> gpd.GeoDataFrame:
    """Invent a roster that staffs ``grids`` under ``policy``, deterministically for a seed.

    Homes are random points in grids drawn in proportion to their households, so people
    live where people live; about 10% of people give only their home community and 15%
    only their home point.  Names are random two- or three-character Chinese names and
    phone numbers start with the unallocated prefix 100: nothing describes real people.

    Parameters
    ----------
    grids
        A grid layer (GeoDataFrame, ``grids.geojson`` or a ``gridkit partition`` output
        folder) with ``grid_code``, ``community_id``, ``households`` and polygons.
    seed
        Seed of :func:`numpy.random.default_rng`.
    policy
        The staffing policy the roster must satisfy (see :func:`load_policy`).
    spare
        Extra people per role beyond the minimum that covers every requirement.
    unavailable
        Further people per role marked ``unavailable`` (on leave): they do not count
        towards the supply.
    pinned
        Share of full-time grid workers pinned to the grid they live in (distinct grids).
    households_per_extra
        For ``assign_all`` roles (part-time workers, volunteers): one extra person per
        this many households of the district.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per person, as a local roster would look: ``worker_id``
        (``W0001``…), ``name``, ``role`` (Chinese, e.g. 专职网格员), ``home_community``,
        ``phone``, ``max_grids`` (a few officers have 2), ``pinned_grid``,
        ``unavailable`` (是/否) and the home ``geometry`` (None for the community-only
        people).  Write it with :func:`write_workers`.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> grids = gpd.GeoDataFrame({"grid_code": ["C1-001", "C1-002"], "community_id": "C1",
    ...                           "households": [500, 700]},
    ...                          geometry=[box(115.0, 30.2, 115.005, 30.205),
    ...                                    box(115.005, 30.2, 115.01, 30.205)], crs=4326)
    >>> roster = make_roster(grids, seed=1)
    >>> sorted(set(roster["role"])) == sorted(ROLE_LABELS.values())
    True
    """
    from gridkit.staffing.assign import read_grids  # assign imports this module

    layer = read_grids(grids)
    rules = load_policy(policy)
    rng = np.random.default_rng(seed)
    metric_crs = local_metric_crs(layer)
    metric = layer.to_crs(metric_crs)
    households = layer["households"].to_numpy(dtype=np.int64)
    community = layer["community_id"].to_numpy(dtype=object)
    communities = pd.unique(community)
    comm_households = pd.Series(households).groupby(community).sum().reindex(communities)

    counts: dict[str, tuple[int, int]] = {}
    for role, rp in rules.roles.items():
        if rp.scope == "grid":
            need = rp.required(households)
            if rp.same_community:
                minimum = sum(
                    max(int(need[community == c].max(initial=0)),
                        math.ceil(int(need[community == c].sum()) / rp.max_units))
                    for c in communities
                )
            else:
                minimum = max(int(need.max(initial=0)), math.ceil(int(need.sum()) / rp.max_units))
        else:
            need = rp.required(comm_households.to_numpy())
            minimum = max(int(need.max(initial=0)), math.ceil(int(need.sum()) / rp.max_units))
        n = math.ceil(minimum * (1 + spare)) if minimum else 0
        if rp.assign_all:
            n += round(int(households.sum()) / households_per_extra)
        counts[role] = (n, round(n * unavailable))

    total = sum(a + b for a, b in counts.values())
    weights = (households + 1) / (households + 1).sum()
    home_grid = rng.choice(len(layer), size=total, p=weights)
    points = _random_points_in(rng, metric.geometry.to_numpy(), home_grid)
    home_wgs = gpd.GeoSeries(points, crs=metric_crs).to_crs(4326).to_numpy()
    kind = rng.random(total)  # < 0.10: community only; < 0.25: point only; else both

    rows: list[dict[str, Any]] = []
    taken_pins: set[str] = set()
    k = 0
    for role in ROLES:
        available, away = counts[role]
        for j in range(available + away):
            g = int(home_grid[k])
            is_away = j >= available
            row = {
                "role": ROLE_LABELS[role],
                "home_community": None if kind[k] >= 0.10 and kind[k] < 0.25 else community[g],
                "geometry": None if kind[k] < 0.10 else home_wgs[k],
                "max_grids": pd.NA,
                "pinned_grid": None,
                "unavailable": "是" if is_away else "否",
            }
            code = str(layer["grid_code"].iat[g])
            if (
                role == "grid_worker" and not is_away and row["geometry"] is not None
                and code not in taken_pins and rng.random() < pinned
            ):
                row["pinned_grid"] = code
                taken_pins.add(code)
            if role == "police" and rules.roles[role].max_units > 2 and rng.random() < 0.1:
                row["max_grids"] = 2
            rows.append(row)
            k += 1
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    names = [
        _SURNAMES[rng.integers(len(_SURNAMES))]
        + "".join(_GIVEN[i] for i in rng.integers(len(_GIVEN), size=rng.integers(1, 3)))
        for _ in rows
    ]
    phones = [f"100{n:08d}" for n in rng.integers(0, 10**8, size=len(rows))]
    frame = pd.DataFrame(rows)
    out = gpd.GeoDataFrame(
        {
            "worker_id": [f"W{i:04d}" for i in range(1, len(rows) + 1)],
            "name": names,
            "role": frame["role"],
            "home_community": frame["home_community"],
            "phone": phones,
            "max_grids": pd.array(frame["max_grids"], dtype="Int64"),
            "pinned_grid": frame["pinned_grid"],
            "unavailable": frame["unavailable"],
        },
        geometry=gpd.GeoSeries(frame["geometry"].to_numpy(), crs=4326),
        crs=4326,
    )
    out["geometry"] = shapely.set_precision(out.geometry.to_numpy(), 1e-7)
    logger.info(
        "make_roster(seed=%d): %d people (%s)", seed, len(out),
        ", ".join(f"{r} {a}+{b} unavailable" for r, (a, b) in counts.items()),
    )
    return out


def _random_points_in(rng: np.random.Generator, polygons: np.ndarray, which: np.ndarray
                      ) -> np.ndarray:
    """One uniform random point inside ``polygons[which[i]]`` for each ``i``."""
    out = np.empty(len(which), dtype=object)
    for g in np.unique(which):
        idx = np.flatnonzero(which == g)
        poly = polygons[g]
        x0, y0, x1, y1 = poly.bounds
        found: list[np.ndarray] = []
        need = len(idx)
        for _ in range(100):
            pts = rng.uniform((x0, y0), (x1, y1), size=(4 * need + 8, 2))
            inside = pts[shapely.contains_xy(poly, pts[:, 0], pts[:, 1])]
            found.append(inside)
            if sum(len(f) for f in found) >= need:
                break
        pts = np.concatenate(found)
        if len(pts) < need:  # a sliver: fall back to its representative point
            rep = shapely.point_on_surface(poly)
            pts = np.concatenate([pts, np.tile([rep.x, rep.y], (need - len(pts), 1))])
        out[idx] = shapely.points(pts[:need])
    return out
