"""The roles of grid staff and the staffing policy: which roles each grid and community needs.

A policy (TOML; the defaults are ``gridkit/policies/default.toml``) holds one table per
role.  The seven built-in roles of :data:`ROLES` are always there; a policy file may add
any number of its own (社区负责人, 楼栋长, 第一书记, 包联单位, ...): a ``[roles.<key>]`` table
with a ``label`` and a ``scope``.  :func:`load_policy` reads the rules into a
:class:`StaffingPolicy` holding one :class:`RolePolicy` per role: what one person serves
(grids, communities, buildings, or — for units paired with communities — communities),
the people each needs, the capacities, who is eligible, which grids the role applies to,
and the weights of the objective.  Every problem of a policy is collected and raised once
as an :class:`~gridkit.errors.InputError`.

:func:`normalise_role` turns a roster's role cell, in English or Chinese, into a role key:
the built-in names (:data:`ROLE_LABELS` and common aliases), and with a policy also the
key, ``label`` and ``aliases`` of each of its roles.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from gridkit.contracts import GRID_COLUMNS, ROLE_LABELS, ROLE_SCOPES, ROLES
from gridkit.errors import InputError
from gridkit.io import Problems

__all__ = [
    "COMPREHENSIVE",
    "ROLES",
    "ROLE_LABELS",
    "SCOPES",
    "RolePolicy",
    "StaffingPolicy",
    "load_policy",
    "normalise_role",
]

#: What one person (or unit) of a role serves: grids; whole communities; buildings
#: (楼栋长); communities, served by units such as companies or bureaus (包联).
SCOPES: tuple[str, ...] = ROLE_SCOPES

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

# names a role key may not take: the columns of the staffed grid layer
_RESERVED = frozenset({*GRID_COLUMNS, "missing_roles", "geometry", "row", "grid_type", "phone"})
_KEY = re.compile(r"[a-z][a-z0-9_]*")

# --------------------------------------------------------------------------- roles


def _role_text(value: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(value).strip().lower()).strip("_")


def normalise_role(value: Any, policy: StaffingPolicy | None = None) -> str | None:
    """The canonical role key of a roster cell, or ``None`` if it is not a known role.

    Case, blanks, hyphens and spaces are ignored.

    Parameters
    ----------
    value
        The cell: a role key, a Chinese name or an alias.
    policy
        A policy whose roles are accepted too (their key, ``label`` and ``aliases``);
        ``None``: the built-in roles only.

    Examples
    --------
    >>> normalise_role("专职网格员"), normalise_role("Part-time"), normalise_role("民警")
    ('grid_worker', 'part_time', 'police')
    >>> normalise_role("caretaker") is None
    True
    >>> p = load_policy({"roles": {"building_head": {"label": "楼栋长", "scope": "building"}}})
    >>> normalise_role("楼栋长", p), normalise_role("Building head", p)
    ('building_head', 'building_head')
    """
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    aliases = _ROLE_ALIASES if policy is None else policy.aliases
    key = _role_text(value)
    return aliases.get(key) or aliases.get(key.replace("_", ""))


# --------------------------------------------------------------------------- policy

_SCOPE_KEYS: dict[str, dict[str, str]] = {
    "grid": {"per_grid": "per_unit", "max_per_grid": "max_per_unit", "max_grids": "max_units"},
    "community": {
        "per_community": "per_unit",
        "max_per_community": "max_per_unit",
        "max_communities": "max_units",
    },
    "building": {
        "per_building": "per_unit",
        "max_per_building": "max_per_unit",
        "max_buildings": "max_units",
    },
}
_SCOPE_KEYS["unit"] = _SCOPE_KEYS["community"]
_COMMON_KEYS = ("scope", "per_households", "max_households", "same_community", "assign_all")
#: Keys of a role table besides the capacities, and the scopes they apply to.
_ROLE_KEYS: dict[str, tuple[str, ...]] = {
    "label": SCOPES,
    "aliases": SCOPES,
    "min_households": SCOPES,
    "requires": SCOPES,
    "home_community": SCOPES,
    "weak_grids": ("grid", "building"),
    "weak_by": ("grid", "building"),
    "grids": ("grid", "building"),
    "grid_types": ("grid", "building"),
}
_GRID_ONLY = ("same_community",)
_WEIGHT_KEYS = ("cross_community_m", "balance_m_per_household", "idle_m")
_MODEL_KEYS = ("max_pairs", "candidates")
#: Grid types that mean an ordinary residential grid (综合网格).
COMPREHENSIVE = "comprehensive"


@dataclass(frozen=True)
class RolePolicy:
    """The staffing rules of one role (see ``gridkit/policies/default.toml``).

    Attributes
    ----------
    role
        Role key: one of :data:`ROLES`, or a key the policy file defines.
    scope
        {"grid", "community", "building", "unit"}
        What one person of the role serves: grids; whole communities; buildings
        (楼栋长); or communities served by units (包联: each roster row of the role is a
        unit such as a company or a bureau).
    per_unit
        People of the role every grid (community, building) needs: ``per_grid`` /
        ``per_community`` / ``per_building``.
    per_households
        If set, also at least one person per this many households of the unit.
    max_per_unit
        Most people of the role in one unit; ``None``: the requirement (no limit for
        ``assign_all`` roles).
    max_units
        Units one person serves at most: ``max_grids`` / ``max_communities`` /
        ``max_buildings``.
    max_households
        Households one person serves at most; ``None``: no limit.
    same_community
        All grids (buildings) served by one person lie in one community.
    assign_all
        Every available person gets a place (up to ``max_per_unit``), spread by households.
    label
        Chinese name (社区负责人): accepted in rosters, written as ``role_zh``.
    aliases
        Further names accepted in rosters.
    min_households
        The role applies only to units holding at least this many households (e.g. 楼栋长
        for buildings of 60 households or more).
    requires
        ``(column, value)`` pairs a person must meet: ``True``/``False`` (a yes/no roster
        column), a text the column must contain, or a tuple of texts (any of them).
    home_community
        ``"same"``: a person serves only units of their home community (双报到);
        ``"any"``: anywhere.
    weak_grids
        The role applies only to this many weakest grids: most households per person of
        the ``weak_by`` roles assigned (ties by grid code).
    weak_by
        The roles whose people count for ``weak_grids`` (default: 专职网格员).
    grids
        The role applies only to these grid codes.
    grid_types
        The role applies only to grids whose ``grid_type`` is listed (a layer without
        ``grid_type`` is all ``"comprehensive"``); ``"dedicated"`` stands for every
        dedicated grid (专属网格, any type but comprehensive).
    """

    role: str
    scope: Literal["grid", "community", "building", "unit"] = "grid"
    per_unit: int = 1
    per_households: int | None = None
    max_per_unit: int | None = None
    max_units: int = 1
    max_households: int | None = None
    same_community: bool = False
    assign_all: bool = False
    label: str = ""
    aliases: tuple[str, ...] = ()
    min_households: int | None = None
    requires: tuple[tuple[str, bool | str | tuple[str, ...]], ...] = ()
    home_community: Literal["any", "same"] = "any"
    weak_grids: int | None = None
    weak_by: tuple[str, ...] = ("grid_worker",)
    grids: tuple[str, ...] = ()
    grid_types: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        """What the role's capacity counts: ``"grid"``, ``"community"`` or ``"building"``."""
        return "community" if self.scope == "unit" else self.scope

    @property
    def name_zh(self) -> str:
        """The Chinese name: ``label``, else the built-in name, else the key."""
        return self.label or ROLE_LABELS.get(self.role, self.role)

    @property
    def selects_grids(self) -> bool:
        """The role applies to some grids only (weak grids, listed grids or grid types)."""
        return bool(self.weak_grids or self.grids or self.grid_types)

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
        # the keys of policy-defined roles, only where set (the defaults' report is unchanged)
        if self.label and self.label != ROLE_LABELS.get(self.role):
            out["label"] = self.label
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.min_households is not None:
            out["min_households"] = self.min_households
        if self.requires:
            out["requires"] = {k: list(v) if isinstance(v, tuple) else v
                               for k, v in self.requires}
        if self.home_community != "any":
            out["home_community"] = self.home_community
        if self.weak_grids:
            out["weak_grids"] = self.weak_grids
            out["weak_by"] = list(self.weak_by)
        if self.grids:
            out["grids"] = list(self.grids)
        if self.grid_types:
            out["grid_types"] = list(self.grid_types)
        return out


