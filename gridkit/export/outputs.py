"""Write a command's output files as one set, and read them back only as a whole set.

Every command that writes several files into a folder (``partition``, ``regenerate``,
``assign``, ``audit``, ``export``) goes through :class:`OutputSet`, so a run killed at any
moment (``kill -9``, a power cut, a full disk) leaves the folder holding either the
complete previous set or the complete new set, never new ``grids.geojson`` beside old
``assignments.csv``.

How a set is written
    1. Every file is written into a staging folder inside the output folder
       (``.gridkit-staging-…``; same file system, so moves are atomic).
    2. The staging folder gets ``gridkit-outputs.json`` (:data:`MANIFEST`): the command,
       the gridkit version and every file of the set with its size and SHA-256.
    3. A journal (``.gridkit-commit.json``) is written atomically: the files to move
       into place and the stale files to remove (e.g. an earlier ``map.html`` when the
       new run has ``--no-map``).  From this moment the new set is complete on disk.
    4. The files are moved into place with :func:`os.replace`, the manifest last; the
       stale files are removed; the journal and the staging folder are deleted.

A kill before step 3 leaves the previous set untouched (the staging folder is deleted
by the next gridkit command).  A kill during step 4 leaves the journal, and every
gridkit command that writes to or reads from the folder first finishes the move
(:func:`settle`), so the folder holds the complete new set.  Readers then check the
files against the manifest (:func:`check_set`): a file changed or removed outside
gridkit is named with the fix, never read as part of the wrong set.

Other programs reading an output folder should read it only when it holds no
``.gridkit-commit.json`` (or run any gridkit command on it first), and can check each
file against ``gridkit-outputs.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gridkit.errors import InputError
from gridkit.utils import __version__

__all__ = [
    "JOURNAL",
    "KILL_ENV",
    "MANIFEST",
    "OutputSet",
    "atomic_write_bytes",
    "check_set",
    "fault_point",
    "file_sha256",
    "read_manifest",
    "read_output_layer",
    "reset_fault_steps",
    "settle",
]

log = logging.getLogger(__name__)

#: The manifest of a finished set (written last, inside the output folder).
MANIFEST = "gridkit-outputs.json"
#: The journal of a set being moved into place (present only during a commit).
JOURNAL = ".gridkit-commit.json"
#: Prefix of staging folders.
STAGING = ".gridkit-staging-"
#: Fault injection for tests: ``GRIDKIT_KILL_AT_STEP=N`` kills the process (SIGKILL) at
#: the N-th step of writing output sets (1-based; a step is a file started in staging,
#: the journal, one move, one removal, the clean-up).  Unset in normal use.
KILL_ENV = "GRIDKIT_KILL_AT_STEP"
FORMAT = "gridkit-outputs/1"

_steps = 0


def fault_point(what: str) -> None:
    """Count one step of writing outputs; kill the process at step ``$GRIDKIT_KILL_AT_STEP``.

    A test hook (see :data:`KILL_ENV`): with the variable unset it only counts.

    Parameters
    ----------
    what
        What is about to happen, for the debug log.
    """
    global _steps
    _steps += 1
    at = os.environ.get(KILL_ENV)
    if at and at.strip().isdigit() and int(at) == _steps:
        log.debug("fault injection: SIGKILL at step %d (%s)", _steps, what)
        os.kill(os.getpid(), signal.SIGKILL)


def reset_fault_steps() -> None:
    """Count the steps of :func:`fault_point` from zero again (e.g. in a forked test child)."""
    global _steps
    _steps = 0


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and :func:`os.replace`.

    Parameters
    ----------
    path
        The file; its folder must exist.
    data
        The bytes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _journal_path(folder: Path, label: str | None) -> Path:
    return folder / (JOURNAL if label is None else f".{label}{JOURNAL}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _finish(folder: Path, journal: Path) -> bool:
    """Carry out a journal's moves and removals (idempotent); True when one was finished."""
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
        staging = folder / str(entry["staging"])
        moves = [str(n) for n in entry["moves"]]
        remove = [str(n) for n in entry.get("remove", [])]
    except (OSError, ValueError, KeyError, TypeError):
        # The journal is written atomically, so it is whole or absent; anything else
        # was not written by gridkit: leave the files alone and drop it.
        log.warning("ignoring an unreadable commit journal %s", journal)
        with contextlib.suppress(OSError):
            journal.unlink()
        return False
    for name in moves:
        if Path(name).name != name:  # only plain file names, never a path elsewhere
            continue
        fault_point(f"move {name}")
        with contextlib.suppress(FileNotFoundError):  # moved before the interruption
            os.replace(staging / name, folder / name)
    for name in remove:
        if Path(name).name != name:
            continue
        fault_point(f"remove {name}")
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    _fsync_dir(folder)
    fault_point("clean up")
    journal.unlink()
    shutil.rmtree(staging, ignore_errors=True)
    return True


