"""Generate and locate the bundled synthetic sample district.

The sample is an invented district around Huangshi, Hubei (lon 115.05, lat 30.20) with
four streets (街道), 34 communities (社区) that tile the district, and about 1,000
residential buildings (楼栋) grouped in compounds (小区) holding about 65,000 households.
Nothing in it describes real places or people.  It is built in UTM zone 50N (EPSG:32650)
and returned in EPSG:4326, deterministically for a given ``seed``.

Bundled copies of ``make_sample(seed=0)`` live in ``data/boundaries/`` (see
:func:`get_path`); :func:`write_sample` regenerates them byte for byte.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod, Transformer
from shapely import affinity
from shapely.geometry import LineString, MultiPoint, Polygon

from gridkit.errors import InputError

__all__ = ["get_path", "make_households", "make_point_community", "make_sample", "write_sample"]

logger = logging.getLogger(__name__)

#: Folder of the bundled sample files in a repository checkout.
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "boundaries"

_FILES = {
    "communities": "sample_communities.geojson",
    "buildings": "sample_buildings.geojson",
}

_METRIC_CRS = "EPSG:32650"
_CENTER_LONLAT = (115.05, 30.20)
_COUNTY_CODE = "420204"
_N_COMMUNITIES = 34
_TARGET_HOUSEHOLDS = 65_000
_GRID = 0.01  # metres: snap-rounding precision of the community linework
_SEGMENT = 20.0  # metres: vertex spacing of community edges before the warp
_EDGE_MARGIN = 10.0  # metres: buildings keep at least this far from their community edge
_DECIMALS = 7  # decimals of the output lon/lat (about 1 cm)

_STREET_NAMES = ("青龙湖街道", "桂林路街道", "长乐街道", "望江街道")  # NW, NE, SW, SE
_COMMUNITY_STEMS = (
    "桂花湾", "青龙岗", "金湖", "月亮山", "柳林", "湖滨", "铜鼓", "望江楼", "凤凰台", "新港",
    "杨家湾", "桃花源", "翠竹园", "光明", "幸福", "和平", "红旗", "东升", "朝阳", "建新",
    "胜利", "团结", "长乐", "锦华", "春晖", "紫荆", "梅园", "枫叶", "松涛", "石榴红",
    "银杏", "香樟", "荷塘", "芳草", "晴川", "丰收", "矿山", "钢城", "雨润", "百花",
    "嘉禾", "安居", "新华", "育才",
)  # fmt: skip
_COMPOUND_HEADS = (
    "金桂", "锦绣", "阳光", "翠竹", "碧水", "春江", "丽景", "和美", "书香", "滨湖",
    "御景", "紫薇", "华府", "天虹", "名都", "嘉和", "瑞祥", "康乐", "富康", "兴隆",
    "绿洲", "怡景", "融城", "万象", "恒泰", "华新", "钢花", "电厂", "铁路", "矿机",
    "供销", "纺织", "水泥厂", "粮食局", "邮电", "师范", "港务", "龙湾", "秀水", "明珠",
)  # fmt: skip
_COMPOUND_TAILS = (
    "花园", "家园", "新村", "名苑", "华庭", "嘉园", "雅居", "公馆", "新城", "宿舍", "小筑", "佳苑",
)  # fmt: skip

# building kinds: (households range comes from floors x units x households per landing)
_KIND_SPACING = {"low": (20.0, 26.0), "mid": (22.0, 34.0), "high": (30.0, 42.0)}
_KIND_COUNT = {"low": (4, 12), "mid": (6, 28), "high": (4, 14)}

# the deliberately awkward communities (households fixed by hand)
_LOW_HOUSEHOLDS = ((24, 4), (36, 6), (30, 5), (48, 6), (60, 5), (52, 4))  # (households, floors)
_TIGHT_COMPOUNDS = (
    ((120, 24), (110, 22), (100, 25), (100, 20)),  # 430 households
    ((150, 30), (140, 28), (130, 26)),  # 420 households
)
_TOWER = (950, 52)  # one super-tall residential tower: (households, floors)


# --------------------------------------------------------------------------- public API


def make_sample(*, seed: int = 0) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Generate the synthetic sample district: community polygons and building points.

    Parameters
    ----------
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same frames.

    Returns
    -------
    communities, buildings
        Two GeoDataFrames in EPSG:4326 with a RangeIndex, coordinates rounded to 7 decimals.

        ``communities``: ``community_id`` (12-digit statistical code: county 420204 +
        3-digit street + 3-digit community), ``community_name`` (…社区, unique),
        ``street`` (…街道), ``street_code`` (9 digits), ``geometry`` (Polygon).
        Communities tile the district: no gaps, no overlaps, shared edges have identical
        vertices.

        ``buildings``: ``building_id`` ("B00001", …), ``households`` (int),
        ``compound`` (…小区), ``floors`` (int), ``community_id`` (the community the
        building was generated in, the ground truth) and ``geometry`` (Point, at least
        10 m inside its community).

    Notes
    -----
    The district holds four streets split by a river (west → east) and two main roads.
    Each street is cut into communities along a jittered, irregular road network.
    Inside a community, compounds of low-rise (12–36 households), mid-rise (12–90) and
    high-rise (90–200) buildings alternate with empty parcels (schools, parks, markets);
    no building stands in the river or on the main roads.  Two large communities hold
    5,200–7,400 households in roughly 45–125 buildings each ([420204001007] and
    [420204003008] for ``seed=0``); the others mostly 1,000–3,000 households in
    10–60 buildings (both depend on the seed's mix of mid- and high-rise compounds).

    Three communities are deliberately awkward for 400–800-household grids (their ids
    for ``seed=0`` in brackets; for other seeds find them by their households):

    - a small community of 250 households in six low-rise buildings, below any
      400-household grid [420204004002];
    - a community whose households include one 950-household tower, the only building
      outside 12–200 households, which exceeds an 800-household grid by itself
      [420204002008];
    - a tight community of exactly 850 households in two compounds (430 + 420), which
      can only be split into two grids of 400–450 households [420204002002].

    Examples
    --------
    >>> communities, buildings = make_sample(seed=0)
    >>> len(communities), communities["street"].nunique()
    (34, 4)
    >>> int(buildings["households"].sum()) > 60_000
    True
    >>> communities.crs.to_epsg(), buildings.crs.to_epsg()
    (4326, 4326)
    """
    rng = np.random.default_rng(seed)
    to_metric = Transformer.from_crs("EPSG:4326", _METRIC_CRS, always_xy=True)
    cx, cy = to_metric.transform(*_CENTER_LONLAT)

    layout = _make_streets(rng, cx, cy)
    faces, face_street = _make_community_faces(rng, layout["streets"])
    warp = _make_warp(rng)
    faces = shapely.transform(faces, warp)
    blocked = shapely.union_all(
        [
            shapely.transform(shapely.segmentize(layout["river"], _SEGMENT), warp).buffer(45.0),
            shapely.transform(shapely.segmentize(layout["road_a"], _SEGMENT), warp).buffer(18.0),
            shapely.transform(shapely.segmentize(layout["road_b"], _SEGMENT), warp).buffer(18.0),
        ]
    )

    order = _community_order(faces, face_street)
    faces, face_street = faces[order], face_street[order]
    n = len(faces)
    local_code = np.zeros(n, dtype=int)
    for s in range(4):
        idx = np.flatnonzero(face_street == s)
        local_code[idx] = np.arange(1, len(idx) + 1)
    community_id = [
        f"{_COUNTY_CODE}{s + 1:03d}{c:03d}" for s, c in zip(face_street, local_code, strict=True)
    ]
    names = rng.choice(np.array(_COMMUNITY_STEMS), size=n, replace=False)
    communities = gpd.GeoDataFrame(
        {
            "community_id": community_id,
            "community_name": [f"{stem}社区" for stem in names],
            "street": [_STREET_NAMES[s] for s in face_street],
            "street_code": [f"{_COUNTY_CODE}{s + 1:03d}" for s in face_street],
        },
        geometry=faces,
        crs=_METRIC_CRS,
    )

    roles, targets = _community_roles(rng, faces, cx, cy)
    buildings = _make_buildings(rng, faces, blocked, roles, targets, community_id)

    communities = _finish(communities)
    buildings = _finish(buildings)
    logger.info(
        "make_sample(seed=%d): %d communities, %d buildings, %d households",
        seed,
        len(communities),
        len(buildings),
        int(buildings["households"].sum()),
    )
    return communities, buildings