@dataclass(frozen=True)
class StaffingPolicy:
    """Which roles each grid and community needs, capacities, and the objective's weights.

    Load one with :func:`load_policy`; the defaults are ``gridkit/policies/default.toml``.

    Attributes
    ----------
    roles
        :class:`RolePolicy` by role key: the built-in roles in :data:`ROLES` order, then
        the policy's own roles in the order of the file.
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

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Every name a roster may give a role (normalised text → role key)."""
        out = {k: v for k, v in _ROLE_ALIASES.items() if v in self.roles}
        for role, rp in self.roles.items():
            for name in (role, rp.label, *rp.aliases):
                if name:
                    out[_role_text(name)] = role
        return out

    def labels(self) -> dict[str, str]:
        """The Chinese name of each role, in role order."""
        return {role: rp.name_zh for role, rp in self.roles.items()}

    def roles_text(self) -> str:
        """The roles as ``key/名称`` for messages."""
        return ", ".join(f"{role}/{label}" for role, label in self.labels().items())

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
        different ``scope`` than the default replaces that role's table.  A table for
        a role that is not built in defines a new role: it needs a ``label`` and a
        ``scope``.

    Returns
    -------
    StaffingPolicy

    Raises
    ------
    InputError
        If the file is missing or not valid TOML, or lists unknown sections or keys,
        roles without ``label`` and ``scope``, names given to two roles, or values of
        the wrong type or range; every problem is listed.

    Examples
    --------
    >>> p = load_policy({"roles": {"police": {"max_grids": 2}}})
    >>> p.roles["police"].max_units, p.roles["grid_worker"].max_units
    (2, 1)
    >>> p.roles["mediator"].scope
    'community'
    >>> p = load_policy({"roles": {"community_head": {"label": "社区负责人",
    ...                                               "scope": "community"}}})
    >>> list(p.roles)[-1], p.roles["community_head"].per_unit
    ('community_head', 1)
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
    problems = Problems(source, "staffing policy")
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
    new_roles: list[str] = []
    for role, table in user_roles.items():
        if role in ROLES:
            continue
        if not isinstance(table, Mapping) or "scope" not in table or "label" not in table:
            canonical = normalise_role(role)
            hint = f" (did you mean `{canonical}`?)" if canonical else ""
            problems.add(
                f"unknown role [roles.{role}]{hint}: roles are {', '.join(ROLES)}; to define "
                "a new role give its table a `label` (its Chinese name, e.g. label = "
                "\"社区负责人\") and a `scope` (\"grid\", \"community\", \"building\" or \"unit\")."
            )
        elif not _KEY.fullmatch(str(role)):
            problems.add(
                f"role key [roles.{role}] must be lowercase letters, digits and `_`, starting "
                "with a letter (e.g. [roles.building_head]); put the Chinese name in `label`."
            )
        elif role in _RESERVED:
            problems.add(
                f"role key [roles.{role}] is a column of the grid layer: choose another key "
                f"(e.g. [roles.{role}_role])."
            )
        else:
            new_roles.append(str(role))
    for role in ROLES:
        base = dict(defaults["roles"][role])
        mine = _table(user_roles.get(role, {}), f"[roles.{role}]", problems)
        if "scope" in mine and mine["scope"] != base.get("scope"):
            base = {}
        roles[role] = _role_policy(role, {**base, **mine}, problems)
    for role in new_roles:
        roles[role] = _role_policy(role, user_roles[role], problems)
    _check_roles(roles, problems)
    problems.raise_if_any()
    return StaffingPolicy(roles=roles, source=source, **values)


