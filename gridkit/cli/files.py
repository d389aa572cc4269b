"""The files a ``gridkit`` command reads and writes, with the command line's options.

Reading ``--communities`` and ``--households`` (and checking them against each other),
the extra layers (``--barriers``, ``--compounds``) and the grid layer of an output
folder; checking and writing the ``--out`` folder and printing what a run wrote.
Shared by ``partition``, ``regenerate`` and ``audit``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from gridkit.errors import InputError
from gridkit.export import attention_lines, headline, information_line
from gridkit.io import check_swapped_against, read_boundaries, read_dedicated, read_households

__all__ = [
    "check_out_dir",
    "print_summary",
    "read_communities",
    "read_compounds",
    "read_dedicated_parcels",
    "read_household_rows",
    "read_inputs",
    "read_layer",
    "resolve_grids_path",
    "write_plan",
]


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------


def read_communities(args: argparse.Namespace):
    """Read ``--communities`` with the CLI's options (shared by several commands).

    ``--communities-crs`` overrides the file's CRS; ``--input-crs`` applies only when
    the file declares none.
    """
    return read_boundaries(
        args.communities,
        id_col=args.community_id,
        name_col=getattr(args, "name_col", None),
        street_col=getattr(args, "street_col", None),
        input_crs=args.communities_crs
        or _undeclared(args.communities, args.input_crs, args.communities_layer),
        layer=args.communities_layer,
    )


def _undeclared(path: str, crs: str | None, layer: str | None) -> str | None:
    """``crs`` when the file declares no CRS of its own, else None (keep the declared one).

    ``--input-crs`` is meant for the household table (CSV has no CRS) and for files
    without one; a boundaries file that declares its CRS keeps it unless
    ``--communities-crs`` says otherwise.
    """
    if crs is None:
        return None
    try:
        import pyogrio

        declared = pyogrio.read_info(path, layer=layer).get("crs")
    except Exception:  # unreadable here: let read_boundaries report it properly
        return crs
    return None if declared else crs


def read_household_rows(args: argparse.Namespace):
    """Read ``--households`` with the CLI's options (shared by several commands)."""
    return read_households(
        args.households,
        id_col=args.id_col,
        households_col=args.households_col,
        building_col=args.building_col,
        lon_col=args.lon_col,
        lat_col=args.lat_col,
        input_crs=args.input_crs,
        layer=args.households_layer,
    )


def read_inputs(args: argparse.Namespace):
    """Communities and households, checked against each other for swapped lon/lat."""
    communities = read_communities(args)
    households = read_household_rows(args)
    check_swapped_against(households, communities)
    return communities, households


def read_layer(path: str, what: str, flag: str):
    """Read an extra layer (barriers, compounds; any vector format pyogrio reads)."""
    import geopandas as gpd

    if not Path(path).exists():
        raise InputError(f"{what} file '{path}' ({flag}) not found: check the path.")
    try:
        layer = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(
            f"cannot read {what} file '{path}' ({flag}): {exc}. Use GeoJSON, "
            "GeoPackage or Shapefile."
        ) from exc
    layer.attrs["source"] = f"{what} file '{path}'"
    return layer


def read_compounds(args: argparse.Namespace):
    """The --compounds layer with the name column chosen by --compound-name-col as ``name``."""
    if not args.compounds:
        if args.compound_name_col:
            raise InputError("--compound-name-col needs --compounds PATH (the compound outlines).")
        return None
    compounds = read_layer(args.compounds, "compounds", "--compounds")
    col = args.compound_name_col
    if col is not None:
        if col not in compounds:
            raise InputError(
                f"compounds file '{args.compounds}' has no column '{col}' "
                f"(--compound-name-col); it has: "
                f"{', '.join(map(str, compounds.columns.drop('geometry')))}."
            )
        compounds = compounds.rename(columns={c: f"_{c}" for c in ("name",) if c != col})
        compounds = compounds.rename(columns={col: "name"})
    return compounds


def read_dedicated_parcels(args: argparse.Namespace):
    """The ``--dedicated`` parcels (None without the option), read with their options.

    ``--input-crs`` applies only when the file declares no CRS, as for the communities.
    """
    path = getattr(args, "dedicated", None)
    if not path:
        given = [
            flag for flag, value in (
                ("--dedicated-type-col", getattr(args, "dedicated_type_col", None)),
                ("--dedicated-name-col", getattr(args, "dedicated_name_col", None)),
                ("--dedicated-layer", getattr(args, "dedicated_layer", None)),
            ) if value
        ]  # fmt: skip
        if given:
            raise InputError(f"{', '.join(given)} needs --dedicated PATH (the parcels).")
        return None
    return read_dedicated(
        path,
        type_col=args.dedicated_type_col,
        name_col=args.dedicated_name_col,
        input_crs=_undeclared(path, getattr(args, "input_crs", None), args.dedicated_layer),
        layer=args.dedicated_layer,
    )


