"""Stable hierarchical grid codes: community code + 3-digit grid sequence."""

from __future__ import annotations

import re

from gridkit.errors import InputError

__all__ = ["grid_code", "grid_name"]

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