def _check_roles(roles: Mapping[str, RolePolicy], problems: Problems) -> None:
    """Rules across roles: one role per name; ``weak_by`` names grid roles solved first."""
    owner = dict(_ROLE_ALIASES)
    for role, rp in roles.items():
        for name in (role, rp.label, *rp.aliases):
            key = _role_text(name)
            if key and owner.setdefault(key, role) != role:
                problems.add(
                    f"[roles.{role}] name {name!r} already names role `{owner[key]}`: give "
                    "each role its own label and aliases, so a role cell means one role."
                )
    for role, rp in roles.items():
        for other in rp.weak_by if rp.weak_grids else ():
            if other not in roles:
                problems.add(
                    f"[roles.{role}] weak_by names `{other}`, which is not a role: use role "
                    f"keys such as grid_worker (roles: {', '.join(roles)})."
                )
            elif roles[other].scope != "grid" or roles[other].weak_grids:
                problems.add(
                    f"[roles.{role}] weak_by names `{other}`, but only grid roles without "
                    "`weak_grids` count (they are assigned first): name such roles."
                )


def _table(value: Any, where: str, problems: Problems) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    problems.add(f"{where} must be a table, got {value!r}: write it as a [section] of keys.")
    return {}


def _role_policy(role: str, table: Mapping[str, Any], problems: Problems) -> RolePolicy:
    where = f"[roles.{role}]"
    scope = table.get("scope", "grid")
    if scope not in SCOPES:
        problems.add(
            f"{where} scope = {scope!r}: use \"grid\", \"community\", \"building\" or \"unit\"."
        )
        return RolePolicy(role=role)
    names = _SCOPE_KEYS[scope]
    kwargs: dict[str, Any] = {"role": role, "scope": scope}
    for key, value in table.items():
        if key == "scope":
            continue
        if key in _COMMON_KEYS:
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
        elif key in _ROLE_KEYS:
            if scope not in _ROLE_KEYS[key]:
                problems.add(
                    f"{where} `{key}` applies to scope "
                    f"{' or '.join(repr(s) for s in _ROLE_KEYS[key])} only: remove it."
                )
            else:
                _role_key(key, value, where, kwargs, problems)
        elif (other := _other_scope_key(key, scope)) is not None:
            problems.add(f"{where} has `{key}` but scope = \"{scope}\": use `{other}` instead.")
        else:
            allowed = [*names, *(k for k in _COMMON_KEYS if k != "scope"), *_ROLE_KEYS]
            problems.add(f"unknown key `{key}` in {where}: use scope, {', '.join(allowed)}.")
    if scope not in ("grid", "building") and kwargs.get("same_community"):
        problems.add(
            f"{where} same_community applies to scope = \"grid\" or \"building\" only: "
            "remove it."
        )
    if kwargs.get("weak_grids") and kwargs.get("grids"):
        problems.add(
            f"{where} has both `weak_grids` and `grids`: use one (the weakest grids, or a "
            "listed set)."
        )
    if role not in ROLES and "label" not in kwargs:
        kwargs["label"] = role
    out = RolePolicy(**{k: v for k, v in kwargs.items() if v is not None})
    if out.max_per_unit is not None and out.max_per_unit < out.per_unit:
        unit = "community" if scope == "unit" else scope
        problems.add(
            f"{where} allows at most {out.max_per_unit} per {unit} but requires {out.per_unit}: "
            f"raise `{'max_per_' + unit}` or lower `{'per_' + unit}`."
        )
    return out


