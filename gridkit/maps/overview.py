"""Static pictures for printed reports: the overview PNG of the grids and the size histogram.

:func:`overview_png` draws the grids with matplotlib, filled by households or status,
labels thinned so 300+ grids stay legible; :func:`size_histogram_png` draws households
per grid against the bounds.  Chinese text needs a font with Chinese glyphs
(:func:`_cjk_font`); without one the pictures fall back to English.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridkit.contracts import DEDICATED, IN_BOUNDS_STATUSES
from gridkit.crs import local_metric_crs
from gridkit.errors import InputError
from gridkit.maps.style import (
    DEDICATED_COLOR,
    STATUS_COLORS,
    STATUS_TEXT,
    TEXT,
    UNKNOWN_COLOR,
    ColorBy,
    Lang,
    check_color_range,
    check_grids,
    check_option,
    dedicated_mask,
    is_missing,
    robust_range,
)

if TYPE_CHECKING:
    from matplotlib.path import Path as MplPath

__all__ = ["overview_png", "size_histogram_png"]

logger = logging.getLogger("gridkit.maps")  # the stage's logger: stable for users who configure it


# statuses within the household bounds: not outlined as problems in the overview PNG
_IN_BOUNDS = IN_BOUNDS_STATUSES

_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "Noto Serif CJK SC",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Droid Sans Fallback",
)


@cache
def _cjk_font() -> str | None:
    """Family name of an installed font with Simplified Chinese glyphs, or ``None``.

    Looks in matplotlib's font list first, then asks fontconfig (``fc-list :lang=zh``)
    and registers what it finds (matplotlib's font cache misses fonts installed
    after it was built).  Simplified Chinese faces (``… SC``, ``… CN``, Microsoft
    YaHei, SimHei, WenQuanYi) are preferred, and a family is taken only when the face
    matplotlib would draw with is that family: a ``.ttc`` collection such as
    ``NotoSansCJK-Regular.ttc`` holds the Japanese, Korean and Traditional faces too,
    and an older matplotlib that reads only its first face would draw Japanese
    glyph shapes (e.g. 边, 户) under the Simplified name.
    """
    from matplotlib import font_manager

    def drawn_as(family: str) -> str | None:
        try:
            found = font_manager.findfont(
                font_manager.FontProperties(family=family), fallback_to_default=False
            )
            return font_manager.get_font(found).family_name
        except (ValueError, RuntimeError, OSError):
            return None

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        for family in _CJK_FAMILIES:
            if family in names and drawn_as(family) == family:
                return family
        return None

    family = known()
    if family is not None:
        return family
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=20,
            check=False,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(
        {line.split(":", 1)[0].strip() for line in out.splitlines() if line.strip()},
        key=lambda f: ("Regular" not in f, "Sans" not in f and "Hei" not in f, f),
    )
    fallback = None
    for file in files:
        try:
            font_manager.fontManager.addfont(file)  # every face of a .ttc collection
            name = font_manager.FontProperties(fname=file).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
        if fallback is None and not name.endswith((" JP", " KR", " TC", " HK")):
            fallback = name
    return known() or fallback


def _mpl_path(geom: Any) -> MplPath | None:
    """A matplotlib compound path of a (Multi)Polygon, holes included."""
    from matplotlib.path import Path as MplPath

    if geom is None or geom.is_empty:
        return None
    polys = list(geom.geoms) if geom.geom_type in ("MultiPolygon", "GeometryCollection") else [geom]
    verts, codes = [], []
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            c = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
            c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            verts.append(xy)
            codes.append(c)
    if not verts:
        return None
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def overview_png(
    grids: gpd.GeoDataFrame,
    path: str | Path,
    *,
    communities: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    lang: Lang = "zh",
    dpi: int = 150,
    color_by: ColorBy = "households",
    color_range: tuple[float, float] | None = None,
) -> Path:
    """Write a static overview image of the grids, for printed reports.

    Grids are filled by household count (a colour bar whose ends are the 2nd and 98th
    percentiles, :func:`robust_range`, so outliers do not wash out the rest) or by
    status (``color_by="status"``).  Community names are written large; each grid is
    labelled with its code (its 3-digit sequence number when the full code does not
    fit) and household count; a label that would overlap a label already drawn is left
    out (community names first, then larger grids), so a city of 300 grids stays
    legible.  Grids out of the bounds (``below_min``, ``above_max``, oversize) get an
    outline in the status colour;
    community outlines are drawn dashed.  Drawn in the local UTM zone, so distances
    are true, with a scale bar.

    Parameters
    ----------
    grids
        Grid polygons in any CRS with ``grid_code`` and ``households`` (and
        optionally ``status``).  Never modified.
    path
        Output PNG file; parent folders are created.
    communities
        Community polygons for the dashed outlines.
    title
        Title above the map (default "网格划分总览（N 个网格）" / "Grid overview (N grids)").
    lang
        {"zh", "en"}
        Language of the title, colour bar and legend.  Chinese text needs a CJK font
        (e.g. Debian ``fonts-noto-cjk``, Windows' Microsoft YaHei); without one the
        image falls back to English and a warning is logged.
    dpi
        Resolution of the PNG.
    color_by
        {"households", "status"}
        Fill by household count or by status (as :func:`explore`; CLI ``--color-by``).
    color_range
        ``(low, high)`` of the household colour scale (default :func:`robust_range`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    InputError
        As :func:`explore` for bad ``grids`` or ``lang``.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.collections import PatchCollection
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch, PathPatch
        from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
    except ImportError as err:  # pragma: no cover - matplotlib is a test dependency
        msg = "overview_png needs matplotlib: pip install matplotlib"
        raise ImportError(msg) from err

    check_option("lang", lang, tuple(TEXT))
    check_option("color_by", color_by, ("households", "status"))
    check_grids(grids, color_by)
    family: list[str] = ["DejaVu Sans"]
    if lang == "zh":
        cjk = _cjk_font()
        if cjk is None:
            logger.warning(
                "overview_png: no font with Chinese glyphs found (fc-list :lang=zh is empty); "
                "drawing English labels instead. Install one, e.g. `apt-get install "
                "fonts-noto-cjk` on Debian/Ubuntu."
            )
            lang = "en"
        else:
            family = [cjk, "DejaVu Sans"]
    else:  # English text, but names in the data may be Chinese: a CJK font after DejaVu
        cjk = _cjk_font()
        if cjk is not None:
            family = ["DejaVu Sans", cjk]
    text = TEXT[lang]

    crs = local_metric_crs(grids)
    g = grids.to_crs(crs)
    g = g[~(g.geometry.isna() | g.geometry.is_empty)].reset_index(drop=True)
    hh = pd.to_numeric(g["households"], errors="coerce").astype(float).to_numpy()
    dedicated = dedicated_mask(g)  # no household bounds: own colour, not in the scale
    scale = hh[~dedicated] if (~dedicated).any() else hh
    vmin, vmax = robust_range(scale) if color_range is None else check_color_range(color_range)
    norm = Normalize(vmin=vmin, vmax=vmax, clip=True)
    cmap = colormaps["YlGnBu"]

    minx, miny, maxx, maxy = g.total_bounds
    aspect = (maxy - miny) / max(maxx - minx, 1.0)
    width = float(np.clip(10.0 + (len(g) - 40) / 20.0, 10.0, 24.0))  # room for many labels
    height = float(np.clip(width * aspect * 0.85 + 1.2, 5.0, 1.4 * width))
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.set_axis_off()

    status = g["status"].astype(str).to_numpy() if "status" in g.columns else None
    paths = [_mpl_path(geom) for geom in g.geometry]
    keep = [i for i, p in enumerate(paths) if p is not None]
    if color_by == "status":
        faces = [STATUS_COLORS.get(str(status[i]), UNKNOWN_COLOR) for i in keep]
    else:
        faces = [
            DEDICATED_COLOR if dedicated[i]
            else cmap(norm(hh[i])) if np.isfinite(hh[i]) else UNKNOWN_COLOR
            for i in keep
        ]  # fmt: skip
    ax.add_collection(
        PatchCollection(
            [PathPatch(paths[i]) for i in keep],
            facecolors=faces,
            edgecolors="#303030",
            linewidths=0.6,
            zorder=1,
        )
    )
    if communities is not None:
        c = communities.to_crs(crs)
        outlines = [PathPatch(p) for p in map(_mpl_path, c.geometry) if p is not None]
        ax.add_collection(
            PatchCollection(
                outlines,
                facecolor="none",
                edgecolor="#111111",
                linewidth=1.4,
                linestyle=(0, (5, 3)),
                zorder=2,
            )
        )
    if status is not None and color_by == "households":
        # grids with a problem: an outline in the status colour, drawn just inside the grid
        inset = max(maxx - minx, maxy - miny) / 400
        # (only grids out of the bounds: a part of a split compound is in them)
        bad = [i for i in keep if status[i] not in _IN_BOUNDS and not dedicated[i]]
        rings = [_mpl_path(g.geometry.iloc[i].buffer(-inset)) or paths[i] for i in bad]
        ax.add_collection(
            PatchCollection(
                [PathPatch(p) for p in rings],
                facecolor="none",
                edgecolors=[STATUS_COLORS.get(status[i], UNKNOWN_COLOR) for i in bad],
                linewidth=2.2,
                zorder=2.5,
            )
        )
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)

    bar = None
    if color_by == "households":
        bar = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, pad=0.02, extend="both"
        )
    # label size: fit each grid's width (points per metre of the axes once it is laid out)
    box = ax.get_position()
    fig_w, fig_h = fig.get_size_inches()
    pt_per_m = min(
        box.width * fig_w * 72 / max(maxx - minx, 1.0),
        box.height * fig_h * 72 / max(maxy - miny, 1.0),
    )
    widths = (g.geometry.bounds["maxx"] - g.geometry.bounds["minx"]).to_numpy()
    codes = g["grid_code"].astype(str).to_numpy()
    ems = np.array([sum(1.0 if ord(ch) > 0x2E80 else 0.62 for ch in c) for c in codes])
    fits = 0.8 * widths * pt_per_m / np.maximum(ems, 1.0)
    # one size for all labels (a quarter of them may overflow their grid a little)
    size = float(np.clip(np.percentile(fits[keep], 25), 5.0, 9.0)) if keep else 6.0
    short = bool(keep) and float(np.percentile(fits[keep], 25)) < 5.0
    points = g.geometry.representative_point()
    texts = []  # (priority, artist): community names first, then larger grids
    if communities is not None and "community_name" in communities.columns:
        c = communities.to_crs(crs)
        c = c[~(c.geometry.isna() | c.geometry.is_empty)]
        for area, name, pt in zip(
            c.geometry.area, c["community_name"], c.geometry.representative_point(), strict=True
        ):
            if is_missing(name) or not (minx <= pt.x <= maxx and miny <= pt.y <= maxy):
                continue
            artist = ax.annotate(
                str(name), (pt.x, pt.y), ha="center", va="center", fontsize=size + 2.5,
                fontweight="bold", fontfamily=family, color="#2b1a4a", zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
            )  # fmt: skip
            texts.append((-1e18 - float(area), artist))
    areas = g.geometry.area.to_numpy()
    for i in keep:
        code = codes[i][-3:] if short and len(codes[i]) > 3 else codes[i]
        label = code if not np.isfinite(hh[i]) else f"{code}\n{int(hh[i]):,}"
        artist = ax.annotate(
            label,
            (points.iloc[i].x, points.iloc[i].y),
            ha="center",
            va="center",
            fontsize=size,
            linespacing=1.1,
            fontfamily=family,
            color="#111111",
            zorder=3,
            bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.55},
        )
        texts.append((-float(areas[i]), artist))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        _thin_labels(fig, [artist for _, artist in sorted(texts, key=lambda t: t[0])])

    with warnings.catch_warnings():
        # a user title in Chinese without a CJK font: boxes instead of a crash
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        if bar is not None:
            bar.set_label(text["legend_households"], fontfamily=family)
        if title is None:
            title = text["title"].format(n=len(g))
        ax.set_title(title, fontfamily=family, fontsize=13)
        if status is not None and color_by == "status":
            labels = STATUS_TEXT[lang]
            present = [s for s in STATUS_COLORS if (status == s).any()]
            present += sorted(set(status) - set(STATUS_COLORS))
            ax.legend(
                handles=[
                    Patch(
                        facecolor=STATUS_COLORS.get(s, UNKNOWN_COLOR),
                        edgecolor="#303030",
                        label=f"{labels.get(s, s)} ({int((status == s).sum())})",
                    )
                    for s in present
                ],
                loc="lower left",
                prop={"family": family, "size": 8},
                title=text["legend_status"],
                title_fontproperties={"family": family},
            )
        elif status is not None and (~np.isin(status, _IN_BOUNDS)).any():
            labels = STATUS_TEXT[lang]
            present = [
                s for s in STATUS_COLORS
                if s not in _IN_BOUNDS and s != DEDICATED and (status == s).any()
            ]  # fmt: skip
            handles = [
                Patch(
                    facecolor="none",
                    edgecolor=STATUS_COLORS[s],
                    linewidth=1.8,
                    label=f"{labels[s]} ({int((status == s).sum())})",
                )
                for s in present
            ]
            if dedicated.any():
                handles.append(
                    Patch(
                        facecolor=DEDICATED_COLOR,
                        edgecolor="#303030",
                        label=f"{text['dedicated']} ({int(dedicated.sum())})",
                    )
                )
            if handles:
                ax.legend(
                    handles=handles,
                    loc="lower left",
                    prop={"family": family, "size": 8},
                    title=text["legend_status"],
                    title_fontproperties={"family": family},
                )
        span = maxx - minx
        bar_m = _nice_length(span / 5)
        ax.add_artist(
            AnchoredSizeBar(
                ax.transData,
                bar_m,
                f"{bar_m / 1000:g} km" if bar_m >= 1000 else f"{bar_m:g} m",
                "lower right",
                pad=0.5,
                frameon=False,
                size_vertical=span / 300,
            )
        )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
        try:  # whole or not at all, as save_map
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    logger.info("wrote overview %s (%d grids)", path, len(g))
    return path


