"""Who may serve a role, and where a role applies.

- :func:`check_requirements`: the roster attributes a role ``requires`` (a Party member, a
  skill): which people meet them, and why the others do not.
- :func:`grid_types`: each grid's type (``grid_type`` column; ``"comprehensive"`` without
  one), for roles limited by ``grid_types``.
- :func:`rank_weak_grids`: the grids ranked weakest first, for roles with ``weak_grids``
  (第一书记 sent to weak grids).  A grid's weakness is its households per assigned person
  of the ``weak_by`` roles (by default the full-time grid workers, 专职网格员): a grid
  nobody of those roles serves is weakest, then the most households per person; ties go
  to the grid with more households, then to the lower grid code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gridkit.errors import format_ids
from gridkit.io import Problems, cell_text, columns_text, rows_text
from gridkit.staffing.policy import COMPREHENSIVE, StaffingPolicy

__all__ = [
    "accepts_grid_type",
    "check_requirements",
    "grid_types",
    "normalise_grid_type",
    "rank_weak_grids",
]

_YES = frozenset({"1", "true", "yes", "y", "t", "是", "x", "√", "✓", "党员", "中共党员"})
_NO = frozenset({"0", "false", "no", "n", "f", "否", "×", "非党员", "群众"})
_COMPREHENSIVE_WORDS = frozenset({COMPREHENSIVE, "综合网格", "综合", "residential"})


def _column(frame: pd.DataFrame, name: str) -> Any:
    """The roster column called ``name`` (exact, else ignoring case and blanks), or None."""
    if name in frame.columns:
        return name
    want = name.strip().lower()
    matches = [c for c in frame.columns if str(c).strip().lower() == want]
    return matches[0] if len(matches) == 1 else None


def check_requirements(workers: pd.DataFrame, policy: StaffingPolicy
                       ) -> tuple[np.ndarray, list[str]]:
    """Which people meet the attributes their role ``requires``, and why not.

    Parameters
    ----------
    workers
        The roster (:func:`~gridkit.staffing.read_workers`): ``role``, ``row`` and the
        columns the roles require.
    policy
        The policy; roles without ``requires`` accept everyone.

    Returns
    -------
    eligible, reasons
        ``(n,)`` bool, and one reason per person (``""`` when eligible), e.g.
        ``"requires party_member = yes (the cell says 否)"``.

    Raises
    ------
    InputError
        If a required column is missing from the roster, or a yes/no column holds other
        values; every problem names the role, the column or rows, and the fix.
    """
    source = str(workers.attrs.get("source") or "<workers>")
    problems = Problems(source, "workers")
    n = len(workers)
    eligible = np.ones(n, dtype=bool)
    reasons = [""] * n
    roles = workers["role"].to_numpy(dtype=object)
    rows = workers["row"].to_numpy()
    columns = [c for c in workers.columns if c != workers.geometry.name] if hasattr(
        workers, "geometry") else list(workers.columns)
    for role, rp in policy.roles.items():
        members = np.flatnonzero(roles == role)
        for name, want in rp.requires:
            col = _column(workers, name)
            if col is None:
                problems.add(
                    f"role {role} ({rp.name_zh}) requires column `{name}`, but the roster has "
                    f"no such column (columns: {columns_text(columns)}): add a `{name}` column "
                    f"({'是/否' if isinstance(want, bool) else 'text'}) for its people, or "
                    f"remove `{name}` from `requires` of [roles.{role}] in the policy."
                )
                continue
            if not len(members):
                continue
            cells = [cell_text(v) for v in workers[col].to_numpy(dtype=object)[members]]
            bad: list[int] = []
            for j, cell in zip(members, cells, strict=True):
                ok, why = _meets(cell, want)
                if ok is None:
                    bad.append(int(j))
                elif not ok and eligible[j]:
                    eligible[j] = False
                    reasons[j] = f"requires {name} = {why}"
            if bad:
                values = sorted({str(cell_text(workers[col].iat[j])) for j in bad})
                problems.add(
                    f"column `{col}` (role {role} requires it) is not yes/no at "
                    f"{rows_text(rows[bad])} ({format_ids(values, limit=5)}): write 是 or 否 "
                    "(also 1/0, true/false, yes/no)."
                )
    problems.raise_if_any()
    return eligible, reasons


def _meets(cell: str | None, want: bool | str | tuple[str, ...]) -> tuple[bool | None, str]:
    """Whether a cell meets a requirement (None: not a yes/no value), and what was asked."""
    text = (cell or "").strip()
    if isinstance(want, bool):
        key = text.lower()
        asked = f"{'yes' if want else 'no'} (the cell says {text or 'nothing'})"
        if not key:
            return (not want), asked
        if key in _YES:
            return want, asked
        if key in _NO:
            return (not want), asked
        return None, asked
    texts = (want,) if isinstance(want, str) else want
    asked = f"{' or '.join(repr(t) for t in texts)} (the cell says {text or 'nothing'})"
    low = text.lower()
    return any(t.lower() in low for t in texts), asked


def normalise_grid_type(value: Any) -> str:
    """A grid type as compared with a role's ``grid_types``: lower case, 综合网格 → comprehensive.

    Examples
    --------
    >>> normalise_grid_type("综合网格"), normalise_grid_type(None), normalise_grid_type(" School ")
    ('comprehensive', 'comprehensive', 'school')
    """
    text = cell_text(value)
    key = (text or "").strip().lower()
    return COMPREHENSIVE if not key or key in _COMPREHENSIVE_WORDS else key


def accepts_grid_type(types: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    """Which grids (by :func:`grid_types`) a role's ``grid_types`` accepts.

    ``"dedicated"`` stands for every dedicated grid (专属网格: any type but comprehensive).

    Examples
    --------
    >>> types = np.array(["comprehensive", "school", "hospital"], dtype=object)
    >>> accepts_grid_type(types, ["School"]).tolist()
    [False, True, False]
    >>> accepts_grid_type(types, ["dedicated"]).tolist()
    [False, True, True]
    >>> accepts_grid_type(types, ["综合网格"]).tolist()
    [True, False, False]
    """
    keys = {normalise_grid_type(t) for t in wanted}
    ok = np.isin(types, list(keys))
    if "dedicated" in keys:
        ok |= types != COMPREHENSIVE
    return ok


def grid_types(grids: pd.DataFrame) -> np.ndarray:
    """Each grid's type (:func:`normalise_grid_type`); all comprehensive without ``grid_type``."""
    if "grid_type" not in grids.columns:
        return np.full(len(grids), COMPREHENSIVE, dtype=object)
    return np.array([normalise_grid_type(v) for v in grids["grid_type"]], dtype=object)