def make_households(buildings: gpd.GeoDataFrame, *, seed: int = 0) -> gpd.GeoDataFrame:
    """Explode buildings into one point per household.

    Parameters
    ----------
    buildings
        Building points with ``building_id`` and ``households`` columns, such as the second
        frame of :func:`make_sample`.  Not modified.
    seed
        Seed of :func:`numpy.random.default_rng` for the jitter.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per household, in the CRS of ``buildings``: ``household_id``
        ("B00001-0001", numbered from 1 within each building), ``building_id``,
        ``households`` (always 1), ``community_id`` and ``compound`` when ``buildings``
        has them, and ``geometry``: the building point moved by at most 3 m in a random
        direction (a geodesic distance on the WGS84 ellipsoid when the CRS is geographic).

    Examples
    --------
    >>> _, buildings = make_sample(seed=0)
    >>> households = make_households(buildings.head(3))
    >>> len(households) == int(buildings["households"].head(3).sum())
    True
    >>> households["household_id"].iloc[0]
    'B00001-0001'
    """
    rng = np.random.default_rng(seed)
    counts = buildings["households"].to_numpy(dtype=np.int64)
    if (counts < 0).any():
        bad = buildings.index[counts < 0].tolist()
        msg = f"`buildings` has negative households at rows {bad[:10]}; fix the counts first."
        raise InputError(msg)
    total = int(counts.sum())
    rows = np.repeat(np.arange(len(buildings)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    seq = np.arange(total) - starts + 1

    x = shapely.get_x(buildings.geometry.to_numpy())[rows]
    y = shapely.get_y(buildings.geometry.to_numpy())[rows]
    radius = 2.95 * np.sqrt(rng.random(total))  # uniform in a disc, < 3 m in any local CRS
    angle = rng.random(total) * 2.0 * np.pi
    if buildings.crs is not None and buildings.crs.is_geographic:
        x, y, _ = Geod(ellps="WGS84").fwd(x, y, np.degrees(angle), radius)
    else:
        x, y = x + radius * np.sin(angle), y + radius * np.cos(angle)

    building_id = buildings["building_id"].astype(str).to_numpy()[rows]
    width = max(4, len(str(int(counts.max())))) if len(counts) else 4
    household_id = pd.Series(building_id) + "-" + pd.Series(seq).astype(str).str.zfill(width)
    data: dict[str, object] = {
        "household_id": household_id.to_numpy(),
        "building_id": building_id,
        "households": np.ones(total, dtype=np.int64),
    }
    for col in ("community_id", "compound"):
        if col in buildings.columns:
            data[col] = buildings[col].to_numpy()[rows]
    return gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(x, y), crs=buildings.crs)


def make_point_community(
    households: int = 10_000, *, seed: int = 0
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Generate one community given as one point per household, with no building ids.

    The most basic input a district has: a household register geocoded to
    points, a few metres apart around their buildings.  The community is an
    urban-village-like mix: low-rise houses of 4-30 households and mid-rise
    blocks of 40-120 on a jittered street lattice about 24 m apart, with a few
    empty parcels, around the sample district's location.

    Parameters
    ----------
    households
        Households (rows) in all; the community's size grows with it (about 25
        households per building, 0.6 buildings per 1,000 m²).
    seed
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    community, households
        EPSG:4326 frames.  ``community``: one row, ``community_id``
        ``420204099001``, ``community_name``, ``street`` and a Polygon.
        ``households``: one row per household, ``household_id`` ("H000001", ...)
        and a Point within 3 m of its (unnamed) building; no ``building_id``.

    Examples
    --------
    >>> community, rows = make_point_community(2_000)
    >>> len(rows), "building_id" in rows
    (2000, False)
    """
    if households < 1:
        raise InputError(f"`households` must be at least 1, got {households}.")
    rng = np.random.default_rng(seed)
    to_metric = Transformer.from_crs("EPSG:4326", _METRIC_CRS, always_xy=True)
    cx, cy = to_metric.transform(*_CENTER_LONLAT)
    n_buildings = max(1, households // 25)
    side = math.sqrt(n_buildings / 0.6e-3)  # metres, for 0.6 buildings per 1,000 m2
    width, height = side * 1.2, side / 1.2
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=float)
    corners += rng.normal(0.0, side * 0.04, corners.shape) - [width / 2 - cx, height / 2 - cy]
    outline = Polygon(corners).buffer(side * 0.05, join_style="mitre")
    spacing = 24.0
    gx, gy = np.meshgrid(
        np.arange(-width / 2, width / 2, spacing), np.arange(-height / 2, height / 2, spacing)
    )
    slots = np.c_[gx.ravel(), gy.ravel()] + [cx, cy] + rng.normal(0.0, 2.5, (gx.size, 2))
    parks = shapely.union_all(
        [shapely.Point(p).buffer(side * 0.06) for p in _random_points(rng, outline, 3)]
    )
    inner = outline.buffer(-8.0).difference(parks)
    slots = slots[shapely.contains_xy(inner, slots[:, 0], slots[:, 1])]
    slots = slots[rng.permutation(len(slots))]
    mid = rng.random(len(slots)) < 0.2
    sizes = np.where(mid, rng.integers(40, 121, len(slots)), rng.integers(4, 31, len(slots)))
    filled = np.cumsum(sizes)
    used = int(np.searchsorted(filled, households)) + 1
    if used > len(slots):
        raise InputError(
            f"`households`={households} does not fit the generated community; use fewer."
        )
    sizes = sizes[:used].copy()
    sizes[-1] -= int(sizes.sum()) - households
    slots = slots[:used]
    rows = np.repeat(np.arange(used), sizes)
    radius = 2.95 * np.sqrt(rng.random(households))
    angle = rng.random(households) * 2.0 * np.pi
    x = slots[rows, 0] + radius * np.sin(angle)
    y = slots[rows, 1] + radius * np.cos(angle)
    order = rng.permutation(households)  # a register is not sorted by building
    community = gpd.GeoDataFrame(
        {
            "community_id": [f"{_COUNTY_CODE}099001"],
            "community_name": ["演示村社区"],
            "street": ["演示街道"],
        },
        geometry=[outline],
        crs=_METRIC_CRS,
    )
    points = gpd.GeoDataFrame(
        {"household_id": [f"H{i + 1:06d}" for i in range(households)]},
        geometry=gpd.points_from_xy(x[order], y[order]),
        crs=_METRIC_CRS,
    )
    return _finish(community), _finish(points)


def get_path(name: str) -> Path:
    """Path of a bundled sample file.

    Parameters
    ----------
    name
        {"communities", "buildings"}

    Returns
    -------
    pathlib.Path
        ``data/boundaries/sample_communities.geojson`` or
        ``data/boundaries/sample_buildings.geojson`` in the repository checkout.

    Raises
    ------
    InputError
        If ``name`` is unknown or the file is missing.

    Examples
    --------
    >>> get_path("communities").name
    'sample_communities.geojson'
    """
    if name not in _FILES:
        msg = (
            f"unknown sample file {name!r}; expected one of {', '.join(map(repr, _FILES))}, "
            "e.g. `get_path('communities')`."
        )
        raise InputError(msg)
    path = DATA_DIR / _FILES[name]
    if not path.is_file():
        msg = (
            f"bundled sample file {path} is missing (the data folder ships with the "
            "repository checkout, not with the installed package). Regenerate it with "
            "`gridkit.datasets.write_sample()`, or use `gridkit.datasets.make_sample()` "
            "directly."
        )
        raise InputError(msg)
    return path


def write_sample(folder: str | Path | None = None, *, seed: int = 0) -> dict[str, Path]:
    """Write the sample district as RFC 7946 GeoJSON files.

    Parameters
    ----------
    folder
        Output folder, created if needed; defaults to the bundled ``data/boundaries``.
    seed
        Passed to :func:`make_sample`.

    Returns
    -------
    dict
        ``{"communities": path, "buildings": path}``.  Files are EPSG:4326 with 7-decimal
        coordinates and counter-clockwise outer rings; writing twice gives identical bytes.
    """
    folder = DATA_DIR if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = dict(zip(_FILES, make_sample(seed=seed), strict=True))
    paths: dict[str, Path] = {}
    for name, frame in frames.items():
        path = folder / _FILES[name]
        path.unlink(missing_ok=True)
        frame.to_file(
            path,
            driver="GeoJSON",
            engine="pyogrio",
            layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": str(_DECIMALS)},
        )
        paths[name] = path
        logger.info("wrote %d %s to %s", len(frame), name, path)
    return paths


# --------------------------------------------------------------------------- geometry helpers


def _finish(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject to EPSG:4326, round to 7 decimals and orient outer rings counter-clockwise."""
    out = gdf.to_crs("EPSG:4326")
    geoms = shapely.transform(out.geometry.to_numpy(), lambda c: np.round(c, _DECIMALS))
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    out = out.set_geometry(gpd.GeoSeries(geoms, crs="EPSG:4326", index=out.index))
    return out.reset_index(drop=True)


def _random_points(rng: np.random.Generator, geom, n: int) -> np.ndarray:
    """Up to ``n`` uniform random points inside ``geom`` (rejection from its bounds)."""
    if geom.is_empty or geom.area <= 0:
        return np.empty((0, 2))
    x0, y0, x1, y1 = geom.bounds
    ratio = geom.area / max((x1 - x0) * (y1 - y0), 1e-9)
    m = int(n / max(ratio, 0.02) * 1.5) + 8
    pts = rng.uniform((x0, y0), (x1, y1), size=(m, 2))
    inside = shapely.contains_xy(geom, pts[:, 0], pts[:, 1])
    return pts[inside][:n]


def _polygonize(lines) -> np.ndarray:
    """Faces of a set of lines, noded by snap-rounding on a 1 cm grid."""
    noded = shapely.union_all(lines, grid_size=_GRID)
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))


