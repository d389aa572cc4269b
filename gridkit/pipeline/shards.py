"""Read a households file in partitions and split it into one shard per community.

A province does not fit one machine's memory.  :func:`shard_households` streams
the households file in chunks of ``chunk_rows`` rows (pandas chunks for
CSV/TSV/TXT, ``skip_features``/``max_features`` windows through pyogrio for
GeoPackage, GeoJSON and Shapefile), normalises each chunk exactly as
:func:`gridkit.read_households` does, locates its rows in the communities (an
STRtree in the metric CRS, the rule of :func:`gridkit.units.build_units`: a
point on a shared edge goes to the first community) and appends them to the
community's shard in the work folder (:mod:`gridkit.pipeline.workdir`).  Only the
current chunk is ever in memory; each community's task later reads its own shard only.

Shards hold the rows as :func:`gridkit.read_households` returns them (WGS84, the
geometry as WKB), so a community's units are built from exactly the values the
in-memory pipeline would use.  They are stored without pickle
(:mod:`gridkit.pipeline.storage`), and taken on resume only when the *content* of
the input files (SHA-256 of their bytes, :func:`content_digest`), the options and the
code are unchanged: a file edited in place keeps neither its shards nor its results
even when its size and timestamp stay the same.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from tqdm.auto import tqdm

from gridkit.errors import GridkitWarning, InputError, format_ids
from gridkit.io import (
    TABLE_FORMATS,
    TABLE_SUFFIXES,
    VECTOR_FORMATS,
    check_swapped_against,
    guess_separator,
    read_households,
    read_vector,
)
from gridkit.pipeline.inputs import ensure_household_columns
from gridkit.pipeline.storage import DamagedWorkFile, load_arrays, save_arrays
from gridkit.pipeline.workdir import WorkDir
from gridkit.units import (
    COMPOUND_NAME_COLUMNS,
    PieceTally,
    attach_compounds,
    community_of_points,
    compound_buildings_column,
    locate_rows,
)

__all__ = [
    "COMPOUND_ROW_COLUMNS",
    "DEFAULT_CHUNK_ROWS",
    "HouseholdFile",
    "content_digest",
    "household_chunks",
    "load_shard",
    "shard_households",
]

log = logging.getLogger(__name__)

#: Household rows read at a time (about 0.5–1 GB of memory at the peak of a chunk).
DEFAULT_CHUNK_ROWS = 250_000


_FORMATS = f"{VECTOR_FORMATS}, or {TABLE_FORMATS}"
_WHAT = "households"


@dataclass(frozen=True)
class HouseholdFile:
    """A households file and how to read it (the options of :func:`gridkit.read_households`)."""

    path: str
    id_col: str | None = None
    households_col: str | None = None
    building_col: str | None = None
    lon_col: str | None = None
    lat_col: str | None = None
    input_crs: Any = None
    layer: str | int | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`gridkit.read_households` (all but the path)."""
        options = asdict(self)
        del options["path"]
        return options

    def check(self) -> None:
        """Raise the reader's InputError when the file does not exist."""
        p = Path(self.path)
        if not p.exists():
            msg = (
                f"{_WHAT} file '{os.fspath(self.path)}' not found (looked for {p.absolute()}): "
                f"check the path and the working directory ({Path.cwd()})."
            )
            raise InputError(msg)

    def describe(self) -> dict[str, Any]:
        """What identifies the file: path, SHA-256 of its content (:func:`content_digest`)
        and the reading options."""
        p = Path(self.path)
        return {
            "path": str(p.resolve()),
            "sha256": content_digest(p),
            **{k: None if v is None else str(v) for k, v in self.options().items()},
        }


def content_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a data file's bytes, with its sidecar files (Shapefile) or folder content.

    Parameters
    ----------
    path
        A file (a Shapefile's ``.shp`` brings its ``.dbf``, ``.shx``, ``.prj``, ``.cpg``)
        or a folder (e.g. a FileGDB): every file in it, by relative name.

    Returns
    -------
    str
        64 hex digits; equal only for equal content, whatever the size or timestamps.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
    elif p.suffix.lower() == ".shp":
        files = sorted(f for f in p.parent.glob(f"{p.stem}.*") if f.is_file())
    else:
        files = [p]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(p if p.is_dir() else p.parent)).encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


# --------------------------------------------------------------------------- reading in chunks


