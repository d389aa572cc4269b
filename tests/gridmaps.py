"""Synthetic grid maps for the audit and exchange tests, damaged on demand.

Two communities in Wuhan (origin 114.3 E, 30.6 N), drawn in UTM 50N metres
and returned in EPSG:4326, each tiled by two grids of four buildings of 150
households (600 per grid)::

    y=500 +----------+----------+----------+----------+
          |  ...001  |  ...002  |  ...001  |  ...002  |   grid codes: community id
          |  b    b  |  b    b  |  b    b  |  b    b  |   + 001 / 002
          |  b    b  |  b    b  |  b    b  |  b    b  |   b = 150 households at
    y=0   +----------+----------+----------+----------+       (125|375, 125|375)
          x=0       500       1000       1500       2000
          |<-- A 420102001001 ->|<-- B 420102001002 ->|

Every test damages a copy: pass other grid polygons (metres, relative to the
origin) or other buildings to :func:`make_map`.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import box

from gridkit.export.files import to_geojson

UTM = "EPSG:32650"
X0, Y0 = pyproj.Transformer.from_crs(4326, UTM, always_xy=True).transform(114.3, 30.6)

COMMUNITIES = {
    "420102001001": ("江汉社区", box(0, 0, 1000, 500)),
    "420102001002": ("汉兴社区", box(1000, 0, 2000, 500)),
}
STREET = "民族街道"
A1, A2, B1, B2 = "420102001001001", "420102001001002", "420102001002001", "420102001002002"


def grid_boxes() -> dict[str, shapely.Geometry]:
    """The correct grids, by code (metres from the origin)."""
    return {
        A1: box(0, 0, 500, 500),
        A2: box(500, 0, 1000, 500),
        B1: box(1000, 0, 1500, 500),
        B2: box(1500, 0, 2000, 500),
    }


def building_rows() -> list[tuple[str, float, float, int]]:
    """``(building_id, x, y, households)`` of the correct map: 16 buildings of 150."""
    rows = []
    k = 0
    for gx in (0, 500, 1000, 1500):
        for dx, dy in ((125, 125), (375, 125), (125, 375), (375, 375)):
            k += 1
            rows.append((f"B{k:03d}", gx + dx, dy, 150))
    return rows


def _shift(geoms: list[shapely.Geometry]) -> np.ndarray:
    return shapely.transform(np.asarray(geoms, dtype=object), lambda c: c + np.array([X0, Y0]))


def make_map(
    *,
    grids: dict[str, shapely.Geometry] | None = None,
    buildings: list[tuple[str, float, float, int]] | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(grids, buildings, communities)`` in EPSG:4326, with the grids.geojson columns.

    ``households`` / ``buildings`` of each grid are those of the buildings inside
    it (as a producer would declare them); ``community_id`` is the code's prefix.
    """
    grids = grid_boxes() if grids is None else grids
    buildings = building_rows() if buildings is None else buildings
    codes = list(grids)
    geoms = [grids[c] for c in codes]
    pts = shapely.points([(x, y) for _, x, y, _ in buildings])
    hh = np.array([h for *_, h in buildings], dtype=np.int64)
    inside = np.array([[g.contains(p) for p in pts] for g in geoms], dtype=bool).reshape(
        len(geoms), len(pts)
    )
    cids = [c[:12] for c in codes]
    names = [COMMUNITIES[c][0] if c in COMMUNITIES else c for c in cids]
    area = shapely.area(np.asarray(geoms, dtype=object))
    perimeter = shapely.length(np.asarray(geoms, dtype=object))
    grid_frame = gpd.GeoDataFrame(
        {
            "grid_code": codes,
            "grid_name": [f"{n}第{int(c[-3:])}网格" for n, c in zip(names, codes, strict=True)],
            "community_id": cids,
            "community_name": names,
            "street": [STREET] * len(codes),
            "households": (inside * hh).sum(axis=1).astype(np.int64),
            "buildings": inside.sum(axis=1).astype(np.int64),
            "area_m2": np.round(area, 1),
            "compactness": np.round(4 * np.pi * area / perimeter**2, 4),
            "status": ["ok"] * len(codes),
        },
        geometry=_shift(geoms),
        crs=UTM,
    ).to_crs(4326)
    owner = [
        next((codes[k] for k in range(len(codes)) if inside[k, j]), None) for j in range(len(pts))
    ]
    building_frame = gpd.GeoDataFrame(
        {
            "building_id": [b for b, *_ in buildings],
            "households": hh,
            "community_id": [o[:12] if o else None for o in owner],
            "grid_code": owner,
        },
        geometry=_shift(list(pts)),
        crs=UTM,
    ).to_crs(4326)
    comm_frame = gpd.GeoDataFrame(
        {
            "community_id": list(COMMUNITIES),
            "community_name": [v[0] for v in COMMUNITIES.values()],
            "street": [STREET] * len(COMMUNITIES),
        },
        geometry=_shift([v[1] for v in COMMUNITIES.values()]),
        crs=UTM,
    ).to_crs(4326)
    return grid_frame, building_frame, comm_frame


def workers_frame() -> gpd.GeoDataFrame:
    """Two grid workers' homes (a ``workers`` layer), EPSG:4326."""
    return gpd.GeoDataFrame(
        {
            "worker_id": ["W001", "W002"],
            "name": ["张伟", "李娜"],
            "role": ["专职网格员", "网格长"],
            "grid_code": [A1, B2],
        },
        geometry=_shift([shapely.Point(250, 250), shapely.Point(1750, 250)]),
        crs=UTM,
    ).to_crs(4326)


def write_output_dir(
    folder: Path,
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame | None = None,
    workers: gpd.GeoDataFrame | None = None,
) -> Path:
    """Write a `gridkit partition`-like output folder (grids, buildings, workers layers)."""
    folder.mkdir(parents=True, exist_ok=True)
    to_geojson(grids, folder / "grids.geojson")
    if buildings is not None:
        to_geojson(buildings, folder / "buildings.geojson")
    if workers is not None:
        to_geojson(workers, folder / "workers.geojson")
    return folder


def records(frame: pd.DataFrame) -> list[dict]:
    """Properties as JSON would carry them (NaN -> None, numpy -> Python)."""
    return json.loads(frame.drop(columns="geometry", errors="ignore").to_json(orient="records"))


def assert_same_features(read: gpd.GeoDataFrame, original: gpd.GeoDataFrame, *, tol: float = 1e-7):
    """Feature by feature: same properties (values and order) and geometries within ``tol``."""
    assert len(read) == len(original)
    cols = [c for c in original.columns if c != "geometry"]
    assert records(read[cols]) == records(original[cols])
    assert shapely.equals_exact(  # normalised: Shapefiles store rings clockwise
        shapely.normalize(read.geometry.to_numpy()),
        shapely.normalize(original.geometry.to_numpy()),
        tolerance=tol,
    ).all()


def max_shift_m(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> float:
    """Largest Hausdorff distance in metres between aligned features of two lon/lat layers."""
    ga = a.geometry.set_crs(4326, allow_override=True).to_crs("EPSG:32650").to_numpy()
    gb = b.geometry.set_crs(4326, allow_override=True).to_crs("EPSG:32650").to_numpy()
    return float(np.max(shapely.hausdorff_distance(ga, gb)))


def sample_as_grids():
    """The sample communities drawn as if each were one grid; buildings tagged with their grid.

    Used by the map tests: one "grid" per community with plausible grid columns and a
    few non-``ok`` statuses.  Returns (grids, communities, buildings).
    """
    from gridkit.datasets.synthetic import make_sample

    communities, buildings = make_sample(seed=0)
    households = buildings.groupby("community_id")["households"].sum()
    grids = communities.copy()
    grids["grid_code"] = grids["community_id"] + "01"
    grids["grid_name"] = grids["community_name"].str.replace("社区", "") + "网格"
    grids["households"] = grids["community_id"].map(households).fillna(0).astype("int64")
    grids["buildings"] = grids["community_id"].map(buildings.groupby("community_id").size())
    grids["area_m2"] = grids.to_crs(32650).area
    grids["compactness"] = 0.55
    grids["status"] = "ok"
    grids.loc[grids["households"] < 400, "status"] = "below_min"
    grids.loc[grids["households"] > 5000, "status"] = "above_max"
    grids.loc[5, "status"] = "oversize_building"
    grids["grid_worker"] = [f"网格员{i:02d}" for i in range(1, len(grids) + 1)]
    buildings = buildings.assign(grid_code=buildings["community_id"] + "01")
    return grids, communities, buildings
