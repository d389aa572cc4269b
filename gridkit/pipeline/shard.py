"""Read a households file in partitions and split it into one shard per community.

A province does not fit one machine's memory.  :func:`shard_households` streams
the households file in chunks of ``chunk_rows`` rows (pandas chunks for
CSV/TSV/TXT, ``skip_features``/``max_features`` windows through pyogrio for
GeoPackage, GeoJSON and Shapefile), normalises each chunk exactly as
:func:`gridkit.read_households` does, locates its rows in the communities (an
STRtree in the metric CRS, the rule of :func:`gridkit.units.build_units`: a
point on a shared edge goes to the first community) and appends them to the
community's shard in the work folder.  Only the current chunk is ever in memory;
each community's task later reads its own shard only.

Work folder layout (:class:`WorkDir`)::

    gridkit-work.json    marks the folder as gridkit's (never write elsewhere)
    manifest.json        what the shards were made from, per-community counts and hashes
    shards/NNNNNN/CCCCCC.npz  household rows of community NNNNNN (boundaries order), one
                         file per chunk CCCCCC of the input that had rows in it
    rows/NNNNNN.npz      one table per chunk: household_id, row, community index, households
    results/<key>.npz    one result per solved community (see :mod:`gridkit.batch`)
    failed/<key>.txt     the traceback of a community that failed
    log.jsonl            one line per result received: community, worker, times

Shards hold the rows as :func:`gridkit.read_households` returns them (WGS84, the
geometry as WKB), so a community's units are built from exactly the values the
in-memory pipeline would use.

Nothing in the folder is ever unpickled: every table is a NumPy ``.npz`` archive read
with ``allow_pickle=False`` (:func:`save_arrays`, :func:`load_arrays`: numbers as
arrays, text as fixed-width Unicode arrays with a mask of missing values, WKB as one
byte array with offsets), so a file planted in the work folder can at worst be
refused as damaged, never run code.  Results are taken only when the hash of
everything they were made from matches, and the shards only when the *content* of
the input files (SHA-256 of their bytes, :func:`content_digest`), the options and the
code are unchanged: a file edited in place keeps neither its shards nor its results
even when its size and timestamp stay the same.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import time
import warnings
import zipfile
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
from gridkit.io import readers as _io
from gridkit.units import community_of_points

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DamagedWorkFile",
    "HouseholdFile",
    "WorkDir",
    "community_key",
    "content_digest",
    "load_arrays",
    "load_shard",
    "save_arrays",
    "shard_households",
]

log = logging.getLogger(__name__)

#: Household rows read at a time (about 0.5–1 GB of memory at the peak of a chunk).
DEFAULT_CHUNK_ROWS = 250_000

#: The file that marks a folder as a gridkit work folder.
WORK_MARK = "gridkit-work.json"

_FORMATS = f"{_io.VECTOR_FORMATS}, or {_io.TABLE_FORMATS}"
_WHAT = "households"


def community_key(community_id: str) -> str:
    """A file-name-safe, stable key of a community id.

    Examples
    --------
    >>> community_key("420204001001")
    '4f461bf34a3c0e670a77'
    """
    return hashlib.sha1(str(community_id).encode("utf-8")).hexdigest()[:20]


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


# --------------------------------------------------------------------------- safe storage


class DamagedWorkFile(ValueError):
    """A work-folder file that is not a table gridkit wrote (truncated, planted, foreign)."""


_TEXT = "@text"
_MISSING = "@missing"
_BYTES = "@bytes"
_OFFSETS = "@offsets"


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Store named 1-D arrays in a ``.npz`` archive readable without pickle, atomically.

    Numbers and booleans are stored as they are; object arrays of text (with ``None``
    for missing values) as Unicode arrays plus a mask; object arrays of ``bytes``
    (WKB) as one byte array plus offsets.

    Parameters
    ----------
    path
        The ``.npz`` file (written through a temporary file and :func:`os.replace`).
    arrays
        Name -> array.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "t.npz"
    >>> _ = save_arrays(f, {"id": np.array(["a", None], dtype=object),
    ...                     "wkb": np.array([b"\\x01", b""], dtype=object), "n": np.arange(2)})
    >>> t = load_arrays(f)
    >>> t["id"].tolist(), t["wkb"].tolist(), t["n"].tolist()
    (['a', None], [b'\\x01', b''], [0, 1])
    """
    stored: dict[str, np.ndarray] = {}
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype != object:
            stored[name] = values
            continue
        items = values.tolist()
        if items and all(isinstance(v, bytes | bytearray) for v in items):
            lengths = np.fromiter((len(v) for v in items), dtype=np.int64, count=len(items))
            stored[name + _BYTES] = np.frombuffer(b"".join(items), dtype=np.uint8)
            stored[name + _OFFSETS] = np.concatenate([[0], np.cumsum(lengths)])
            continue
        missing = np.fromiter((v is None for v in items), dtype=bool, count=len(items))
        text = ["" if v is None else str(v) for v in items]
        stored[name + _TEXT] = np.array(text, dtype=str) if text else np.array([], dtype="U1")
        stored[name + _MISSING] = missing
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as fh:
        np.savez(fh, **stored)
    os.replace(tmp, path)
    return path


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays :func:`save_arrays` stored (never unpickles anything).

    Parameters
    ----------
    path
        A ``.npz`` file written by :func:`save_arrays`.

    Returns
    -------
    dict
        Name -> array (object arrays for text and bytes).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    DamagedWorkFile
        The file is not such an archive (truncated, planted, or holding pickled objects).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            raw = {k: archive[k] for k in archive.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DamagedWorkFile(f"{path}: {exc}") from None
    out: dict[str, np.ndarray] = {}
    try:
        for key, values in raw.items():
            if key.endswith(_TEXT):
                name = key[: -len(_TEXT)]
                missing = raw[name + _MISSING]
                text = values.astype(object)
                text[missing] = None
                out[name] = text
            elif key.endswith(_BYTES):
                name = key[: -len(_BYTES)]
                offsets = raw[name + _OFFSETS]
                blob = values.tobytes()
                col = np.empty(len(offsets) - 1, dtype=object)
                col[:] = [blob[a:b] for a, b in itertools.pairwise(offsets)]
                out[name] = col
            elif not key.endswith((_MISSING, _OFFSETS)):
                out[key] = values
    except (KeyError, ValueError, IndexError) as exc:
        raise DamagedWorkFile(f"{path}: {exc}") from None
    return out


# --------------------------------------------------------------------------- the work folder

#: Lock files held by this process.  A forked child (a local worker) closes its copies
#: at once: an ``flock`` lock lives as long as any process holds the file open, so a
#: worker that outlived a killed run would otherwise lock ``--resume`` out.
_HELD_LOCKS: set = set()


def _drop_inherited_locks() -> None:
    for handle in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            handle.close()
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


class WorkDir:
    """The folder of one run's shards and per-community results (see the module doc).

    Parameters
    ----------
    path
        The folder; created when missing.  An existing folder must be empty or a
        gridkit work folder.
    resume
        Keep what an earlier run left; otherwise everything gridkit wrote here
        before is removed first.
    flag
        The option that named the folder, for messages.
    """

    SUBDIRS = ("shards", "rows", "results", "failed")

    def __init__(self, path: str | os.PathLike, *, resume: bool, flag: str = "--work-dir"):
        self.path = Path(path)
        self._lock = None
        if self.path.exists() and not self.path.is_dir():
            raise InputError(
                f"work folder '{self.path}' ({flag}) is a file: pass the path of a folder "
                "(it is created if missing)."
            )
        if (
            self.path.is_dir()
            and not (self.path / WORK_MARK).exists()
            and any(self.path.iterdir())
        ):
            raise InputError(
                f"work folder '{self.path}' ({flag}) is not empty and is not a gridkit work "
                f"folder (it has no {WORK_MARK}): pass a new or empty folder, so nothing of "
                "yours is overwritten."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock(flag)
        self.earlier_results = len(list((self.path / "results").glob("*.npz")))
        if not resume:
            self.clear()
        (self.path / WORK_MARK).write_text(
            json.dumps({"what": "gridkit work folder: shards and per-community results"}) + "\n",
            encoding="utf-8",
        )
        for sub in self.SUBDIRS:
            (self.path / sub).mkdir(exist_ok=True)

    def _take_lock(self, flag: str) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        handle = (self.path / "lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise InputError(
                f"another gridkit run is using the work folder '{self.path}' ({flag}): wait for "
                "it to finish, or pass another folder. (A run killed a moment ago releases it "
                "as soon as its processes have ended.)"
            ) from None
        self._lock = handle
        _HELD_LOCKS.add(handle)

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock is not None:
            _HELD_LOCKS.discard(self._lock)
            self._lock.close()
            self._lock = None

    def clear(self, *, shards_only: bool = False) -> None:
        """Remove what gridkit wrote here (only the shards and chunk tables when asked)."""
        subs = ("shards", "rows") if shards_only else self.SUBDIRS
        for sub in subs:
            shutil.rmtree(self.path / sub, ignore_errors=True)
            (self.path / sub).mkdir()
        for name in ("manifest.json",) + (() if shards_only else ("log.jsonl",)):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    def remove(self) -> None:
        """Delete the whole folder (after a complete run in the default location)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- files

    def shard_path(self, index: int) -> Path:
        """The folder of community ``index``'s shard (one ``.npz`` per input chunk)."""
        return self.path / "shards" / f"{index:06d}"

    def rows_path(self, chunk: int) -> Path:
        return self.path / "rows" / f"{chunk:06d}.npz"

    def result_path(self, community_id: str) -> Path:
        return self.path / "results" / f"{community_key(community_id)}.npz"

    def failure_path(self, community_id: str) -> Path:
        return self.path / "failed" / f"{community_key(community_id)}.txt"

    def read_manifest(self) -> dict | None:
        try:
            return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_bytes(
            self.path / "manifest.json",
            (json.dumps(manifest, ensure_ascii=False) + "\n").encode("utf-8"),
        )

    def load_result(self, community_id: str, input_hash: str):
        """The stored result of a community made from ``input_hash``, else None."""
        from gridkit.pipeline.batch import CommunityResult

        path = self.result_path(community_id)
        try:
            arrays = load_arrays(path)
            return CommunityResult.from_arrays(arrays, community_id, input_hash)
        except FileNotFoundError:
            return None
        except DamagedWorkFile as exc:
            log.warning("ignoring a damaged result in the work folder (%s): it is solved again",
                        exc)  # fmt: skip
            return None

    def has_result(self, community_id: str, input_hash: str) -> bool:
        return self.load_result(community_id, input_hash) is not None

    def save_result(self, result) -> None:
        """Store one community's result atomically and log it; clears its failure record."""
        save_arrays(self.result_path(result.community_id), result.to_arrays())
        with contextlib.suppress(FileNotFoundError):
            self.failure_path(result.community_id).unlink()
        self.log(
            {
                "community_id": result.community_id,
                "status": "ok",
                "input_hash": result.input_hash,
                "worker": result.worker,
                **{k: round(v, 3) for k, v in result.times.items()},
            }
        )

    def save_failure(self, failure, input_hash: str) -> None:
        """Keep a failed community's traceback (the community is solved again on resume)."""
        atomic_write_bytes(
            self.failure_path(failure.community_id),
            f"community {failure.community_id}\n{failure.error}\n\n{failure.detail}".encode(),
        )
        with contextlib.suppress(FileNotFoundError):
            self.result_path(failure.community_id).unlink()
        self.log(
            {
                "community_id": failure.community_id,
                "status": "failed",
                "input_hash": input_hash,
                "error": failure.error,
            }
        )

    def log(self, entry: dict) -> None:
        with (self.path / "log.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": round(time.time(), 3), **entry}, ensure_ascii=False))
            fh.write("\n")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    sep = _io.guess_separator(head, p.suffix.lower())
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
        yield _io.read_vector(p, source, layer=layer, what=_WHAT, formats=_FORMATS, tables=True)
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
    if p.suffix.lower() in _io.TABLE_SUFFIXES:
        chunks = _table_chunks(p, label, chunk_rows)
    else:
        chunks = _vector_chunks(p, label, source.layer, chunk_rows)
    offset = 0
    for chunk in chunks:
        chunk.attrs["source"] = label
        yield offset, chunk
        offset += len(chunk)


