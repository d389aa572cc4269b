"""Small helpers: version report."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

__all__ = ["show_versions"]

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