def resolve_grids_path(path: str, flag: str) -> Path:
    """The grid layer a command reads: ``DIR/grids.geojson`` for an output folder, else ``path``.

    Every command that reads grids (``map``, ``assign``, ``audit``, ``export``,
    ``regenerate --previous``) accepts the output folder of another command as well
    as the file itself.

    Raises
    ------
    InputError
        When ``path`` is a folder without ``grids.geojson``.
    """
    p = Path(path)
    if not p.is_dir():
        return p
    grids = p / "grids.geojson"
    if not grids.is_file():
        raise InputError(
            f"folder '{p}' ({flag}) holds no grids.geojson: pass the folder written by "
            "`gridkit partition`, `regenerate` or `assign`, or the grid file itself "
            "(GeoJSON, GeoPackage or Shapefile)."
        )
    return grids


# ---------------------------------------------------------------------------
# the output folder
# ---------------------------------------------------------------------------


def check_out_dir(out: str) -> None:
    """Fail before any work when ``--out`` cannot become a folder we write to."""
    path = Path(out)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == path else f"is inside '{existing}', which is"
        msg = (
            f"output folder '{out}' (--out) {what} a file, not a folder: pass the path of a "
            "folder (it is created if missing)."
        )
        raise InputError(msg)
    if not os.access(existing, os.W_OK | os.X_OK):
        msg = (
            f"output folder '{out}' (--out): no permission to write in '{existing}'; pass a "
            "folder you can write to."
        )
        raise InputError(msg)


def write_plan(plan, args: argparse.Namespace, **options) -> dict[str, Path]:
    """``plan.write(args.out, ...)`` with an unwritable folder explained (shared by commands)."""
    try:
        return plan.write(args.out, map_html=not args.no_map, **options)
    except OSError as exc:
        raise InputError(
            f"cannot write the outputs to '{args.out}' (--out): {exc.strerror or exc} "
            f"({exc.filename or args.out}). Pass a folder you can write to."
        ) from exc


def print_summary(
    report: dict, paths: dict[str, Path], extra: Sequence[str] = (), *, lang: str = "zh"
) -> None:
    """Print a partition or regenerate report: the headline, then what needs attention.

    Parameters
    ----------
    report
        The ``report.json`` dict.
    paths
        The files written, by kind.
    extra
        More lines (how the run went), printed before the files.
    lang
        {"zh", "en"}: language of the headline and the attention list.
    """
    t = report["totals"]
    zh = lang == "zh"
    if zh:
        first = (
            f"gridkit {report['gridkit_version']}：{t['communities']} 个社区，"
            f"{t['households']:,} 户（{t['household_rows']:,} 行"
            + (f"，{t['buildings']:,} 栋楼" if "buildings" in t else "")
            + f"）→ {t['grids']} 个网格，用时 {t['time_s']:.1f} 秒"
        )
        assigned = (
            f"  住户已分入网格 {t['households_assigned']:,} 户；未分入 "
            f"{t['households_unassigned']:,} 户（{t['rows_unassigned']} 行）"
        )
    else:
        first = (
            f"gridkit {report['gridkit_version']}: {t['communities']} communities, "
            f"{t['households']:,} households in {t['household_rows']:,} rows"
            + (f" ({t['buildings']:,} buildings)" if "buildings" in t else "")
            + f" -> {t['grids']} grids in {t['time_s']:.1f} s"
        )
        assigned = (
            f"  households assigned: {t['households_assigned']:,}; unassigned: "
            f"{t['households_unassigned']:,} ({t['rows_unassigned']} rows)"
        )
    lines = [first, "  " + headline(t["grids_by_status"], lang=lang), assigned]
    for reason, info in t["unassigned_by_reason"].items():
        rows = f"{info['rows']} 行" if zh else f"{info['rows']} rows"
        lines.append(f"    {reason}: {rows} ({info['meaning']})")
    lines += attention_lines(report, lang=lang)
    info_line = information_line(report, lang=lang)
    if info_line:
        lines.append(info_line)
    statuses: dict[str, int] = {}
    for c in report["communities"]:
        statuses[c["solver_status"]] = statuses.get(c["solver_status"], 0) + 1
    lines.append(
        ("  求解状态：" if zh else "  solver: ")
        + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    )
    lines += list(extra)
    lines.append(("  已写出：" if zh else "  wrote: ") + ", ".join(str(p) for p in paths.values()))
    print("\n".join(lines))
