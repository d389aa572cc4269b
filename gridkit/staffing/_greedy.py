"""The greedy nearest-person plan that obeys every hard rule.

It is the baseline of ``benchmarks/assign_greedy.py`` and the first hint of the CP-SAT
solve (:mod:`gridkit.staffing._cpsat`).  Notation: :mod:`gridkit.staffing._model`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gridkit.staffing._problem import RoleProblem

__all__ = ["greedy"]


def greedy(
    p: RoleProblem,
    *,
    key: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    prefer: np.ndarray | None = None,
) -> np.ndarray:
    """A nearest-person plan obeying every hard rule: the baseline and the CP-SAT hint.

    Pinned pairs first, then the ``prefer`` pairs (e.g. previous assignments) where
    they fit.  Then each missing required slot goes to the nearest person (by
    ``key``, default the pair cost) who still has room (units, households, community):
    unit by unit in index order, or — for ``same_group`` roles where a person may serve
    several units — community by community, most missing slots first, each time taking
    the free person whose capacity wastes least (``max(0, capacity − missing)``), nearest
    first, for their nearest missing units (bin covering, so capacity is not stranded).
    Finally, for ``assign_all`` roles, each idle person goes to their nearest unit with
    room.  Slots nobody can take stay missing.

    Parameters
    ----------
    p
        The problem.
    key
        ``(P,)`` what "nearest" means, e.g. the distance without penalties.
    allowed
        ``(P,)`` bool: the pairs the greedy may use besides pinned ones (default all).
    prefer
        ``(P,)`` bool: pairs to take first, nearest first, where they fit.

    Returns
    -------
    numpy.ndarray
        ``(P,)`` bool: the chosen pairs.
    """
    key = p.pair_cost if key is None else np.asarray(key)
    allowed = np.ones(len(p.pair_w), dtype=bool) if allowed is None else allowed
    chosen = np.zeros(len(p.pair_w), dtype=bool)
    units_left = p.max_units.astype(np.int64).copy()
    hh_left = np.where(p.max_households > 0, p.max_households, np.iinfo(np.int64).max)
    group_of = np.full(p.n_people, -1, dtype=np.int64)
    count = np.zeros(p.n_units, dtype=np.int64)
    serves: list[set[int]] = [set() for _ in range(p.n_people)]

    def fits(i: int) -> bool:
        w, t = p.pair_w[i], p.pair_t[i]
        return bool(
            allowed[i]
            and units_left[w] > 0
            and hh_left[w] >= p.households[t]
            and t not in serves[w]
            and count[t] < p.max_people[t]
            and (not p.same_group or group_of[w] in (-1, p.group[t]))
        )

    def take(i: int) -> None:
        w, t = p.pair_w[i], p.pair_t[i]
        chosen[i] = True
        units_left[w] -= 1
        hh_left[w] -= p.households[t]
        group_of[w] = p.group[t]
        count[t] += 1
        serves[w].add(int(t))

    for i in np.flatnonzero(p.pair_pinned):
        take(int(i))
    if prefer is not None:
        for i in np.flatnonzero(prefer)[np.argsort(key[prefer], kind="stable")]:
            t = p.pair_t[i]
            if (count[t] < p.required[t] or p.assign_all) and fits(int(i)):
                take(int(i))
    order = np.lexsort((p.pair_w, key, p.pair_t))  # by unit, then nearest first
    starts = np.searchsorted(p.pair_t[order], np.arange(p.n_units + 1))
    if p.same_group and (p.max_units > 1).any():
        _cover_communities(p, key, order, starts, count, group_of, units_left, fits, take)
    for t in range(p.n_units):
        for i in order[starts[t] : starts[t + 1]]:
            if count[t] >= p.required[t]:
                break
            if fits(int(i)):
                take(int(i))
    if p.assign_all:
        by_person = np.lexsort((p.pair_t, key, p.pair_w))
        first = np.searchsorted(p.pair_w[by_person], np.arange(p.n_people + 1))
        for w in range(p.n_people):
            if units_left[w] < p.max_units[w]:
                continue
            for i in by_person[first[w] : first[w + 1]]:
                if fits(int(i)):
                    take(int(i))
                    break
    return chosen


def _cover_communities(
    p: RoleProblem,
    key: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    count: np.ndarray,
    group_of: np.ndarray,
    units_left: np.ndarray,
    fits: Callable[[int], bool],
    take: Callable[[int], None],
) -> None:
    """The community-first step of :func:`greedy` (bin covering with least waste)."""
    pairs_of_unit = [order[starts[t] : starts[t + 1]] for t in range(p.n_units)]

    def missing(k: int) -> np.ndarray:
        units = np.flatnonzero(p.group == k)
        return units[count[units] < p.required[units]]

    groups = np.unique(p.group)
    need = {int(k): int((p.required - count)[p.group == k].clip(0).sum()) for k in groups}
    for k in sorted(need, key=lambda k: (-need[k], k)):
        while True:
            units = missing(k)
            if not len(units):
                break
            short = int((p.required[units] - count[units]).sum())
            # committed people of this community first, then free people
            best = None
            for t in units:
                for i in pairs_of_unit[t]:
                    w = p.pair_w[i]
                    if group_of[w] not in (-1, k) or not fits(int(i)):
                        continue
                    rank = (group_of[w] != k, max(0, int(units_left[w]) - short), key[i], w)
                    if best is None or rank < best[0]:
                        best = (rank, w)
            if best is None:
                break
            w = best[1]
            cand = [int(i) for t in units for i in pairs_of_unit[t] if p.pair_w[i] == w]
            placed = False
            for i in sorted(cand, key=lambda i: (key[i], p.pair_t[i])):
                if count[p.pair_t[i]] < p.required[p.pair_t[i]] and fits(i):
                    take(i)
                    placed = True
            if not placed:  # pragma: no cover - fits() was true for one of them
                break
