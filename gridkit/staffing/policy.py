"""The roles of grid staff and the staffing policy: which roles each grid and community needs.

:func:`normalise_role` turns a roster's role cell, in English or Chinese (see
:data:`ROLE_LABELS`), into a role key of :data:`ROLES`.  :func:`load_policy` reads the
staffing rules (TOML; the defaults are ``gridkit/policies/default.toml``) into a
:class:`StaffingPolicy` holding one :class:`RolePolicy` per role: the people each grid or
community needs, the capacities, and the weights of the objective.  Every problem of a
policy is collected and raised once as an :class:`~gridkit.errors.InputError`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from gridkit.contracts import ROLE_LABELS, ROLES
from gridkit.errors import InputError
from gridkit.io import Problems

__all__ = [
    "ROLES",
    "ROLE_LABELS",
    "RolePolicy",
    "StaffingPolicy",
    "load_policy",
    "normalise_role",
]

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


def _table(value: Any, where: str, problems: Problems) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    problems.add(f"{where} must be a table, got {value!r}: write it as a [section] of keys.")
    return {}


def _role_policy(role: str, table: Mapping[str, Any], problems: Problems) -> RolePolicy:
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