def _thin_labels(fig: Any, artists: Sequence[Any]) -> int:
    """Hide every label that overlaps one drawn before it; returns how many were hidden.

    ``artists`` are in priority order.  The figure is drawn once to measure the text.
    """
    if not artists:
        return 0
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    hidden = 0
    for artist in artists:
        box = artist.get_window_extent(renderer=renderer)
        if any(box.overlaps(other) for other in placed):
            artist.set_visible(False)
            hidden += 1
        else:
            placed.append(box)
    return hidden


def _nice_length(x: float) -> float:
    """Largest 1, 2 or 5 x 10^k not above ``x`` (for scale bars)."""
    if x <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(x))
    return max(s * exp for s in (1, 2, 5) if s * exp <= x)


_HIST_TEXT = {
    "zh": {
        "title": "网格户数分布（{n} 个网格）",
        "x": "每个网格的户数",
        "y": "网格数",
        "bounds": "户数标准 {lo}–{hi}",
    },
    "en": {
        "title": "Households per grid ({n} grids)",
        "x": "households in the grid",
        "y": "grids",
        "bounds": "bounds {lo}–{hi}",
    },
}


def size_histogram_png(
    grids: gpd.GeoDataFrame | pd.DataFrame,
    path: str | Path,
    *,
    min_households: int = 400,
    max_households: int = 800,
    lang: Lang = "zh",
    dpi: int = 150,
) -> Path:
    """Write a histogram of households per grid, the bounds shaded, for printed reports.

    Bars inside the bounds are green, outside them orange (below) or red (above); the
    bins are 50 households wide (wider for very spread sizes).

    Parameters
    ----------
    grids
        A table with a ``households`` column (the grid layer, or ``report.json``'s
        ``grids`` list as a DataFrame).
    path
        Output PNG; parent folders are created.
    min_households, max_households
        The bounds to mark.
    lang
        {"zh", "en"}: language of the title and axes (English without a CJK font).
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        If ``grids`` has no ``households`` column or no grid.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_option("lang", lang, tuple(TEXT))
    if "households" not in grids.columns or len(grids) == 0:
        msg = "`grids` needs a `households` column and at least one grid for a histogram."
        raise InputError(msg)
    family: list[str] = ["DejaVu Sans"]
    if lang == "zh":
        cjk = _cjk_font()
        if cjk is None:
            lang = "en"
        else:
            family = [cjk, "DejaVu Sans"]
    text = _HIST_TEXT[lang]
    sized = grids[~dedicated_mask(grids)]  # dedicated grids have no bounds: left out
    hh = pd.to_numeric(sized["households"], errors="coerce").dropna().to_numpy(dtype=float)
    lo, hi = float(min_households), float(max_households)
    top = max(float(hh.max()) if len(hh) else hi, hi)
    width = 50.0 if top <= 3000 else float(_nice_length(top / 60))
    edges = np.arange(0.0, top + width, width)
    counts, edges = np.histogram(hh, bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    colors = [
        STATUS_COLORS["ok"] if lo <= c <= hi
        else STATUS_COLORS["below_min"] if c < lo
        else STATUS_COLORS["above_max"]
        for c in centres
    ]  # fmt: skip
    fig = Figure(figsize=(8, 4.5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axvspan(lo, hi, color="#e5f5e0", zorder=0)
    ax.bar(edges[:-1], counts, width=width, align="edge", color=colors, edgecolor="white",
           zorder=2)  # fmt: skip
    for x in (lo, hi):
        ax.axvline(x, color="#2ca25f", linestyle="--", linewidth=1.2, zorder=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        ax.set_title(text["title"].format(n=len(hh)), fontfamily=family)
        ax.set_xlabel(text["x"], fontfamily=family)
        ax.set_ylabel(text["y"], fontfamily=family)
        ax.set_ylim(0, max(int(counts.max()) if len(counts) else 1, 1) * 1.15)
        ax.text(
            (lo + hi) / 2, ax.get_ylim()[1] * 0.98, text["bounds"].format(lo=int(lo), hi=int(hi)),
            ha="center", va="top", fontfamily=family, color="#1b7a43", fontsize=9, zorder=4,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        )  # fmt: skip
        ax.spines[["top", "right"]].set_visible(False)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
        try:  # whole or not at all, as save_map
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return path
