"""Maps: interactive folium maps and static PNG overviews.

This folder's public door: import from ``gridkit.maps``."""

from __future__ import annotations

from gridkit.maps.interactive import add_changes_layer, explore, save_map
from gridkit.maps.offline import STATIC_DIR
from gridkit.maps.overview import overview_png, size_histogram_png
from gridkit.maps.style import html_text, robust_range

__all__ = [
    "STATIC_DIR",
    "add_changes_layer",
    "explore",
    "html_text",
    "overview_png",
    "robust_range",
    "save_map",
    "size_histogram_png",
]
