"""Stable hierarchical grid codes: community code + 3-digit grid sequence.

A community with a 12-digit statistical division code (GB/T 2260 county, 3 digits of
street/township, 3 of community) gives its grids 15-digit codes; the county (district)
and street codes are the first 6 and 9 digits (:func:`division_codes`).

Within a community, sequences 001-899 number its residential grids (综合网格) and
901-999 its dedicated grids (专属网格: a school, a hospital, a park, ...), so a dedicated
grid is recognisable by its code and never takes the number of a residential one
(:func:`dedicated_grid_code`).
"""

from __future__ import annotations

import re

import pandas as pd

from gridkit.errors import InputError

__all__ = [
    "DEDICATED_BLOCK",
    "DISTRICT_NAME_COLUMNS",
    "community_divisions",
    "dedicated_grid_code",
    "division_codes",
    "grid_code",
    "grid_name",
    "is_statistical_code",
    "residential_grid_code",
]

#: Grid sequences above this number are dedicated grids (901-999).
DEDICATED_BLOCK = 900

_STATISTICAL_CODE = re.compile(r"^\d{12}$")

#: Columns of a communities file naming its district (区/县), first found wins
#: (compared case-insensitively; ``<name>_src`` when the reader renamed a collision).
DISTRICT_NAME_COLUMNS = ("district_name", "district", "区县", "区")


def grid_code(community_id: str, seq: int) -> str:
    """Code of grid ``seq`` (1..999) in a community.

    A 12-digit statistical division code (GB/T 2260 county + street +
    community) gets the 3-digit sequence appended, giving Beijing-style
    15-digit codes; any other community id gets a hyphen and the sequence.

    Examples
    --------
    >>> grid_code("420204001003", 7)
    '420204001003007'
    >>> grid_code("PRSZ05", 12)
    'PRSZ05-012'
    """
    if not 1 <= seq <= 999:
        raise InputError(
            f"community {community_id} would need grid number {seq}; codes hold 3 digits "
            "(1-999). Split the community or raise `min_households`."
        )
    if _STATISTICAL_CODE.match(community_id):
        return f"{community_id}{seq:03d}"
    return f"{community_id}-{seq:03d}"


def grid_name(community_name: str, seq: int, *, lang: str = "zh") -> str:
    """Human name of grid ``seq`` in a community.

    Examples
    --------
    >>> grid_name("团城山社区", 3)
    '团城山社区第3网格'
    >>> grid_name("Pasir Ris West", 3, lang="en")
    'Pasir Ris West grid 3'
    """
    if lang == "en":
        return f"{community_name} grid {seq}"
    return f"{community_name}第{seq}网格"


def residential_grid_code(community_id: str, seq: int) -> str:
    """Code of residential grid ``seq`` (1..899) of a community; 901-999 are dedicated grids.

    Examples
    --------
    >>> residential_grid_code("420204001003", 12)
    '420204001003012'
    """
    if seq >= DEDICATED_BLOCK:
        raise InputError(
            f"community {community_id} would need residential grid number {seq}; codes "
            f"001-{DEDICATED_BLOCK - 1} number residential grids (9xx are dedicated grids). "
            "Split the community or raise `min_households`."
        )
    return grid_code(community_id, seq)


def dedicated_grid_code(community_id: str, k: int) -> str:
    """Code of the ``k``-th dedicated grid (专属网格, 1..99) of a community: sequence 900 + k.

    Examples
    --------
    >>> dedicated_grid_code("420204001003", 1)
    '420204001003901'
    >>> dedicated_grid_code("PRSZ05", 2)
    'PRSZ05-902'
    """
    if not 1 <= k <= 999 - DEDICATED_BLOCK:
        raise InputError(
            f"community {community_id} would need dedicated grid number {k}; a community "
            f"holds at most {999 - DEDICATED_BLOCK} dedicated grids (codes 901-999). Merge "
            "parcels of one institution into one feature."
        )
    return grid_code(community_id, DEDICATED_BLOCK + k)


def is_statistical_code(code: object) -> bool:
    """Whether ``code`` is a 12-digit statistical division code (GB/T 2260 + 6 digits).

    Examples
    --------
    >>> is_statistical_code("420204001003"), is_statistical_code("PRSZ05")
    (True, False)
    """
    return isinstance(code, str) and bool(_STATISTICAL_CODE.match(code))


def division_codes(community_id: object) -> tuple[str | None, str | None]:
    """The district (county-level, 6 digits) and street (9 digits) codes of a community.

    ``(None, None)`` when the id is not a 12-digit statistical code.

    Examples
    --------
    >>> division_codes("420204001003")
    ('420204', '420204001')
    >>> division_codes("PRSZ05")
    (None, None)
    """
    if not is_statistical_code(community_id):
        return None, None
    return community_id[:6], community_id[:9]


def _column(frame: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    """The first column of ``frame`` among ``names`` (case-insensitive, ``_src`` allowed)."""
    by_key = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        by_key.setdefault(key, col)
        if key.endswith("_src"):
            by_key.setdefault(key[: -len("_src")], col)
    return next((by_key[n] for n in names if n in by_key), None)


def _texts(values: pd.Series) -> list[str | None]:
    """Cells as stripped text; missing or blank cells as None (``420204.0`` read as 420204)."""
    out: list[str | None] = []
    for v in values:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            out.append(None)
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v).strip()
        out.append(text or None)
    return out


def community_divisions(communities: pd.DataFrame) -> pd.DataFrame:
    """The street code, district code and district name of each community.

    Codes come from the community id when it is a 12-digit statistical code
    (:func:`division_codes`), else from ``street_code`` / ``district_code`` columns of
    the communities when present (a 9-digit street code also gives its district's 6
    digits), else null.  ``district_name`` comes from a column of
    :data:`DISTRICT_NAME_COLUMNS` when present, else null.

    Parameters
    ----------
    communities
        Rows with ``community_id`` and any other columns of the communities file.

    Returns
    -------
    pandas.DataFrame
        ``street_code``, ``district_code``, ``district_name`` (text or None), aligned
        with ``communities``.

    Examples
    --------
    >>> frame = pd.DataFrame({"community_id": ["420204001003", "PRSZ05"],
    ...                       "street_code": [None, "SG01"], "区": ["下陆区", None]})
    >>> community_divisions(frame).to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
    {'street_code': ['420204001', 'SG01'], 'district_code': ['420204', None],
     'district_name': ['下陆区', None]}
    """
    n = len(communities)
    street_col = _column(communities, ("street_code",))
    district_col = _column(communities, ("district_code",))
    name_col = _column(communities, DISTRICT_NAME_COLUMNS)
    streets = _texts(communities[street_col]) if street_col is not None else [None] * n
    districts = _texts(communities[district_col]) if district_col is not None else [None] * n
    names = _texts(communities[name_col]) if name_col is not None else [None] * n
    street_out: list[str | None] = []
    district_out: list[str | None] = []
    for cid, street, district in zip(communities["community_id"], streets, districts, strict=True):
        d, s = division_codes(str(cid))
        if s is None:
            s = street
            d = district
            if d is None and s is not None and re.fullmatch(r"\d{9}", s):
                d = s[:6]
        street_out.append(s)
        district_out.append(d)
    return pd.DataFrame(
        {"street_code": street_out, "district_code": district_out, "district_name": names},
        index=communities.index,
        dtype=object,
    )
