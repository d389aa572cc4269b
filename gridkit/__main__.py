"""``python -m gridkit`` runs the command line."""

import sys

from gridkit.cli import main

sys.exit(main())
