"""Exceptions and warnings raised by gridkit.

Every gridkit error subclasses :class:`GridkitError` and a matching builtin, so
``except ValueError`` in user code keeps working.  Messages answer four
questions: what is wrong, where (file, row / feature ids), why (the numbers)
and what to do next.
"""

from __future__ import annotations

__all__ = [
    "GridkitError",
    "GridkitWarning",
    "InfeasibleError",
    "InputError",
    "SolverError",
    "format_ids",
]


class GridkitError(Exception):
    """Base class of every error gridkit raises on purpose."""


class InputError(GridkitError, ValueError):
    """Input data or arguments are wrong; the message names the file, rows and the fix."""


class InfeasibleError(GridkitError, ValueError):
    """The household bounds cannot be met; the message explains why with numbers."""


class SolverError(GridkitError, RuntimeError):
    """OR-Tools returned no usable answer; the message names the status and the next step."""


class GridkitWarning(UserWarning):
    """Something was repaired or set aside; the message lists the affected ids."""


def format_ids(ids, *, limit: int = 10) -> str:
    """Format a collection of ids for a message, truncated after ``limit`` items.

    Examples
    --------
    >>> format_ids([1, 2, 3])
    '1, 2, 3'
    >>> format_ids(range(25), limit=3)
    '0, 1, 2 … and 22 more'
    """
    ids = list(ids)
    shown = ", ".join(str(i) for i in ids[:limit])
    if len(ids) > limit:
        shown += f" … and {len(ids) - limit} more"
    return shown
