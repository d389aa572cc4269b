"""Small helpers: version report, progress bars."""

from __future__ import annotations

#: The installed gridkit's version (also ``gridkit.__version__``).
__version__ = "0.1.0"

import importlib.metadata
import importlib.util
import platform
import sys

__all__ = ["__version__", "progress_class", "show_versions"]

_PACKAGES = (
    "gridkit",
    "geopandas",
    "shapely",
    "pyogrio",
    "pyproj",
    "pandas",
    "numpy",
    "scipy",
    "ortools",
    "folium",
    "tqdm",
)


def show_versions(file=None) -> None:
    """Print Python, platform and dependency versions (paste it into bug reports)."""
    out = file or sys.stdout
    print(f"python   : {sys.version.split()[0]} ({platform.platform()})", file=out)
    for name in _PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{name:<9}: {version}", file=out)


def progress_class():
    """The tqdm class for progress bars: a notebook widget only where it can be drawn.

    ``tqdm.auto`` picks the Jupyter widget in a notebook, and warns (``TqdmWarning:
    IProgress not found``) on every bar when ipywidgets is not installed.  Without
    ipywidgets the plain text bar is used instead, which notebooks show well.

    Returns
    -------
    type
        ``tqdm.auto.tqdm`` when ipywidgets is installed, else ``tqdm.std.tqdm``.
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm
