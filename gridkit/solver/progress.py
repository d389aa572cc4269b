"""Progress of long searches: logged, and printed on standard error when asked.

:func:`gridkit.partition.partition_community` names the community it solves
(:data:`current_community`); a search with a budget of at least
:data:`PROGRESS_MIN_BUDGET` seconds says how it is going through :func:`progress`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys

__all__ = [
    "PROGRESS_ENV",
    "PROGRESS_MIN_BUDGET",
    "current_community",
    "progress",
]

#: The partition stage's logger (not this module's name): stable for users who configure it.
log = logging.getLogger("gridkit.partition")

#: Set to ``1`` (``gridkit partition`` does, unless ``--quiet``) to print the progress of
#: long searches on standard error, from whichever process runs them.
PROGRESS_ENV = "GRIDKIT_PROGRESS"
#: Searches with a budget of at least this many seconds report their progress.
PROGRESS_MIN_BUDGET = 3.0
#: The community being solved, named in every progress line (set by
#: :func:`gridkit.partition.partition_community`).
current_community: contextvars.ContextVar[str] = contextvars.ContextVar("community", default="")


def progress(message: str) -> None:
    """Say how a long search is going: logged, and printed when :data:`PROGRESS_ENV` is 1."""
    text = f"community {current_community.get() or '?'}: {message}"
    log.info(text)
    if os.environ.get(PROGRESS_ENV) == "1":
        print(text, file=sys.stderr, flush=True)
