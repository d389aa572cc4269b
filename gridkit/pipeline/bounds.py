"""Household bounds per community, as grid rules: villages (村) and urban communities (社区).

The bounds come from :func:`gridkit.io.bounds_table` (``min_households``/``max_households``
columns of the communities, then their type looked up in ``--community-rules FILE``, then
the run's bounds).  A target given for the run is kept where it lies inside a community's
bounds; elsewhere the community aims at the middle of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import geopandas as gpd

from gridkit.io import BOUNDS_COLUMNS, TYPE_COLUMNS, bounds_table, load_community_rules
from gridkit.partition import GridRules

__all__ = [
    "BOUNDS_COLUMNS",
    "TYPE_COLUMNS",
    "CommunityBounds",
    "bounds_report",
    "community_bounds",
    "load_community_rules",
    "split_limits",
]


class CommunityBounds(dict):
    """Community id -> its :class:`~gridkit.partition.GridRules`; ``source`` says why.

    ``source[community_id]`` is ``"columns"``, ``"type:<type>"`` or ``"run"``.
    """

    def __init__(self, rules: dict[str, GridRules], source: dict[str, str]):
        super().__init__(rules)
        self.source = source

    @property
    def varies(self) -> bool:
        """Whether any community has bounds other than the run's."""
        return any(s != "run" for s in self.source.values())


def community_bounds(
    boundaries: gpd.GeoDataFrame,
    rules: GridRules,
    *,
    community_rules: str | os.PathLike | Mapping | None = None,
) -> CommunityBounds:
    """The household bounds of every community (see the module doc for the precedence).

    Parameters
    ----------
    boundaries
        Communities with ``community_id`` (and ``row``, for messages); optional
        :data:`BOUNDS_COLUMNS` and a type column (:data:`TYPE_COLUMNS`).
    rules
        The run's rules (bounds, target, balance weight).
    community_rules
        Bounds by community type (:func:`load_community_rules`), or None.

    Returns
    -------
    CommunityBounds
        Community id -> rules.

    Raises
    ------
    InputError
        When a bounds cell is not a whole number >= 1, a community's minimum exceeds its
        maximum, or a rules file is given but the communities have no type column; the
        message names the file, the rows and the fix.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> c = gpd.GeoDataFrame({"community_id": ["A", "B", "C"], "类型": ["村", "社区", "村"],
    ...                       "max_households": [None, None, 300]},
    ...                      geometry=[shapely.box(0, 0, 1, 1)] * 3, crs=4326)
    >>> b = community_bounds(c, GridRules(), community_rules={"types": {"村": {
    ...     "min_households": 200, "max_households": 400}}})
    >>> [(k, r.min_households, r.max_households, b.source[k]) for k, r in b.items()]
    [('A', 200, 400, 'type:村'), ('B', 400, 800, 'run'), ('C', 200, 300, 'columns')]
    """
    table = bounds_table(
        boundaries,
        min_households=rules.min_households,
        max_households=rules.max_households,
        community_rules=community_rules,
    )
    out: dict[str, GridRules] = {}
    for cid, a, b in zip(
        table["community_id"], table["min_households"], table["max_households"], strict=True
    ):
        if (a, b) == (rules.min_households, rules.max_households):
            out[cid] = rules
            continue
        target = rules.target_households
        if target is not None and not a <= target <= b:
            target = None
        out[cid] = replace(rules, min_households=int(a), max_households=int(b),
                           target_households=target)  # fmt: skip
    return CommunityBounds(out, dict(zip(table["community_id"], table["source"], strict=True)))


def split_limits(bounds: Mapping[str, GridRules]) -> dict[str, int]:
    """Community id -> the household count above which a compound is split into grids."""
    return {cid: r.max_households for cid, r in bounds.items()}


def bounds_report(bounds: CommunityBounds, community_rules: Any) -> dict | None:
    """The ``parameters["community_bounds"]`` entry of ``report.json`` (None: run bounds only)."""
    if not bounds.varies:
        return None
    return {
        "rules": load_community_rules(community_rules) or None,
        "communities": {
            cid: {
                "min_households": r.min_households,
                "max_households": r.max_households,
                "source": bounds.source[cid],
            }
            for cid, r in bounds.items()
            if bounds.source[cid] != "run"
        },
    }
