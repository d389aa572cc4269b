"""Grid codes kept across generations: the 3-digit sequence number a code ends in, the
matching of new grids to old codes, and the households that moved between two plans.
"""

from __future__ import annotations

import re

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["CODE_END", "match_codes", "moved_households", "sequence_of"]

#: The 3-digit sequence number every gridkit grid code ends in.
CODE_END = re.compile(r"\d{3}$")


def sequence_of(code: str) -> int:
    """The sequence number of a grid code: its last 3 digits (``C01-007`` -> 7)."""
    return int(str(code)[-3:])


def match_codes(labels: np.ndarray, old: np.ndarray, w: np.ndarray) -> dict[int, int]:
    """Old grid sequence for each new label: maximum-weight matching on shared households.

    Weights are ``1000 * households + 1`` per shared unit, so households decide and
    buildings break ties; pairs sharing nothing are never matched.
    """
    new_ids = np.unique(labels)
    old_ids = np.unique(old[old >= 0])
    if not len(new_ids) or not len(old_ids):
        return {}
    ni = np.searchsorted(new_ids, labels)
    has = old >= 0
    oi = np.searchsorted(old_ids, old[has])
    gain = np.zeros((len(new_ids), len(old_ids)))
    np.add.at(gain, (ni[has], oi), 1000.0 * w[has] + 1.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return {
        int(new_ids[r]): int(old_ids[c]) for r, c in zip(rows, cols, strict=True) if gain[r, c] > 0
    }


def moved_households(old_codes, new_codes, households, *, relabel: bool = False) -> int:
    """Households whose grid changed between two plans.

    Parameters
    ----------
    old_codes, new_codes
        Grid code per unit (or household row) before and after; ``""`` for none.
        Units without an old code are new and never count.
    households
        Households per unit.
    relabel
        Count after the best one-to-one renaming of the new grids to old codes (a
        maximum-weight matching): what a from-scratch plan would move at best.

    Examples
    --------
    >>> moved_households(["a", "a", "b"], ["a", "c", "b"], [10, 5, 7])
    5
    >>> moved_households(["a", "a", "b"], ["x", "x", "y"], [10, 5, 7], relabel=True)
    0
    """
    old = np.asarray(old_codes, dtype=object)
    new = np.asarray(new_codes, dtype=object)
    w = np.asarray(households, dtype=np.int64)
    base = old != ""
    if not relabel:
        return int(w[base & (old != new)].sum())
    old_ids, oi = np.unique(old[base].astype(str), return_inverse=True)
    new_ids, ni = np.unique(new[base].astype(str), return_inverse=True)
    gain = np.zeros((len(new_ids), len(old_ids)))
    np.add.at(gain, (ni, oi), w[base])
    for k, code in enumerate(new_ids):
        if code == "":
            gain[k] = 0.0  # unassigned now: never kept
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return int(w[base].sum() - gain[rows, cols].sum())