def settle(folder: str | os.PathLike, *, label: str | None = None) -> bool:
    """Finish a set that was being moved into place when its run was killed.

    A folder holding a commit journal gets the rest of the new set moved in (the set
    was complete in its staging folder before the journal was written); staging
    folders of runs that died before their journal are deleted.  Every gridkit
    command calls this before it writes to or reads from an output folder.

    Parameters
    ----------
    folder
        The output folder (nothing happens when it does not exist).
    label
        The set's label when several sets share a folder (``gridkit export``); every
        journal in the folder is finished anyway.

    Returns
    -------
    bool
        True when an interrupted commit was finished.

    Raises
    ------
    InputError
        When the folder cannot be written to while a commit is unfinished.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    finished = False
    # Every journal in the folder, whatever its set: finishing a commit is always safe, and
    # the staging folder of one set must not be deleted while its journal waits.
    journals = sorted({_journal_path(folder, label), *folder.glob(f".*{JOURNAL}")})
    for journal in journals:
        if not journal.exists():
            continue
        try:
            done = _finish(folder, journal)
        except OSError as exc:
            raise InputError(
                f"'{folder}' holds a gridkit output set whose writing was interrupted "
                f"({journal.name}), and it cannot be finished here ({exc.strerror or exc}): "
                "run the same gridkit command again with permission to write to the folder."
            ) from exc
        if done:
            log.warning("finished writing the interrupted output set in %s", folder)
        finished = finished or done
    for stale in folder.glob(f"{STAGING}*"):
        pid = stale.name[len(STAGING) :].split("-")[0]
        if stale.is_dir() and (not pid.isdigit() or not _pid_alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)
    return finished


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of the set in ``folder`` (``None`` when it has none).

    Parameters
    ----------
    folder
        An output folder.

    Returns
    -------
    dict or None
        ``format``, ``command``, ``gridkit_version`` and ``files`` (name ->
        ``{"bytes": n, "sha256": hex}``).

    Raises
    ------
    InputError
        When the manifest exists but is not one gridkit wrote.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
            raise ValueError("not a gridkit-outputs/1 manifest")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(
            f"'{path}' is damaged ({exc}): it lists the files of a gridkit output set. Write "
            "the folder again with the gridkit command that made it, or delete the file to "
            "read the folder without checks."
        ) from None
    return data


def check_set(
    folder: str | os.PathLike, needed: Iterable[str] = (), *, full: bool = True
) -> dict | None:
    """Finish an interrupted commit, then check ``needed`` files against the manifest.

    A folder without a manifest (written by hand or by an older gridkit) is taken as
    it is.

    Parameters
    ----------
    folder
        An output folder of gridkit.
    needed
        The files the caller will read (names in the folder).
    full
        Compare SHA-256 digests too (else only sizes).

    Returns
    -------
    dict or None
        The manifest, or None when the folder has none.

    Raises
    ------
    InputError
        A needed file is listed but missing, or differs from what was written: the
        message names the file and the fix.
    """
    folder = Path(folder)
    settle(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    files = manifest["files"]
    for name in needed:
        info = files.get(name)
        path = folder / name
        if info is None:
            continue  # not part of this set (e.g. no map.html): the caller copes
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InputError(
                f"'{path}' is missing from the gridkit output set in '{folder}' (its "
                f"{MANIFEST} lists it): write the folder again with `gridkit "
                f"{manifest.get('command', 'partition')}`."
            ) from None
        if size != info.get("bytes") or (full and file_sha256(path) != info.get("sha256")):
            raise InputError(
                f"'{path}' is not the file gridkit wrote in this output set (its size or "
                f"SHA-256 differs from {MANIFEST}): it was changed, truncated or copied in "
                f"from another run. Write the folder again with `gridkit "
                f"{manifest.get('command', 'partition')}`, or delete {MANIFEST} if the "
                "change was deliberate."
            )
    return manifest


class OutputSet:
    """The files of one command's run, written into staging and committed as one set.

    Parameters
    ----------
    folder
        The output folder (created when missing).
    command
        The gridkit command, for the manifest and messages (``partition``, ...).
    known
        Every file name the command can write: a known name the new set does not
        hold (``map.html`` with ``--no-map``) is removed when the set is committed.
    label
        Name of the set when several sets share a folder (``gridkit export``): its
        journal carries it, and no manifest is written.
    manifest
        Write :data:`MANIFEST` (the default when no ``label`` is given).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with OutputSet(folder, "demo", known=["a.txt", "b.txt"]) as out:
    ...     _ = out.path("a.txt").write_text("new a")
    ...     _ = out.path("b.txt").write_text("new b")
    ...     paths = out.commit()
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt', 'b.txt', 'gridkit-outputs.json']
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        command: str,
        *,
        known: Iterable[str] = (),
        label: str | None = None,
        manifest: bool | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.command = command
        self.known = list(known)
        self.label = label
        self.manifest = label is None if manifest is None else manifest
        self.folder.mkdir(parents=True, exist_ok=True)
        settle(self.folder, label=label)
        # named by the writing process: a staging folder whose process is gone is deleted
        self.staging = self.folder / f"{STAGING}{os.getpid()}-{secrets.token_hex(4)}"
        self.staging.mkdir()
        self._names: list[str] = []
        self.committed = False
        self._journaled = False

    def path(self, name: str) -> Path:
        """Where to write the file ``name`` of the set (inside the staging folder).

        Parameters
        ----------
        name
            The file name in the output folder (no folders).

        Returns
        -------
        pathlib.Path
            The staging path; write the file there, then :meth:`commit`.
        """
        if Path(name).name != name:
            raise ValueError(f"output names are plain file names, got {name!r}")
        fault_point(f"write {name}")
        if name not in self._names:
            self._names.append(name)
        return self.staging / name

    def final(self, name: str) -> Path:
        """Where ``name`` will be once the set is committed."""
        return self.folder / name

    def commit(self) -> dict[str, Path]:
        """Move the set into place (see the module doc); returns the final paths by name.

        Returns
        -------
        dict
            File name -> final path, in the order the files were added.
        """
        present = [n for n in self._names if (self.staging / n).exists()]
        previous = None
        if self.manifest:
            with contextlib.suppress(InputError):
                previous = read_manifest(self.folder)
        stale = {n for n in self.known if n not in present}
        if previous is not None and previous.get("command") == self.command:
            stale |= {n for n in previous["files"] if n not in present}
        stale.discard(MANIFEST)
        moves = list(present)
        if self.manifest:
            files = {
                n: {"bytes": (self.staging / n).stat().st_size,
                    "sha256": file_sha256(self.staging / n)}
                for n in present
            }  # fmt: skip
            body = {"format": FORMAT, "command": self.command, "gridkit_version": __version__,
                    "files": files}  # fmt: skip
            atomic_write_bytes(
                self.staging / MANIFEST,
                (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
            )
            moves.append(MANIFEST)
        for n in moves:
            with (self.staging / n).open("rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(self.staging)
        fault_point("journal")
        journal = _journal_path(self.folder, self.label)
        atomic_write_bytes(
            journal,
            json.dumps(
                {"staging": self.staging.name, "moves": moves, "remove": sorted(stale)},
                ensure_ascii=False,
            ).encode("utf-8"),
        )
        self._journaled = True  # from here on the new set is whole: never discard it
        _fsync_dir(self.folder)
        _finish(self.folder, journal)
        self.committed = True
        return {n: self.folder / n for n in present}

    def discard(self) -> None:
        """Delete the staging folder (the previous set stays as it was)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc: Any) -> None:
        # A failure after the journal (a full disk while moving) leaves the journal and
        # the staging folder: the next gridkit command finishes the move.
        if not self.committed and not self._journaled:
            self.discard()


def read_output_layer(path: str | os.PathLike, *, what: str, fix: str):
    """Read a layer gridkit wrote (``grids.geojson``, ``buildings.geojson``), or explain why not.

    Parameters
    ----------
    path
        The file.
    what
        What it is, for the message (e.g. ``"previous grid layer (--previous)"``).
    fix
        What to do when it is damaged (e.g. "write it again with `gridkit partition`").

    Returns
    -------
    geopandas.GeoDataFrame
        The layer (EPSG:4326 when the file declares no CRS).

    Raises
    ------
    InputError
        The file cannot be read, holds no features with geometries, or has empty or
        missing geometries: the message names the file, the problem and ``fix``.
    """
    import geopandas as gpd
    import shapely

    path = Path(path)
    try:
        layer = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several types for damaged files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot read the {what} '{path}': it is damaged or not a GeoJSON layer ({first}). "
            f"{fix}"
        ) from None
    if not isinstance(layer, gpd.GeoDataFrame) or "geometry" not in layer:
        raise InputError(f"the {what} '{path}' has no geometries. {fix}")
    geoms = layer.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        rows = [int(i) + 1 for i in bad.nonzero()[0][:10]]
        raise InputError(
            f"the {what} '{path}' has features without a geometry (features "
            f"{', '.join(map(str, rows))}{' …' if bad.sum() > 10 else ''}). {fix}"
        )
    if layer.crs is None:
        layer = layer.set_crs(4326)
    return layer
