"""The units the staffing model assigns people to: grids, communities and buildings, in metres.

:class:`ModelUnits` is one table of units (all grids, all communities or all buildings of
the plan); a role that applies to some of them only (weak grids, grid types, buildings
of at least N households) works on a :meth:`ModelUnits.subset`, which remembers the
indices of its units in the full table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np

from gridkit.units import dissolve_cells

__all__ = ["ModelUnits", "building_table", "community_table", "grid_table"]


@dataclass
class ModelUnits:
    """Grids, communities or buildings as the model's units (metric CRS).

    Attributes
    ----------
    scope
        ``"grid"``, ``"community"`` or ``"building"``: what the units are.
    codes
        Grid codes, community ids or building ids.
    community
        Community index of each unit.
    households
        Households of each unit.
    geoms
        Metric geometries (polygons; points for buildings).
    grid
        Grid index of each unit (itself for grids, the grid it lies in for buildings,
        -1 for communities).
    index
        Index of each unit in the full table of its kind.
    """

    scope: str
    codes: np.ndarray
    community: np.ndarray
    households: np.ndarray
    geoms: np.ndarray
    grid: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def subset(self, which: np.ndarray) -> ModelUnits:
        """The units at positions ``which`` (sorted), keeping their full-table indices."""
        return ModelUnits(
            self.scope, self.codes[which], self.community[which], self.households[which],
            self.geoms[which], self.grid[which], self.index[which],
        )


def grid_table(layer: gpd.GeoDataFrame, metric: np.ndarray, comm_of_grid: np.ndarray
               ) -> ModelUnits:
    """Every grid of the layer."""
    n = len(layer)
    return ModelUnits(
        "grid", layer["grid_code"].to_numpy(dtype=object), comm_of_grid,
        layer["households"].to_numpy(dtype=np.int64), metric,
        np.arange(n), np.arange(n),
    )


def community_table(layer: gpd.GeoDataFrame, metric: np.ndarray
                    ) -> tuple[ModelUnits, np.ndarray]:
    """Communities as units (their grids dissolved), and the community index of each grid."""
    ids, geoms = dissolve_cells(metric, layer["community_id"].to_numpy(dtype=str))
    comm_of_grid = np.searchsorted(ids, layer["community_id"].to_numpy(dtype=str))
    hh = np.bincount(comm_of_grid, weights=layer["households"], minlength=len(ids))
    n = len(ids)
    return (
        ModelUnits("community", ids.astype(object), np.arange(n), hh.astype(np.int64), geoms,
                   np.full(n, -1, dtype=np.int64), np.arange(n)),
        comm_of_grid,
    )


def building_table(buildings: gpd.GeoDataFrame, grids: ModelUnits, metric_crs: Any
                   ) -> ModelUnits:
    """Buildings (:func:`~gridkit.staffing.buildings.read_staffing_buildings`) as units."""
    index = {str(c): i for i, c in enumerate(grids.codes)}
    grid = np.array([index[str(c)] for c in buildings["grid_code"]], dtype=np.int64)
    n = len(buildings)
    return ModelUnits(
        "building", buildings["building_id"].to_numpy(dtype=object), grids.community[grid],
        buildings["households"].to_numpy(dtype=np.int64),
        buildings.geometry.to_crs(metric_crs).to_numpy(), grid, np.arange(n),
    )