def _make_streets(rng: np.random.Generator, cx: float, cy: float) -> dict:
    """District outline split into four streets by a river and two main roads."""
    for _ in range(50):
        theta = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
        a, b = 1850.0, 1300.0
        r = a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
        k = np.arange(2, 6)[:, None]
        wobble = rng.uniform(0.01, 0.05, (4, 1)) * np.cos(
            k * theta + rng.uniform(0, 2 * np.pi, (4, 1))
        )
        r = r * (1.0 + wobble.sum(axis=0) + rng.normal(0.0, 0.008, theta.size))
        outline = Polygon(np.c_[cx + r * np.cos(theta), cy + r * np.sin(theta)])

        xs = np.linspace(cx - 2500.0, cx + 2500.0, 76)
        u = xs - cx
        ys = (
            cy
            + rng.uniform(-250.0, -50.0)
            + rng.uniform(80.0, 180.0)
            * np.sin(2 * np.pi * u / rng.uniform(1800, 3000) + rng.uniform(0, 6.3))
            + rng.uniform(20.0, 50.0)
            * np.sin(2 * np.pi * u / rng.uniform(500, 900) + rng.uniform(0, 6.3))
        )
        river = LineString(np.c_[xs, ys])

        road_a = _road(rng, xs, ys, cx + rng.uniform(-450.0, 50.0), cy + 1900.0)
        road_b = _road(rng, xs, ys, cx + rng.uniform(-50.0, 450.0), cy - 1900.0)
        faces = _polygonize([outline.exterior, river, road_a, road_b])
        if len(faces) != 4 or min(shapely.area(faces)) < 0.12 * outline.area:
            continue
        cent = shapely.centroid(faces)
        fx, fy = shapely.get_x(cent), shapely.get_y(cent)
        north = fy > np.interp(fx, xs, ys)
        if north.sum() != 2:
            continue
        streets = []
        for side in (True, False):
            idx = np.flatnonzero(north == side)
            streets.extend(faces[idx[np.argsort(fx[idx])]])  # west, then east
        return {"streets": streets, "river": river, "road_a": road_a, "road_b": road_b}
    msg = "could not lay out the sample streets; try another seed"  # pragma: no cover
    raise RuntimeError(msg)  # pragma: no cover