def _table_encoding(p: Path, source: str) -> str:
    """UTF-8 (with or without BOM) or GB18030, as :func:`gridkit.read_households` accepts."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with p.open("rb") as fh:
                while block := fh.read(1 << 24):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise InputError(
        f"cannot read {_WHAT} file '{source}': it is neither UTF-8 nor GB18030 text. Save it "
        "as 'CSV UTF-8' (Excel: File > Save As) and read it again."
    )


def _table_chunks(p: Path, source: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with p.open("rb") as fh:
        head = fh.read(65536)
    sep = guess_separator(head, p.suffix.lower())
    encoding = _table_encoding(p, source)
    try:
        reader = pd.read_csv(
            p,
            sep=sep,
            encoding=encoding,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            chunksize=chunk_rows,
        )
        with reader:
            for frame in reader:
                frame.columns = [str(c).strip() for c in frame.columns]
                yield frame
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as err:
        msg = f"cannot read {_WHAT} file '{source}' as a table ({err}). Supported: {_FORMATS}."
        raise InputError(msg) from err


def _vector_chunks(
    p: Path, source: str, layer: str | int | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    try:
        names = [str(n) for n in pyogrio.list_layers(p)[:, 0]]
        ok = (layer is None and len(names) == 1) or (
            layer is not None
            and ((isinstance(layer, str) and layer in names)
                 or (isinstance(layer, int) and 0 <= layer < len(names)))
        )  # fmt: skip
        name = names[0] if layer is None and ok else layer
        count = pyogrio.read_info(p, layer=name)["features"] if ok else -1
        if ok and count < 0:
            count = pyogrio.read_info(p, layer=name, force_feature_count=True)["features"]
    except Exception:
        ok = False
    if not ok or count <= chunk_rows:
        # One chunk, or a problem the reader explains best: read it as the reader does.
        yield read_vector(p, source, layer=layer, what=_WHAT, formats=_FORMATS, tables=True)
        return
    for start in range(0, count, chunk_rows):
        try:
            yield gpd.read_file(
                p, engine="pyogrio", layer=name, skip_features=start, max_features=chunk_rows
            )
        except (RuntimeError, OSError, ValueError) as err:
            msg = f"cannot read {_WHAT} file '{source}' ({err}). Supported formats: {_FORMATS}."
            raise InputError(msg) from err


def household_chunks(
    source: HouseholdFile | pd.DataFrame, chunk_rows: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(offset, raw rows)`` of a households file (or frame), ``chunk_rows`` at a time.

    The raw rows are what :func:`gridkit.read_households` would read from the file
    (text columns of a table, or a GeoDataFrame), with ``attrs["source"]`` set.
    """
    if isinstance(source, pd.DataFrame):
        label = str(source.attrs.get("source") or f"<{type(source).__name__}>")
        frame = source.reset_index(drop=True)
        for start in range(0, max(len(frame), 1), chunk_rows):
            chunk = frame.iloc[start : start + chunk_rows].reset_index(drop=True)
            chunk.attrs["source"] = label
            yield start, chunk
        return
    source.check()
    label = os.fspath(source.path)
    p = Path(label)
    if p.suffix.lower() in TABLE_SUFFIXES:
        chunks = _table_chunks(p, label, chunk_rows)
    else:
        chunks = _vector_chunks(p, label, source.layer, chunk_rows)
    offset = 0
    for chunk in chunks:
        chunk.attrs["source"] = label
        yield offset, chunk
        offset += len(chunk)


# --------------------------------------------------------------------------- sharding


#: A compound row's number of buildings and name, kept in shards under these names
#: when the households are whole compounds (see :func:`gridkit.units.build_units`).
COMPOUND_ROW_COLUMNS = ("compound_buildings", "compound_name")


def _canonical(piece: dict) -> bytes:
    """Bytes that identify a shard piece's content (independent of pickling details)."""
    parts = []
    for name in ("household_id", "building_id", "compound", *COMPOUND_ROW_COLUMNS):
        if name in piece:
            text = "\x1f".join("\x00" if v is None else str(v) for v in piece[name])
            parts.append(name.encode() + b"=" + text.encode("utf-8", "surrogatepass"))
    for name in ("households", "row"):
        parts.append(name.encode() + b"=" + np.ascontiguousarray(piece[name]).tobytes())
    lengths = np.array([len(w) for w in piece["wkb"]], dtype=np.int64)
    parts.append(b"wkb=" + lengths.tobytes() + b"".join(piece["wkb"]))
    return b"\x1e".join(parts)


