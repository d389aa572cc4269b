"""Households located in grids: household rows grouped into buildings, points placed in polygons.

Plumbing of :func:`gridkit.audit.audit_grids` (see its module notes, "Locating households").
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["Buildings", "group_buildings", "locate_in"]

_SNAP = 0.1  # metres: building points closer than this on both axes are one building


@dataclass
class Buildings:
    """Buildings of a household table: points, households and rows of each."""

    points: np.ndarray  # shapely Points, metric CRS
    households: np.ndarray  # int64 per building
    rows: np.ndarray  # household rows per building
    of_row: np.ndarray  # building index of each household row


def group_buildings(hh: gpd.GeoDataFrame) -> Buildings:
    """Group household rows (metric CRS) into buildings located at their mean point."""
    geoms = hh.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    xy = shapely.get_coordinates(points)
    n = len(hh)
    building = hh["building_id"].to_numpy(dtype=object) if n else np.array([], dtype=object)
    has_building = pd.notna(building)
    footprint = shapely.get_type_id(geoms) != 0
    wkb = (
        shapely.to_wkb(shapely.normalize(geoms), hex=True)
        if footprint.any()
        else np.full(n, "", dtype=object)
    )
    snapped = np.round(xy / _SNAP).astype(np.int64) if n else np.zeros((0, 2), np.int64)
    key = [
        f"b:{b}" if has else (f"f:{f}" if fp else f"p:{sx}_{sy}")
        for b, has, fp, f, sx, sy in zip(
            building, has_building, footprint, wkb, snapped[:, 0], snapped[:, 1], strict=True
        )
    ]
    frame = pd.DataFrame(
        {
            "key": key,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "hh": hh["households"].to_numpy(dtype=np.int64),
        }
    )
    first = frame.groupby("key", sort=True).agg(
        x=("x", "mean"), y=("y", "mean"), hh=("hh", "sum"), n=("hh", "size")
    )
    first["rx"] = np.round(first["x"].to_numpy() / _SNAP).astype(np.int64)
    first["ry"] = np.round(first["y"].to_numpy() / _SNAP).astype(np.int64)
    # Buildings at the same point (to 0.1 m) are one building, as in gridkit.units.
    merged = first.groupby(["rx", "ry"], sort=True).agg(hh=("hh", "sum"), n=("n", "sum"))
    merged["b"] = np.arange(len(merged), dtype=np.int64)
    first = first.join(merged["b"], on=["rx", "ry"])
    of_row = first.loc[frame["key"], "b"].to_numpy(dtype=np.int64)
    rx = merged.index.get_level_values("rx").to_numpy()
    ry = merged.index.get_level_values("ry").to_numpy()
    return Buildings(
        points=shapely.points(rx * _SNAP, ry * _SNAP),
        households=merged["hh"].to_numpy(dtype=np.int64),
        rows=merged["n"].to_numpy(dtype=np.int64),
        of_row=of_row,
    )


def locate_in(points: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (point, polygon) placing each point; several pairs when inside several polygons.

    A point strictly inside polygons is placed in each of them; a point only on
    boundaries goes to the first such polygon (lowest index); others get none.
    """
    if len(points) == 0 or len(polygons) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    tree = shapely.STRtree(polygons)
    pt, poly = tree.query(points, predicate="intersects")
    inside = shapely.contains_properly(polygons[poly], points[pt])
    has_inside = np.zeros(len(points), dtype=bool)
    has_inside[pt[inside]] = True
    edge_pt, edge_poly = pt[~inside & ~has_inside[pt]], poly[~inside & ~has_inside[pt]]
    frame = pd.DataFrame({"pt": edge_pt, "poly": edge_poly}).sort_values(["pt", "poly"])
    frame = frame.drop_duplicates("pt")
    out_pt = np.concatenate([pt[inside], frame["pt"].to_numpy(dtype=np.int64)])
    out_poly = np.concatenate([poly[inside], frame["poly"].to_numpy(dtype=np.int64)])
    order = np.lexsort((out_poly, out_pt))
    return out_pt[order].astype(np.int64), out_poly[order].astype(np.int64)