def _road(
    rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray, x_target: float, y_end: float
) -> LineString:
    """A gently bent main road from the river vertex nearest ``x_target`` to ``y_end``."""
    i = int(np.argmin(np.abs(xs - x_target)))
    t = np.linspace(0.0, 1.0, 15)
    y = ys[i] + t * (y_end - ys[i])
    x = (
        xs[i]
        + t * rng.uniform(-180, 180)
        + rng.uniform(15, 50) * np.sin(np.pi * t * rng.uniform(1, 3))
    )
    return LineString(np.c_[x, y])


def _seeds(rng: np.random.Generator, poly, n: int) -> np.ndarray:
    """``n`` well-spread points inside ``poly`` (greedy dart throwing)."""
    inner = poly.buffer(-80.0)
    if inner.is_empty or inner.area < 0.2 * poly.area:
        inner = poly
    spacing = 0.85 * math.sqrt(poly.area / n)
    while True:
        cand = _random_points(rng, inner, 60 * n)
        chosen: list[np.ndarray] = []
        for p in cand:
            if not chosen or np.min(np.hypot(*(np.asarray(chosen) - p).T)) >= spacing:
                chosen.append(p)
                if len(chosen) == n:
                    return np.asarray(chosen)
        spacing *= 0.93


def _kinked_edges(rng: np.random.Generator, seeds: np.ndarray, poly) -> np.ndarray:
    """Voronoi edges of ``seeds`` inside ``poly``, each bent like a street with two kinks."""
    edges = shapely.voronoi_polygons(
        MultiPoint(seeds), extend_to=poly.buffer(1000.0), only_edges=True
    )
    clipped = shapely.get_parts(shapely.intersection(shapely.get_parts(edges), poly))
    clipped = clipped[shapely.get_type_id(clipped) == 1]  # LineStrings only
    clipped = clipped[shapely.get_num_coordinates(clipped) == 2]
    ends = shapely.get_coordinates(clipped).reshape(-1, 2, 2)
    p0, p1 = ends[:, 0], ends[:, 1]
    d = p1 - p0
    normal = np.c_[-d[:, 1], d[:, 0]]
    t = np.c_[rng.uniform(0.25, 0.4, len(d)), rng.uniform(0.6, 0.75, len(d))]
    off = rng.uniform(-0.06, 0.06, (len(d), 2)) * (rng.random((len(d), 1)) > 0.25)
    mids = p0[:, None, :] + t[:, :, None] * d[:, None, :] + off[:, :, None] * normal[:, None, :]
    coords = np.concatenate([p0[:, None, :], mids, p1[:, None, :]], axis=1)
    lines = shapely.linestrings(coords)
    return shapely.get_parts(shapely.intersection(lines, poly))


