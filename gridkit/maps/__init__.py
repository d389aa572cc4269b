"""Maps: interactive folium maps and static PNG overviews.

This folder's public door: import from ``gridkit.maps``."""

from __future__ import annotations

from gridkit.maps.interactive import (
    STATIC_DIR,
    add_changes_layer,
    explore,
    html_text,
    overview_png,
    robust_range,
    save_map,
    size_histogram_png,
)

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
