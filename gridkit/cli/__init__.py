"""The ``gridkit`` command line (``gridkit.cli:main``).

:mod:`gridkit.cli.commands` builds the parser and runs ``partition`` and ``map``;
one module per further command family registers its sub-commands
(:mod:`~gridkit.cli.exchange`, :mod:`~gridkit.cli.assign`,
:mod:`~gridkit.cli.regenerate`).  What several commands share lives in
:mod:`~gridkit.cli.options` (option groups) and :mod:`~gridkit.cli.files` (reading the
inputs, checking and writing the output folder).
"""

from __future__ import annotations

from gridkit.cli.commands import main

__all__ = ["main"]
