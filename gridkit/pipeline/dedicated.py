"""Dedicated grids in a run: parcels carved out, their household rows, their grid rows.

Shared by the in-memory run (:func:`gridkit.pipeline.make_grids`, ``regenerate``) and the
file-to-file run (:func:`gridkit.pipeline.partition_files`), so both make the same
dedicated grids: the parcels are carved out of the communities
(:func:`gridkit.units.carve_parcels`) before anything is partitioned, the household rows
inside a parcel are counted in its grid (:func:`split_rows`, :func:`tally_rows`) and left
out of the units, and each piece becomes one grid of status ``dedicated``
(:func:`dedicated_grid_rows`).
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import DEDICATED
from gridkit.pipeline.grids import GridRow
from gridkit.units import (
    Dedicated,
    PieceTally,
    Units,
    carve_parcels,
    full_membership,
    locate_rows,
    row_points,
)

__all__ = [
    "carving_of",
    "dedicated_grid_rows",
    "residential_outline",
    "row_codes",
    "split_rows",
    "tally_rows",
    "with_dedicated",
]


def carving_of(
    boundaries: gpd.GeoDataFrame, dedicated: gpd.GeoDataFrame | Dedicated | None, crs
) -> Dedicated | None:
    """The carving of ``dedicated`` parcels in the run's metric ``crs`` (None stays None;
    a carving is kept as it is).

    ``regenerate`` carves with the previous codes and hands the carving over; the other
    runs hand over the parcels as :func:`gridkit.io.read_dedicated` reads them.
    """
    if dedicated is None or isinstance(dedicated, Dedicated):
        return dedicated
    return carve_parcels(boundaries, dedicated, crs=crs)


def split_rows(
    households: gpd.GeoDataFrame, carving: Dedicated, crs
) -> tuple[np.ndarray, np.ndarray]:
    """The piece of each household row (-1: none) and the positions of the other rows."""
    points = row_points(households.to_crs(crs).geometry.to_numpy())
    _, piece = locate_rows(
        points,
        carving.residential.to_crs(crs).geometry.to_numpy(),
        carving.pieces.to_crs(crs).geometry.to_numpy(),
    )
    return piece, np.flatnonzero(piece < 0)


def tally_rows(households: gpd.GeoDataFrame, piece: np.ndarray, n: int, crs) -> PieceTally:
    """Count the households, buildings and compounds of the rows in each of ``n`` pieces."""
    tally = PieceTally(n)
    tally.add(
        piece,
        households["households"].to_numpy(dtype=np.int64),
        households["building_id"].to_numpy(dtype=object) if "building_id" in households else None,
        row_points(households.to_crs(crs).geometry.to_numpy()),
        households["compound"].to_numpy(dtype=object) if "compound" in households else None,
    )
    return tally


def with_dedicated(
    units: Units,
    carving: Dedicated,
    boundaries: gpd.GeoDataFrame,
    households: gpd.GeoDataFrame,
    piece: np.ndarray,
    kept: np.ndarray,
) -> Units:
    """The units of the rows outside the parcels, with the rows inside them put back.

    ``membership`` covers every row again (a row in a parcel has no unit), the
    communities keep their whole outlines, the carving's notes join the units' notes
    and ``dedicated`` holds the carving with each row's piece and the pieces' tally.
    """
    membership = full_membership(
        units.membership, kept, households.index, piece,
        carving.pieces["community_id"].to_numpy(dtype=object),
    )  # fmt: skip
    communities = units.communities.copy()
    outlines = boundaries.to_crs(units.crs).geometry.to_numpy()
    communities[communities.geometry.name] = gpd.GeoSeries(outlines, crs=units.crs)
    notes = {k: list(v) for k, v in units.notes.items()}
    for cid, extra in carving.notes.items():
        notes.setdefault(cid, []).extend(extra)
    tally = tally_rows(households, piece, len(carving.pieces), units.crs)
    carving = dataclasses.replace(carving, row_piece=piece, tally=tally.frame())
    return dataclasses.replace(
        units, membership=membership, communities=communities, notes=notes, dedicated=carving
    )


def dedicated_grid_rows(carving: Dedicated, tally: pd.DataFrame, crs) -> list[GridRow]:
    """One grid row per piece (status ``dedicated``), geometry in ``crs``."""
    geoms = carving.pieces.to_crs(crs).geometry.to_numpy()
    return [
        (str(code), str(cid), int(hh), int(nb), geom, DEDICATED)
        for code, cid, hh, nb, geom in zip(
            carving.pieces["grid_code"], carving.pieces["community_id"], tally["households"],
            tally["buildings"], geoms, strict=True,
        )
    ]  # fmt: skip


def residential_outline(carving: Dedicated | None, community_id: str, crs, outline):
    """A community's outline less its parcels (``outline`` itself without a carving)."""
    if carving is None:
        return outline
    res = carving.residential
    hit = np.flatnonzero(res["community_id"].astype(str).to_numpy() == str(community_id))
    if not len(hit):
        return outline
    return res.iloc[hit[:1]].to_crs(crs).geometry.iloc[0]


def row_codes(carving: Dedicated, codes: np.ndarray) -> np.ndarray:
    """``codes`` (per household row) with each row in a piece given its grid's code."""
    out = np.asarray(codes, dtype=object).copy()
    piece = carving.row_piece
    if piece is None:
        return out
    inside = piece >= 0
    out[inside] = carving.pieces["grid_code"].to_numpy(dtype=object)[piece[inside]]
    return out
