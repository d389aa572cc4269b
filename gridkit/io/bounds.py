"""Household bounds per community, read from the communities and a rules file.

A community may carry its own bounds, in this order of precedence:

1. ``min_households`` / ``max_households`` columns of the communities file (either or
   both; an empty cell falls through);
2. a type column (``community_type``, ``type``, ``类型``, ``社区类型``) looked up in a small
   rules file (``--community-rules FILE``, a TOML table per type)::

       [types."村"]
       min_households = 200
       max_households = 400

3. the run's bounds.

:func:`bounds_table` reads them; :func:`gridkit.pipeline.community_bounds` turns them into
grid rules for partitioning, and :func:`gridkit.audit.audit_grids` checks a map with them.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gridkit.errors import InputError, format_ids

__all__ = ["BOUNDS_COLUMNS", "TYPE_COLUMNS", "bounds_table", "load_community_rules"]

#: Columns of the communities file that set a community's own bounds.
BOUNDS_COLUMNS = ("min_households", "max_households")
#: Columns naming a community's type, looked up in the rules file (first found wins).
TYPE_COLUMNS = ("community_type", "type", "类型", "社区类型")


def load_community_rules(rules: str | os.PathLike | Mapping | None) -> dict[str, dict[str, int]]:
    """Bounds by community type, from a TOML file or a mapping of the same shape.

    Parameters
    ----------
    rules
        A path to a TOML file with one ``[types."<type>"]`` table per type holding
        ``min_households`` and/or ``max_households``, or ``{"types": {...}}``, or None.

    Returns
    -------
    dict
        Type -> ``{"min_households": ..., "max_households": ...}`` (the keys given).

    Raises
    ------
    InputError
        When the file is missing or not TOML, or a table holds an unknown key or a value
        that is not a whole number >= 1.

    Examples
    --------
    >>> load_community_rules({"types": {"村": {"min_households": 200, "max_households": 400}}})
    {'村': {'min_households': 200, 'max_households': 400}}
    """
    if rules is None:
        return {}
    source = "community rules"
    if isinstance(rules, Mapping):
        data = dict(rules)
    else:
        path = Path(rules)
        source = f"community rules file '{path}'"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{source} does not exist: check the path.") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{source} is not valid TOML ({exc}); write one table per type, e.g. "
                '[types."村"] with min_households = 200 and max_households = 400.'
            ) from None
    unknown = set(data) - {"types"}
    if unknown:
        raise InputError(
            f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; the file holds "
            'one [types."<type>"] table per community type.'
        )
    out: dict[str, dict[str, int]] = {}
    for kind, table in dict(data.get("types", {})).items():
        if not isinstance(table, Mapping):
            raise InputError(f'{source}: [types."{kind}"] must be a table of bounds.')
        bad = set(table) - set(BOUNDS_COLUMNS)
        if bad:
            raise InputError(
                f'{source}: [types."{kind}"] has unknown key(s) {", ".join(sorted(bad))}; '
                "allowed: min_households, max_households."
            )
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(
                    f'{source}: [types."{kind}"] {key} = {value!r} must be a whole number '
                    ">= 1."
                )
        out[str(kind).strip()] = {k: int(v) for k, v in table.items()}
    return out


def _whole(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers of a bounds column (NaN where empty) and the mask of unusable cells."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    given = values.notna() & (values.astype(str).str.strip() != "")
    bad = given & ~(numbers.apply(lambda v: math.isfinite(v) and v >= 1 and v == int(v)))
    return numbers.where(given & ~bad), bad


def bounds_table(
    boundaries: gpd.GeoDataFrame,
    *,
    min_households: int = 400,
    max_households: int = 800,
    community_rules: str | os.PathLike | Mapping | None = None,
) -> pd.DataFrame:
    """The household bounds of every community (see the module doc for the precedence).

    Parameters
    ----------
    boundaries
        Communities with ``community_id`` (and ``row``, for messages); optional
        :data:`BOUNDS_COLUMNS` and a type column (:data:`TYPE_COLUMNS`).
    min_households, max_households
        The run's bounds, for communities without their own.
    community_rules
        Bounds by community type (:func:`load_community_rules`), or None.

    Returns
    -------
    pandas.DataFrame
        One row per community, in order: ``community_id``, ``min_households``,
        ``max_households`` and ``source`` (``"columns"``, ``"type:<type>"`` or ``"run"``).

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
    >>> bounds_table(c, community_rules={"types": {"村": {
    ...     "min_households": 200, "max_households": 400}}}).to_numpy().tolist()
    [['A', 200, 400, 'type:村'], ['B', 400, 800, 'run'], ['C', 200, 300, 'columns']]
    """
    source_name = boundaries.attrs.get("source", "`communities`")
    ids = boundaries["community_id"].astype(str).to_numpy()
    rows = boundaries["row"] if "row" in boundaries else pd.Series(range(1, len(ids) + 1))
    by_type = load_community_rules(community_rules)
    type_col = next((c for c in TYPE_COLUMNS if c in boundaries.columns), None)
    if by_type and type_col is None:
        raise InputError(
            f"a community rules file was given but {source_name} has no type column "
            f"({', '.join(TYPE_COLUMNS)}): add one naming each community's type (e.g. 村, "
            "社区), or drop --community-rules."
        )
    lo = pd.Series(float("nan"), index=boundaries.index)
    hi = pd.Series(float("nan"), index=boundaries.index)
    how = pd.Series("run", index=boundaries.index, dtype=object)
    if type_col is not None and by_type:
        kinds = boundaries[type_col].astype("string").str.strip()
        for kind, table in by_type.items():
            mine = (kinds == kind).fillna(False).to_numpy()
            if "min_households" in table:
                lo[mine] = table["min_households"]
            if "max_households" in table:
                hi[mine] = table["max_households"]
            how[mine] = f"type:{kind}"
    for col, target in (("min_households", lo), ("max_households", hi)):
        if col not in boundaries.columns:
            continue
        numbers, bad = _whole(boundaries[col])
        if bad.any():
            raise InputError(
                f"{source_name}: column `{col}` must hold whole numbers >= 1 (or stay empty "
                f"for the run's bound); rows {format_ids(rows[bad.to_numpy()])} hold "
                f"{format_ids(boundaries.loc[bad, col])}. Correct or empty those cells."
            )
        given = numbers.notna()
        target[given] = numbers[given]
        how[given] = "columns"
    lo = lo.fillna(min_households).astype(int)
    hi = hi.fillna(max_households).astype(int)
    wrong = lo > hi
    if wrong.any():
        raise InputError(
            f"{source_name}: communities {format_ids(ids[wrong.to_numpy()])} (rows "
            f"{format_ids(rows[wrong.to_numpy()])}) would have a minimum above their maximum "
            f"({format_ids([f'{a}>{b}' for a, b in zip(lo[wrong], hi[wrong], strict=True)])}); "
            "set both bounds of those communities, or fix their type."
        )
    return pd.DataFrame(
        {
            "community_id": ids,
            "min_households": lo.to_numpy(),
            "max_households": hi.to_numpy(),
            "source": how.to_numpy(dtype=object),
        }
    )
