"""The work folder of a file-to-file run: its layout, lock, manifest, results and resume.

Work folder layout (:class:`WorkDir`)::

    gridkit-work.json    marks the folder as gridkit's (never write elsewhere)
    manifest.json        what the shards were made from, per-community counts and hashes
    shards/NNNNNN/CCCCCC.npz  household rows of community NNNNNN (boundaries order), one
                         file per chunk CCCCCC of the input that had rows in it
    rows/NNNNNN.npz      one table per chunk: household_id, row, community index, households
    results/<key>.npz    one result per solved community (see :mod:`gridkit.pipeline.community`)
    failed/<key>.txt     the traceback of a community that failed
    log.jsonl            one line per result received: community, worker, times

The shards are written by :func:`gridkit.pipeline.shard_households`.  Every table is
stored without pickle (:mod:`gridkit.pipeline.storage`).  Results are taken only when
the hash of everything they were made from matches (``resume``); a damaged result is
solved again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from gridkit.errors import InputError
from gridkit.pipeline.community import CommunityResult
from gridkit.pipeline.storage import DamagedWorkFile, load_arrays, save_arrays

__all__ = [
    "DEFAULT_WORK",
    "WORK_MARK",
    "WorkDir",
    "community_key",
]

log = logging.getLogger(__name__)

#: The work folder used when none is given: inside the output folder, removed after a
#: run in which every community succeeded.
DEFAULT_WORK = ".gridkit-work"

#: The file that marks a folder as a gridkit work folder.
WORK_MARK = "gridkit-work.json"


def community_key(community_id: str) -> str:
    """A file-name-safe, stable key of a community id.

    Examples
    --------
    >>> community_key("420204001001")
    '4f461bf34a3c0e670a77'
    """
    return hashlib.sha1(str(community_id).encode("utf-8")).hexdigest()[:20]


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