def _make_community_faces(rng: np.random.Generator, streets: list) -> tuple[np.ndarray, np.ndarray]:
    """Cut each street into communities; return (faces, street index of each face)."""
    areas = np.array([s.area for s in streets])
    share = areas / areas.sum() * _N_COMMUNITIES
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share)[: _N_COMMUNITIES - counts.sum()]] += 1

    lines = [s.exterior for s in streets]
    for street, k in zip(streets, counts, strict=True):
        lines.extend(_kinked_edges(rng, _seeds(rng, street, int(k)), street))
    faces = _polygonize(lines)
    street_of = _street_of(faces, streets)

    # merge slivers (crossed kinks, cells cut in two by a street edge) into a neighbour
    faces = list(faces)
    for s, k in enumerate(counts):
        while (street_of == s).sum() > k:
            idx = np.flatnonzero(street_of == s)
            i = idx[np.argmin([faces[j].area for j in idx])]
            others = idx[idx != i]
            shared = shapely.length(
                shapely.intersection(faces[i].boundary, shapely.boundary(np.array(faces)[others]))
            )
            j = others[np.argmax(shared)]
            faces[j] = shapely.union(faces[j], faces[i])
            del faces[i]
            street_of = np.delete(street_of, i)

    # re-node the merged faces and add vertices every 20 m so the warp bends the edges
    noded = shapely.union_all(shapely.boundary(np.array(faces)), grid_size=_GRID)
    faces = shapely.get_parts(
        shapely.polygonize(shapely.get_parts(shapely.segmentize(noded, _SEGMENT)))
    )
    return faces, _street_of(faces, streets)