def _other_scope_key(key: str, scope: str) -> str | None:
    """The key of ``scope`` meaning what ``key`` means in another scope, if any."""
    for other, names in _SCOPE_KEYS.items():
        if other != scope and key in names:
            return {v: k for k, v in _SCOPE_KEYS[scope].items()}[names[key]]
    return None


def _texts(value: Any, where: str, problems: Problems, *, allow_empty: bool = False
           ) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v.strip() for v in value)
        or (not value and not allow_empty)
    ):
        problems.add(f"{where} = {value!r}: expected a list of texts, e.g. [\"school\"].")
        return None
    return tuple(v.strip() for v in value)


def _role_key(key: str, value: Any, where: str, kwargs: dict[str, Any],
              problems: Problems) -> None:
    """Check one of the :data:`_ROLE_KEYS` and store it in ``kwargs``."""
    at = f"{where} {key}"
    if key == "label":
        if not isinstance(value, str) or not value.strip():
            problems.add(f"{at} = {value!r}: write the role's name, e.g. label = \"楼栋长\".")
        else:
            kwargs["label"] = value.strip()
    elif key in ("aliases", "grids", "grid_types", "weak_by"):
        kwargs[key] = _texts(value, at, problems)
    elif key in ("min_households", "weak_grids"):
        kwargs[key] = _integer(value, at, problems, minimum=1)
    elif key == "home_community":
        if value not in ("same", "any"):
            problems.add(
                f"{at} = {value!r}: write \"same\" (people serve only their home community, "
                "双报到) or \"any\"."
            )
        else:
            kwargs[key] = value
    elif key == "requires":
        if not isinstance(value, Mapping) or not value:
            problems.add(
                f"{at} = {value!r}: write a table of roster columns, e.g. requires = "
                "{party_member = true} or {skills = \"法律\"}."
            )
            return
        pairs: list[tuple[str, bool | str | tuple[str, ...]]] = []
        for column, want in value.items():
            if isinstance(want, bool):
                pairs.append((str(column), want))
            elif isinstance(want, str | list) and (texts := _texts(
                    want, f"{at}.{column}", problems)) is not None:
                pairs.append((str(column), texts[0] if isinstance(want, str) else texts))
            elif not isinstance(want, str | list):
                problems.add(
                    f"{at}.{column} = {want!r}: write true/false (a yes/no column), a text "
                    "the column must contain, or a list of texts (any of them)."
                )
        kwargs[key] = tuple(pairs)


def _integer(value: Any, where: str, problems: Problems, *, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.add(f"{where} = {value!r}: expected a whole number ≥ {minimum}.")
        return None
    return int(value)


def _number(value: Any, where: str, problems: Problems) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        problems.add(f"{where} = {value!r}: expected a number ≥ 0 (metres).")
        return 0.0
    return float(value)
