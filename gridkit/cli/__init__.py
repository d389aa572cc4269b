"""The ``gridkit`` command line (``gridkit.cli:main``).

:mod:`gridkit.cli.commands` builds the parser and runs ``partition`` and ``map``;
one module per further command family registers its sub-commands.
"""

from __future__ import annotations

from gridkit.cli.commands import main

__all__ = ["main"]