def _street_of(faces: np.ndarray, streets: list) -> np.ndarray:
    """Index of the street holding each face."""
    rep = shapely.point_on_surface(faces)
    out = np.full(len(faces), -1)
    for s, street in enumerate(streets):
        out[shapely.contains(street, rep)] = s
    return out


def _make_warp(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth, invertible displacement field (|gradient| < 1) that bends straight edges."""
    m = 5
    amp = np.r_[rng.uniform(25.0, 45.0, 1), rng.uniform(2.5, 5.5, m - 1)]
    wavelength = np.r_[rng.uniform(1500.0, 2500.0, 1), rng.uniform(300.0, 700.0, m - 1)]
    direction = rng.uniform(0.0, np.pi, (2, m))
    phase = rng.uniform(0.0, 2 * np.pi, (2, m))
    kx = 2 * np.pi / wavelength * np.cos(direction)
    ky = 2 * np.pi / wavelength * np.sin(direction)

    def warp(coords: np.ndarray) -> np.ndarray:
        x, y = coords[:, :1], coords[:, 1:2]
        dx = (amp * np.sin(kx[0] * x + ky[0] * y + phase[0])).sum(axis=1)
        dy = (amp * np.sin(kx[1] * x + ky[1] * y + phase[1])).sum(axis=1)
        return coords + np.c_[dx, dy]

    return warp


def _community_order(faces: np.ndarray, street_of: np.ndarray) -> np.ndarray:
    """Order communities by street, then north → south in 500 m bands, then west → east."""
    rep = shapely.point_on_surface(faces)
    x, y = shapely.get_x(rep), shapely.get_y(rep)
    band = np.floor((y.max() - y) / 500.0)
    return np.lexsort((x, band, street_of))


def _community_roles(
    rng: np.random.Generator, faces: np.ndarray, cx: float, cy: float
) -> tuple[list[str], np.ndarray]:
    """Pick the large and awkward communities and draw household targets for all."""
    n = len(faces)
    area = shapely.area(faces)
    roles = ["typical"] * n
    by_area = np.argsort(area)
    for i in by_area[-2:]:
        roles[i] = "large"
    roles[by_area[0]] = "low"
    roles[by_area[1]] = "tight"
    rep = shapely.point_on_surface(faces)
    dist = np.hypot(shapely.get_x(rep) - cx, shapely.get_y(rep) - cy)
    roles[next(i for i in np.argsort(dist) if roles[i] == "typical")] = "tower"

    targets = np.zeros(n)
    large = np.array([r == "large" for r in roles])
    targets[large] = rng.uniform(5200.0, 7400.0, large.sum())
    targets[np.array([r == "low" for r in roles])] = sum(h for h, _ in _LOW_HOUSEHOLDS)
    targets[np.array([r == "tight" for r in roles])] = sum(
        h for c in _TIGHT_COMPOUNDS for h, _ in c
    )
    free = np.array([r in ("typical", "tower") for r in roles])
    raw = rng.uniform(1200.0, 2400.0, free.sum())
    budget = _TARGET_HOUSEHOLDS - targets.sum() - _TOWER[0]
    targets[free] = np.round(raw / raw.sum() * budget)
    return roles, targets


# --------------------------------------------------------------------------- buildings


def _building_sizes(rng: np.random.Generator, kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Households and floors of ``n`` buildings of a kind (low-, mid- or high-rise)."""
    if kind == "low":
        floors = rng.integers(3, 7, n)
        hh = np.clip(floors * rng.integers(1, 4, n) * 2, 12, 36)
    elif kind == "mid":
        floors = rng.integers(6, 12, n)
        hh = np.clip(floors * rng.integers(1, 5, n) * 2, 12, 90)
    else:
        per_floor = rng.choice(np.array([4, 6]), n)
        floors = np.maximum(rng.integers(18, 34, n), -(-90 // per_floor))
        hh = np.clip(floors * per_floor, 90, 200)
    return hh.astype(np.int64), floors.astype(np.int64)


def _layout(rng: np.random.Generator, n: int, kind: str) -> tuple[np.ndarray, float]:
    """Local offsets of a compound's building slots, nearest to the centre first."""
    dx = rng.uniform(*_KIND_SPACING[kind])
    dy = dx * rng.uniform(1.05, 1.3)
    cols = max(1, math.ceil(math.sqrt(n * 1.8 * rng.uniform(0.6, 1.6))))
    rows = max(1, math.ceil(n * 1.8 / cols))
    gx, gy = np.meshgrid(np.arange(cols) - (cols - 1) / 2, np.arange(rows) - (rows - 1) / 2)
    stagger = (np.arange(rows)[:, None] % 2) * 0.5 * dx * (rng.random() < 0.3)
    pts = np.c_[(gx * dx + stagger).ravel(), (gy * dy).ravel()]
    angle = rng.normal(0.0, 0.2)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = pts @ rot.T + np.clip(rng.normal(0.0, 1.5, pts.shape), -3.0, 3.0)
    key = np.hypot(pts[:, 0], pts[:, 1]) + rng.uniform(0.0, 0.6 * dx, len(pts))
    return pts[np.argsort(key)], max(dx, dy)


def _place(rng: np.random.Generator, available, offsets: np.ndarray, n: int) -> np.ndarray:
    """Put up to ``n`` slots of a compound layout inside ``available`` (best of 40 centres)."""
    centres = _random_points(rng, available, 40)
    if len(centres) == 0:
        return np.empty((0, 2))
    shapely.prepare(available)
    pts = centres[:, None, :] + offsets[None, :, :]
    inside = shapely.contains_xy(available, pts[..., 0], pts[..., 1])
    # a slot counts only if every slot nearer the centre is inside too: keeps clusters compact
    run = np.cumprod(inside, axis=1).sum(axis=1)
    good = np.flatnonzero(run >= n)
    best = good[0] if len(good) else int(np.argmax(run))
    return pts[best, : min(n, run[best])]


def _make_buildings(
    rng: np.random.Generator,
    faces: np.ndarray,
    blocked,
    roles: list[str],
    targets: np.ndarray,
    community_id: list[str],
) -> gpd.GeoDataFrame:
    """Compounds of buildings and empty parcels inside every community."""
    heads = np.array(_COMPOUND_HEADS)
    tails = np.array(_COMPOUND_TAILS)
    pairs = rng.permutation(len(heads) * len(tails))
    compound_names = (f"{heads[p // len(tails)]}{tails[p % len(tails)]}小区" for p in pairs)

    xy: list[np.ndarray] = []
    hh_all: list[np.ndarray] = []
    floors_all: list[np.ndarray] = []
    comp_all: list[str] = []
    comm_all: list[str] = []

    for face, role, target, cid in zip(faces, roles, targets, community_id, strict=True):
        available = shapely.difference(face.buffer(-_EDGE_MARGIN), blocked)
        for _ in range(int(rng.integers(1, 4))):  # schools, parks, markets: no buildings
            centre = _random_points(rng, available, 1)
            if len(centre):
                w, h = rng.uniform(70.0, 190.0), rng.uniform(60.0, 150.0)
                parcel = affinity.rotate(
                    shapely.box(-w / 2, -h / 2, w / 2, h / 2), rng.uniform(0, 180)
                )
                available = available.difference(affinity.translate(parcel, *centre[0]))

        def add(kind: str, hh: np.ndarray, floors: np.ndarray, *, available=None, cid: str = cid):
            offsets, spacing = _layout(rng, len(hh), kind)
            pts = _place(rng, available, offsets, len(hh))
            m = len(pts)
            if m:
                xy.append(pts)
                hh_all.append(hh[:m])
                floors_all.append(floors[:m])
                comp_all.extend([next(compound_names)] * m)
                comm_all.extend([cid] * m)
                reserve = shapely.convex_hull(MultiPoint(pts)).buffer(0.7 * spacing)
                available = available.difference(reserve)
            return int(hh[:m].sum()), available

        if role == "low":
            for part in (_LOW_HOUSEHOLDS[:3], _LOW_HOUSEHOLDS[3:]):
                hh, fl = (np.array(v, dtype=np.int64) for v in zip(*part, strict=True))
                _, available = add("low", hh, fl, available=available)
            continue
        if role == "tight":
            for part in _TIGHT_COMPOUNDS:
                hh, fl = (np.array(v, dtype=np.int64) for v in zip(*part, strict=True))
                _, available = add("high", hh, fl, available=available)
            continue
        if role == "tower":
            tower = np.array([_TOWER[0]]), np.array([_TOWER[1]])
            _, available = add("high", *tower, available=available)

        p_high = rng.uniform(0.45, 0.7) if role == "large" else rng.uniform(0.15, 0.6)
        remaining = int(target)
        failures = 0
        while remaining >= 12 and failures < 20:
            u = rng.random()
            kind = "high" if u < p_high else ("low" if u > 0.9 else "mid")
            lo, hi = _KIND_COUNT[kind]
            hh, fl = _building_sizes(rng, kind, int(rng.integers(lo, hi + 1)))
            keep = np.cumsum(hh) <= remaining
            if not keep.any():  # the remainder is smaller than one building of this kind
                hh, fl = np.array([remaining]), np.array([max(3, remaining // 8)])
            else:
                hh, fl = hh[keep], fl[keep]
            placed, available = add(kind, hh, fl, available=available)
            remaining -= placed
            failures += placed == 0
        if remaining >= 12:
            msg = f"no room left for {remaining} households in community {cid}"
            raise RuntimeError(msg)  # pragma: no cover - guarded by the seed tests

    xy_arr = np.concatenate(xy)
    households = np.concatenate(hh_all)
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:05d}" for i in range(1, len(households) + 1)],
            "households": households,
            "compound": comp_all,
            "floors": np.concatenate(floors_all),
            "community_id": comm_all,
        },
        geometry=gpd.points_from_xy(xy_arr[:, 0], xy_arr[:, 1]),
        crs=_METRIC_CRS,
    )
