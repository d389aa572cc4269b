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

from gridkit.errors import InputError

__all__ = [
    "DEDICATED_BLOCK",
    "dedicated_grid_code",
    "division_codes",
    "grid_code",
    "grid_name",
    "is_statistical_code",
]

#: Grid sequences above this number are dedicated grids (901-999).
DEDICATED_BLOCK = 900

_STATISTICAL_CODE = re.compile(r"^\d{12}$")


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