# --------------------------------------------------------------------------- sharding


@dataclass
class _Pending:
    """Per-community accumulators while sharding."""

    hashers: dict[int, Any]
    rows: np.ndarray
    households: np.ndarray


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


#: A compound row's number of buildings and name, kept in shards under these names
#: when the households are whole compounds (see :func:`gridkit.units.build_units`).
COMPOUND_ROW_COLUMNS = ("compound_buildings", "compound_name")


def _compound_row_columns(hh: pd.DataFrame, column: str | None, source: str) -> dict:
    """The compound-row columns of a chunk, as text (``None`` where empty), or ``{}``."""
    from gridkit.units import COMPOUND_NAME_COLUMNS, compound_buildings_column

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
    from gridkit.io import read_households

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

    Returns
    -------
    dict
        ``rows`` (household rows in the file), ``chunks``, ``outside`` (rows in no
        community) and per community index ``rows``, ``households`` and ``hash`` of
        its shard (communities without rows are absent).

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
    from gridkit.io import check_swapped_against
    from gridkit.pipeline.inputs import ensure_household_columns
    from gridkit.units import attach_compounds

    if chunk_rows < 1:
        raise InputError(f"`chunk_rows` must be at least 1, got {chunk_rows}; e.g. 250000.")
    work.clear(shards_only=True)
    comm_geoms = boundaries.to_crs(metric).geometry.to_numpy()
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
    bar = tqdm(desc="reading households", unit=" rows", disable=not progress)
    try:
        for offset, raw in household_chunks(source, chunk_rows):
            label = raw.attrs.get("source", label)
            hh, has_id = _normalise(raw, offset, source, seen_warnings)
            check_swapped_against(hh, boundaries)
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
            where = community_of_points(points, comm_geoms)
            hh_counts = hh["households"].to_numpy(dtype=np.int64)
            row_numbers = hh["row"].to_numpy(dtype=np.int64)
            out_mask = where < 0
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
            inside = np.flatnonzero(~out_mask)
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
    return {
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