def rank_weak_grids(codes: Sequence[str], households: Sequence[int], people: Sequence[int]
                    ) -> pd.DataFrame:
    """Grids ranked weakest first: most households per person, none at all first.

    Parameters
    ----------
    codes, households, people
        Per grid: its code, its households, and the people of the ``weak_by`` roles
        assigned to it.

    Returns
    -------
    pandas.DataFrame
        ``rank`` (1 = weakest), ``grid_code``, ``households``, ``people``,
        ``households_per_person`` (``None`` when nobody serves the grid), weakest first.
        Order: grids with nobody first, then by households per person, then by
        households (more first), then by grid code.

    Examples
    --------
    >>> rank_weak_grids(["A", "B", "C", "D"], [500, 800, 600, 700], [1, 2, 1, 0])[
    ...     ["grid_code", "households_per_person"]].values.tolist()
    [['D', None], ['C', 600.0], ['A', 500.0], ['B', 400.0]]
    """
    codes = np.asarray(codes, dtype=object).astype(str)
    hh = np.asarray(households, dtype=np.int64)
    n = np.asarray(people, dtype=np.int64)
    ratio = np.where(n > 0, hh / np.maximum(n, 1), np.inf)
    order = np.lexsort((codes, -hh, -ratio))
    return pd.DataFrame({
        "rank": np.arange(1, len(codes) + 1),
        "grid_code": codes[order].astype(object),
        "households": hh[order],
        "people": n[order],
        "households_per_person": pd.Series(
            [None if not np.isfinite(r) else round(float(r), 1) for r in ratio[order]],
            dtype=object),
    })