def _compound_row_columns(hh: pd.DataFrame, column: str | None, source: str) -> dict:
    """The compound-row columns of a chunk, as text (``None`` where empty), or ``{}``."""
    col = compound_buildings_column(hh, column, source)
    if col is None:
        return {}
    out = {}
    name = next((c for c in COMPOUND_NAME_COLUMNS if c in hh and c != "compound"), None)
    for key, src in (("compound_buildings", col), ("compound_name", name)):
        if src is None:
            continue
        out[key] = np.array(
            [None if pd.isna(v) else str(v) for v in hh[src].to_numpy(dtype=object)],
            dtype=object,
        )
    return out


def load_shard(path: Path, expected_hash: str | None = None) -> gpd.GeoDataFrame:
    """A community's household rows (EPSG:4326), as :func:`gridkit.read_households` made them.

    Parameters
    ----------
    path
        The shard's folder (:meth:`WorkDir.shard_path`).
    expected_hash
        The shard's hash in the manifest: the content read must match it.

    Raises
    ------
    DamagedWorkFile
        When a piece of the shard is not a table gridkit wrote, or the content differs
        from what the manifest recorded.
    """
    pieces = [load_arrays(f) for f in sorted(Path(path).glob("*.npz"))]
    if not pieces:
        raise DamagedWorkFile(f"{path}: the shard is missing")
    if expected_hash is not None:
        h = hashlib.sha256()
        try:
            for piece in pieces:
                h.update(_canonical(piece))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DamagedWorkFile(f"{path}: {exc}") from None
        if h.hexdigest() != expected_hash:
            raise DamagedWorkFile(f"{path}: its content differs from the work folder's manifest")
    columns = [c for c in ("household_id", "households", "building_id", "row", "compound",
                           *COMPOUND_ROW_COLUMNS) if c in pieces[0]]  # fmt: skip
    try:
        data = {c: np.concatenate([p[c] for p in pieces]) for c in columns}
        wkb = np.concatenate([p["wkb"] for p in pieces])
        geometry = shapely.from_wkb(wkb)
    except (KeyError, ValueError, shapely.errors.ShapelyError) as exc:
        raise DamagedWorkFile(f"{path}: {exc}") from None
    frame = gpd.GeoDataFrame(
        {c: pd.Series(v, dtype=object if v.dtype == object else v.dtype) for c, v in data.items()},
        geometry=geometry,
        crs=4326,
    )
    frame.attrs["source"] = "shard"
    return frame


def _chunk_error(exc: InputError, offset: int, n: int, label: str) -> InputError:
    if offset == 0:
        return exc
    return InputError(
        f"{exc} (This is in the part of '{label}' read from data row {offset + 1:,} to "
        f"{offset + n:,}: the file is read {n:,} rows at a time and the row numbers above "
        f"count from the start of that part; add {offset:,} to find them in the file.)"
    )


def _normalise(
    raw: pd.DataFrame, offset: int, source: HouseholdFile | pd.DataFrame, seen: set[str]
) -> tuple[gpd.GeoDataFrame, bool]:
    """One chunk through :func:`gridkit.read_households`, with file-wide row numbers and ids.

    Returns the rows and whether their ids come from a column (else row numbers).
    """
    label = raw.attrs["source"]
    options = source.options() if isinstance(source, HouseholdFile) else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hh = read_households(raw, **options)
        except InputError as exc:
            raise _chunk_error(exc, offset, len(raw), label) from None
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            warnings.warn_explicit(
                w.message if isinstance(w.message, Warning) else text,
                w.category,
                w.filename,
                w.lineno,
            )
    has_id = options.get("id_col") is not None or any(
        str(c).strip().lower() == "household_id" for c in raw.columns
    )
    if offset:
        hh["row"] = hh["row"].to_numpy() + offset
        if not has_id:
            hh["household_id"] = pd.Series(hh["row"].astype(str).to_numpy(), dtype="str")
    return hh, has_id


