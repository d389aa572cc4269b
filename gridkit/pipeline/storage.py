"""Safe storage of the work folder's tables: named arrays in ``.npz`` archives, never unpickled.

Nothing in the work folder is ever unpickled: every table is a NumPy ``.npz`` archive
read with ``allow_pickle=False`` (:func:`save_arrays`, :func:`load_arrays`: numbers as
arrays, text as fixed-width Unicode arrays with a mask of missing values, WKB as one
byte array with offsets), so a file planted in the work folder can at worst be
refused as damaged (:class:`DamagedWorkFile`), never run code.
"""

from __future__ import annotations

import itertools
import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "DamagedWorkFile",
    "load_arrays",
    "save_arrays",
]


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