def _check_duplicates(hh: gpd.GeoDataFrame, parts: list, label: str) -> None:
    """Household ids must be unique across the whole file (each chunk is checked alone).

    ``parts`` holds, per earlier chunk, the sorted 64-bit hashes of its ids and their
    rows; the new chunk is looked up in each, then added.
    """
    ids = hh["household_id"].astype(str).to_numpy(dtype=object)
    hashed = pd.util.hash_array(ids)
    rows = hh["row"].to_numpy(dtype=np.int64)
    for seen, seen_rows in parts:
        pos = np.minimum(np.searchsorted(seen, hashed), len(seen) - 1)
        hit = seen[pos] == hashed
        if hit.any():
            k = int(np.flatnonzero(hit)[0])
            raise InputError(
                f"households '{label}': household id {ids[k]!r} of row {int(rows[k])} was "
                f"already used by row {int(seen_rows[pos[k]])} ({int(hit.sum())} such rows in "
                f"data rows {int(rows[0]):,}–{int(rows[-1]):,}): give each row its own id, or "
                "pass `id_col=...` (CLI `--id-col ...`) to use another column."
            )
    order = np.argsort(hashed, kind="stable")
    if len(order):
        parts.append((hashed[order], rows[order]))


def shard_households(
    source: HouseholdFile | pd.DataFrame,
    boundaries: gpd.GeoDataFrame,
    metric,
    work: WorkDir,
    *,
    compounds: gpd.GeoDataFrame | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
    compound_buildings_col: str | None = None,
    pieces: np.ndarray | None = None,
) -> dict:
    """Stream ``source`` into one shard per community; returns the manifest.

    Parameters
    ----------
    source
        The households file (or an in-memory frame, read in the same chunks).
    boundaries
        The communities, normalised (``community_id``, EPSG:4326), in order.
    metric
        The metric CRS of the run (the UTM zone of the boundaries).
    work
        The work folder; its shards and chunk tables are replaced.
    compounds
        Compound outlines: rows get their ``compound`` as in :func:`gridkit.make_grids`.
    chunk_rows
        Rows read at a time.
    progress
        Show a progress bar (rows read).
    pieces
        The dedicated grids' parcels (in ``metric``), when ``boundaries`` are the
        communities less them: a row in no community but in a piece is in no shard;
        its piece goes into the chunk table (``piece``) and the manifest counts the
        households, buildings and compounds of each piece
        (:class:`gridkit.units.PieceTally`).

    Returns
    -------
    dict
        ``rows`` (household rows in the file), ``chunks``, ``outside`` (rows in no
        community) and per community index ``rows``, ``households`` and ``hash`` of
        its shard (communities without rows are absent); with ``pieces``, their tally
        (``dedicated``).

    Raises
    ------
    InputError
        As :func:`gridkit.read_households` (row numbers explained for later chunks),
        for duplicate ids across chunks, and when no row lies in any community.

    Warns
    -----
    GridkitWarning
        The reader's warnings (each once), and rows outside every community.
    """
    if chunk_rows < 1:
        raise InputError(f"`chunk_rows` must be at least 1, got {chunk_rows}; e.g. 250000.")
    work.clear(shards_only=True)
    comm_geoms = boundaries.to_crs(metric).geometry.to_numpy()
    # lon/lat outlines for the swapped-coordinates check (communities less their dedicated
    # parcels come in the metric CRS)
    geographic = boundaries if boundaries.crs.is_geographic else boundaries.to_crs(4326)
    n_comm = len(comm_geoms)
    hashers: dict[int, Any] = {}
    rows_of = np.zeros(n_comm, dtype=np.int64)
    hh_of = np.zeros(n_comm, dtype=np.int64)
    outside_rows: list[int] = []
    outside = 0
    total = 0
    chunks = 0
    label = "households"
    seen_warnings: set[str] = set()
    id_parts: list = []
    tally = PieceTally(len(pieces)) if pieces is not None else None
    bar = tqdm(desc="reading households", unit=" rows", disable=not progress)
    try:
        for offset, raw in household_chunks(source, chunk_rows):
            label = raw.attrs.get("source", label)
            hh, has_id = _normalise(raw, offset, source, seen_warnings)
            check_swapped_against(hh, geographic)
            hh = ensure_household_columns(hh)
            if compounds is not None:
                hh = attach_compounds(hh, compounds)
            if has_id:  # row-number ids are unique anyway
                _check_duplicates(hh, id_parts, label)
            points = hh.to_crs(metric).geometry.to_numpy()
            footprint = shapely.get_type_id(points) != 0
            if footprint.any():  # as build_units does: a point on each footprint
                points = points.copy()
                points[footprint] = shapely.point_on_surface(points[footprint])
            hh_counts = hh["households"].to_numpy(dtype=np.int64)
            if tally is not None:
                where, row_piece = locate_rows(points, comm_geoms, pieces)
                tally.add(
                    row_piece,
                    hh_counts,
                    hh["building_id"].to_numpy(dtype=object) if "building_id" in hh else None,
                    points,
                    hh["compound"].to_numpy(dtype=object) if "compound" in hh else None,
                )
            else:
                where = community_of_points(points, comm_geoms)
                row_piece = np.full(len(points), -1, dtype=np.int64)
            row_numbers = hh["row"].to_numpy(dtype=np.int64)
            out_mask = (where < 0) & (row_piece < 0)
            outside += int(out_mask.sum())
            if len(outside_rows) < 10:
                outside_rows += row_numbers[out_mask][: 10 - len(outside_rows)].tolist()
            piece_cols = {
                "household_id": hh["household_id"].astype(str).to_numpy(dtype=object),
                "households": hh_counts,
                "building_id": hh["building_id"].astype(object)
                .where(hh["building_id"].notna(), None)
                .to_numpy(dtype=object)
                if "building_id" in hh
                else np.full(len(hh), None, dtype=object),
                "row": row_numbers,
            }
            if "compound" in hh:
                piece_cols["compound"] = (
                    hh["compound"].astype(object).where(hh["compound"].notna(), None)
                    .to_numpy(dtype=object)
                )  # fmt: skip
            piece_cols.update(_compound_row_columns(hh, compound_buildings_col, label))
            wkb = shapely.to_wkb(hh.geometry.to_numpy())
            inside = np.flatnonzero(where >= 0)
            order = inside[np.argsort(where[inside], kind="stable")]
            bounds = np.flatnonzero(np.diff(where[order])) + 1
            for idx in np.split(order, bounds) if len(order) else []:
                k = int(where[idx[0]])
                piece = {name: values[idx] for name, values in piece_cols.items()}
                piece["wkb"] = wkb[idx]
                folder = work.shard_path(k)
                folder.mkdir(exist_ok=True)
                save_arrays(folder / f"{chunks:06d}.npz", piece)
                hashers.setdefault(k, hashlib.sha256()).update(_canonical(piece))
                rows_of[k] += len(idx)
                hh_of[k] += int(hh_counts[idx].sum())
            table = {
                "household_id": piece_cols["household_id"],
                "row": row_numbers,
                "community": where.astype(np.int32),
                "households": hh_counts,
            }
            if tally is not None:
                table["piece"] = row_piece.astype(np.int32)
            save_arrays(work.rows_path(chunks), table)
            total += len(hh)
            chunks += 1
            bar.update(len(hh))
    finally:
        bar.close()
    if total and outside == total:
        raise InputError(
            f"none of the {total} household rows of {label} lies inside any community of "
            f"{boundaries.attrs.get('source', 'the boundaries')}: the two files are probably in "
            "different coordinate systems (e.g. Baidu BD-09 or Amap GCJ-02 points on WGS84 "
            "outlines). Pass --input-crs for the households (bd09, gcj02, wgs84 or EPSG:nnnn) "
            "and --communities-crs for the boundaries if they were traced on a Chinese web map."
        )
    if outside:
        warnings.warn(
            f"{outside} household row(s) of {label} lie outside every community "
            f"(rows {format_ids(outside_rows)}{_more(outside, outside_rows)}); they are listed "
            "as unassigned with reason 'outside_communities'. Check the input CRS "
            "(--input-crs) or extend the boundaries.",
            GridkitWarning,
            stacklevel=2,
        )
    log.info("sharded %d household rows in %d chunks into %d communities", total, chunks,
             len(hashers))  # fmt: skip
    extra = {"dedicated": tally.to_json()} if tally is not None else {}
    return {
        **extra,
        "rows": total,
        "chunks": chunks,
        "outside": outside,
        "communities": {
            str(k): {
                "rows": int(rows_of[k]),
                "households": int(hh_of[k]),
                "hash": hashers[k].hexdigest(),
            }
            for k in sorted(hashers)
        },
    }


def _more(total: int, shown: list[int]) -> str:
    """`` … and N more`` when only the first rows are kept (format_ids saw ten of them)."""
    extra = total - len(shown)
    return f" … and {extra} more" if extra > 0 and len(shown) >= 10 else ""

