"""Where communities are solved: embedded local processes, or a Dask cluster.

One function, :func:`run_communities`, runs a task function over many
independent communities on a *back-end* and yields each outcome as it arrives:

- :class:`LocalBackend` (the default): a pool of local processes (``jobs``), or
  the calling process when ``jobs == 1``;
- :class:`DaskBackend`: a Dask ``distributed`` cluster, either an existing
  scheduler (``tcp://HOST:PORT``, started with ``dask scheduler`` and joined by
  ``dask worker tcp://HOST:PORT`` processes) or a ``LocalCluster`` started for
  the run (``"local"``).

Results never depend on the back-end: each community is solved on its own, from
its own inputs, with a deterministic solver budget.  A task that raises is
returned as a :class:`Failure` naming the community, so one bad community never
stops the others.  On Dask every task has a stable key; when a worker dies the
scheduler runs its tasks again elsewhere and the caller still receives exactly
one outcome per task.  A task that kills workers repeatedly (a crash, memory)
comes back as a :class:`Failure` too.

Only a bounded number of tasks is in flight at any time (``in_flight``), so the
caller can produce task inputs lazily (read from disk one by one) and the client
never holds the inputs of a whole province.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import logging
import multiprocessing
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gridkit.errors import GridkitError, InputError
from gridkit.utils import __version__, progress_class

tqdm = progress_class()

__all__ = [
    "WORKERS",
    "Backend",
    "BackendError",
    "DaskBackend",
    "Failure",
    "LocalBackend",
    "Task",
    "code_fingerprint",
    "die_with_parent",
    "open_backend",
    "run_communities",
]

log = logging.getLogger(__name__)

#: The fingerprint covers the source of every module of the gridkit package: a result
#: is never reused (or accepted from a worker) when any of the code that made it differs.

#: CP-SAT threads per community solve.  One: communities solve in parallel
#: processes instead (``jobs``, default all cores), which uses the cores better
#: than interleaved threads and keeps every result independent of ``jobs``.
WORKERS = 1

#: How long to wait for the first Dask worker to join the scheduler (seconds).
WORKER_WAIT_S = 120.0


class BackendError(GridkitError, RuntimeError):
    """The execution back-end is unusable (scheduler lost, worker processes died)."""


@dataclass(frozen=True)
class Failure:
    """A community whose task raised (or whose worker died) instead of returning.

    Attributes
    ----------
    community_id
        The community.
    error
        One line: exception type and message.
    detail
        The traceback (or the scheduler's explanation), for the log.
    """

    community_id: str
    error: str
    detail: str = ""


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(payload)`` for one community.

    Attributes
    ----------
    index
        The caller's position for this task (returned with its outcome).
    community_id
        The community, for failures and progress.
    key
        A stable, unique name of the computation (its inputs' hash): Dask uses it
        as the task key, so resubmitting the same work never computes it twice.
    payload
        The argument of the task function (or a zero-argument callable returning
        it, called just before submission so inputs are loaded lazily).
    """

    index: int
    community_id: str
    key: str
    payload: Any


def call_guarded(fn: Callable[[Any], Any], community_id: str, payload: Any) -> Any:
    """``fn(payload)``, or a :class:`Failure` when it raises (runs on the worker)."""
    try:
        return fn(payload)
    except Exception as exc:  # one community's problem must not stop the others
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Failure(
            community_id=community_id,
            error=f"{type(exc).__name__}: {message}" if message else type(exc).__name__,
            detail=traceback.format_exc(),
        )


def _source_digest() -> bytes:
    """Hash of the source of every gridkit module, read when this module is imported.

    Read once, at import (with the rest of gridkit), so a file edited while a
    long-running worker is up does not change the fingerprint of the code it runs.
    """
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        h.update(source.relative_to(package).as_posix().encode())
        h.update(source.read_bytes())
    return h.digest()


_SOURCE_DIGEST = _source_digest()


@functools.cache
def code_fingerprint() -> str:
    """A short hash of everything that decides a community's result in this process.

    The gridkit version and the source of its modules (as imported), plus
    the versions of OR-Tools, GEOS, PROJ, shapely, numpy and Python.  Two processes
    with the same fingerprint give byte-identical results for the same inputs.
    """
    import numpy
    import pyproj
    import shapely

    h = hashlib.sha256(_SOURCE_DIGEST)
    parts = [
        f"gridkit {__version__}",
        f"ortools {_version('ortools')}",
        f"geos {shapely.geos_version_string}",
        f"proj {pyproj.proj_version_str}",
        f"shapely {shapely.__version__}",
        f"numpy {numpy.__version__}",
        f"python {sys.version_info[:2]}",
    ]
    for part in parts:
        h.update(part.encode())
    return h.hexdigest()[:16]


def worker_environment() -> dict[str, str]:
    """What a worker runs: the code fingerprint and readable versions (sent to the client)."""
    import shapely

    return {
        "fingerprint": code_fingerprint(),
        "versions": f"gridkit {__version__}, ortools {_version('ortools')}, "
        f"GEOS {shapely.geos_version_string}, Python {sys.version.split()[0]}",
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
    }


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


# --------------------------------------------------------------------------- back-ends


class Backend:
    """Runs guarded task functions; subclasses implement :meth:`outcomes`."""

    name = "backend"

    def describe(self) -> str:
        """One line for the summary, e.g. ``local processes (2)``."""
        return self.name

    @property
    def slots(self) -> int:
        """How many tasks run at the same time."""
        return 1

    def outcomes(
        self, fn: Callable[[Any], Any], tasks: Iterator[Task]
    ) -> Iterator[tuple[Task, Any]]:
        """Run ``fn`` on every task, yielding ``(task, result or Failure)`` as they finish."""
        raise NotImplementedError

    def close(self) -> None:
        """Release processes and connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def die_with_parent(parent_pid: int) -> None:
    """Make a worker process end when the process that started it dies (runs in the worker).

    On Linux the kernel sends the worker SIGKILL when its parent dies
    (``PR_SET_PDEATHSIG``); elsewhere, and as a second guard, a daemon thread checks
    every half second that the parent is still there.  A ``kill -9`` of ``gridkit``
    therefore never leaves workers behind to finish communities no one collects (or to
    hold files open).

    Parameters
    ----------
    parent_pid
        The pid of the process that started the worker.
    """
    import signal
    import threading

    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the guard was set
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="gridkit-parent-watch", daemon=True).start()


def _payload(task: Task) -> Any:
    return task.payload() if callable(task.payload) else task.payload


class LocalBackend(Backend):
    """Local processes (the embedded default), or the calling process when ``jobs == 1``.

    Parameters
    ----------
    jobs
        Processes solving communities in parallel.
    """

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, int(jobs))

    def describe(self) -> str:
        if self.jobs == 1:
            return "this process"
        return f"{self.jobs} local processes"

    @property
    def slots(self) -> int:
        return self.jobs

    def outcomes(self, fn, tasks):
        if self.jobs == 1:
            for task in tasks:
                yield task, call_guarded(fn, task.community_id, _payload(task))
            return
        # fork: no re-import of the caller's script (a notebook or a script without a
        # ``__main__`` guard); the parent runs no solver threads at this point.
        # From Python 3.12 forking a process that has threads is deprecated: use
        # forkserver there (scripts then need the usual ``if __name__ == "__main__"``).
        methods = multiprocessing.get_all_start_methods()
        if "fork" in methods and sys.version_info < (3, 12):
            ctx = multiprocessing.get_context("fork")
        else:
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        limit = 2 * self.jobs
        pool = ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=ctx,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        running: dict = {}
        task = None
        try:
            pending = iter(tasks)
            exhausted = False
            while True:
                while not exhausted and len(running) < limit:
                    task = next(pending, None)
                    if task is None:
                        exhausted = True
                        break
                    future = pool.submit(call_guarded, fn, task.community_id, _payload(task))
                    running[future] = task
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    result = future.result()
                    yield task, result
        except BrokenProcessPool as exc:  # a process died (killed, out of memory)
            where = f" while solving community {task.community_id}" if task is not None else ""
            raise BackendError(
                f"a local worker process died{where} ({type(exc).__name__}: {exc}); it was "
                "killed or ran out of memory. Finished communities are kept: re-run the same "
                "command with --resume (fewer --jobs needs less memory)."
            ) from None
        finally:
            for other in running:
                other.cancel()
            # Never wait for a worker that is still solving: the run is over (or failed).
            pool.shutdown(wait=not running, cancel_futures=True)
            if running:
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    with contextlib.suppress(Exception):
                        process.kill()


def _message_log_setter(length: int):
    """A function setting the scheduler's message log length (returns the previous one).

    A closure, so cloudpickle sends it by value: the scheduler needs no gridkit.
    """

    def set_length(dask_scheduler=None):
        import collections

        import dask

        key = "distributed.admin.low-level-log-length"
        previous = dask.config.get(key, 1000)
        dask.config.set({key: length})
        comms = [*dask_scheduler.stream_comms.values(), *dask_scheduler.client_comms.values()]
        for comm in comms:
            if hasattr(comm, "recent_message_log"):
                comm.recent_message_log = collections.deque(maxlen=length)
        return previous

    return set_length


def _check_address(address: str) -> tuple[str, str, int | None]:
    """Split ``tcp://HOST:PORT``; an InputError explains anything else."""
    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls", "ucx", "ws", "wss") or not parts.hostname:
        raise InputError(
            f"--scheduler {address!r} is not a Dask scheduler address: pass `local` to start a "
            "cluster on this machine, or the address `dask scheduler` prints, e.g. "
            "tcp://10.0.0.5:8786."
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise InputError(
            f"--scheduler {address!r}: the port must be a number between 1 and 65535, "
            "e.g. tcp://10.0.0.5:8786."
        )
    return parts.scheme, parts.hostname, port


def _unreachable(address: str, why: str) -> InputError:
    return InputError(
        f"cannot reach the Dask scheduler at {address} ({why}): start it with `dask scheduler` "
        f"(and workers with `dask worker {address}`), check the address and firewall, or use "
        "--scheduler local to start a cluster on this machine."
    )


class DaskBackend(Backend):
    """A Dask ``distributed`` cluster.

    Parameters
    ----------
    scheduler
        ``"local"`` (start a ``LocalCluster`` of ``jobs`` single-threaded worker
        processes for this run), a scheduler address such as
        ``tcp://10.0.0.5:8786``, or a connected ``distributed.Client``.
    jobs
        Workers of a ``"local"`` cluster (default: all cores, each solve running one
        CP-SAT thread); ignored for an existing scheduler.
    connect_timeout
        Seconds to wait for the scheduler.
    """

    name = "dask"

    def __init__(self, scheduler: Any, *, jobs: int | None = None, connect_timeout=20.0) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise InputError(
                "--scheduler needs Dask distributed, which is not installed: "
                "pip install -e '.[dask]' (or pip install 'gridkit[dask]')."
            ) from exc
        self._distributed = distributed
        self._cluster = None
        self._own_client = True
        if isinstance(scheduler, distributed.Client):
            self.client = scheduler
            self._own_client = False
            self.address = scheduler.scheduler.address if scheduler.scheduler else "?"
        elif scheduler == "local":
            n = default_jobs() if jobs is None else max(1, int(jobs))
            self._cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.WARNING,
            )
            self.client = distributed.Client(self._cluster)
            self.address = self._cluster.scheduler_address
        else:
            address = str(scheduler)
            scheme, host, port = _check_address(address)
            if scheme == "tcp" and port:
                try:
                    socket.create_connection((host, port), timeout=connect_timeout).close()
                except OSError as exc:
                    raise _unreachable(address, exc.strerror or str(exc)) from None
            try:
                self.client = distributed.Client(address, timeout=connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise _unreachable(address, str(exc) or type(exc).__name__) from None
            self.address = address
        self._log_length = None
        try:
            self._check_workers()
            self._log_length = self._set_message_log(0)
        except BaseException:
            self.close()
            raise

    def _check_workers(self) -> None:
        """Wait for a worker; refuse workers running other code (results would differ)."""
        if not self.client.scheduler_info(n_workers=-1).get("workers"):
            log.warning("waiting for Dask workers to join %s", self.address)
            try:
                self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise InputError(
                    f"the Dask scheduler at {self.address} has no workers after "
                    f"{WORKER_WAIT_S:.0f} s: start some with `dask worker {self.address} "
                    "--nthreads 1` on each machine."
                ) from None
        try:
            envs = self.client.run(worker_environment)
        except Exception as exc:  # the workers cannot even unpickle a gridkit function
            raise InputError(
                f"the Dask workers of {self.address} cannot run gridkit ({type(exc).__name__}: "
                f"{exc}): install the same gridkit on every worker machine "
                "(pip install 'gridkit[dask]') and restart `dask worker`."
            ) from None
        mine = code_fingerprint()
        wrong = {addr: env for addr, env in envs.items() if env["fingerprint"] != mine}
        if wrong:
            here = worker_environment()["versions"]
            listed = "; ".join(
                f"{addr}: {env['versions']}"
                + (" (same versions, other gridkit source files)" if env["versions"] == here
                   else "")
                for addr, env in sorted(wrong.items())
            )  # fmt: skip
            raise InputError(
                f"{len(wrong)} Dask worker(s) run different gridkit code or libraries than this "
                f"machine ({here}), so their grids could differ: {listed}. Install the same "
                "gridkit and libraries everywhere (a gridkit file edited since a process "
                "started counts too) and restart those workers."
            )

    def _set_message_log(self, length: int) -> int | None:
        """Set the scheduler's low-level message log length; returns the previous one.

        The scheduler keeps the last ``distributed.admin.low-level-log-length``
        (1,000) messages sent to each worker, task inputs included: with one task per
        community carrying its households, that is most of the province in the
        scheduler's memory.  gridkit turns the log off for the run and restores it.
        """
        try:
            return self.client.run_on_scheduler(_message_log_setter(length))
        except Exception as exc:  # an unusual scheduler: say what to do instead
            log.warning(
                "could not turn off the Dask scheduler's message log (%s): it may keep recent "
                "task inputs in memory; start the scheduler with "
                "DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH=0",
                exc,
            )
            return None

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard URL, when the cluster serves one."""
        try:
            return self.client.dashboard_link
        except Exception:  # no dashboard (bokeh missing)
            return None

    def describe(self) -> str:
        what = "a local Dask cluster" if self._cluster is not None else f"Dask at {self.address}"
        return f"{what} ({self.slots} worker threads)"

    @property
    def slots(self) -> int:
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:
            return 1

    def outcomes(self, fn, tasks):
        distributed = self._distributed
        limit = max(4, 2 * self.slots)
        pending = iter(tasks)
        running: dict = {}  # key -> (future, task)
        queue = distributed.as_completed()

        def submit_more() -> None:
            while len(running) < limit:
                task = next(pending, None)
                if task is None:
                    return
                future = self.client.submit(
                    call_guarded, fn, task.community_id, _payload(task), key=task.key, pure=False
                )
                running[future.key] = (future, task)
                queue.add(future)

        submit_more()
        completed = 0
        try:
            for future in queue:
                _, task = running.pop(future.key)
                try:
                    result = future.result()
                except distributed.KilledWorker as exc:
                    result = Failure(
                        task.community_id,
                        "KilledWorker: every worker that tried to solve this community died "
                        "(a crash, or out of memory)",
                        str(exc),
                    )
                except distributed.client.FutureCancelledError as exc:
                    raise BackendError(
                        f"the Dask scheduler at {self.address} cancelled community "
                        f"{task.community_id} ({exc}); the cluster was probably restarted. "
                        "Finished communities are kept: re-run with --resume."
                    ) from exc
                except (OSError, TimeoutError) as exc:
                    raise BackendError(
                        f"lost the Dask scheduler at {self.address} while solving community "
                        f"{task.community_id} ({type(exc).__name__}: {exc}). Finished "
                        "communities are kept: restart the cluster and re-run with --resume."
                    ) from exc
                except Exception as exc:  # the task could not run at all (e.g. unpicklable)
                    result = Failure(
                        task.community_id, f"{type(exc).__name__}: {exc}", traceback.format_exc()
                    )
                future.release()
                completed += 1
                if completed % 64 == 0:
                    limit = max(4, 2 * self.slots)  # workers may have joined or left
                yield task, result
                submit_more()
        finally:
            left = [future for future, _ in running.values()]
            if left:
                self.client.cancel(left)
            queue.clear()

    def close(self) -> None:
        client, cluster = getattr(self, "client", None), self._cluster
        if client is not None and cluster is None and getattr(self, "_log_length", None):
            with contextlib.suppress(Exception):  # the scheduler may be gone
                client.run_on_scheduler(_message_log_setter(self._log_length))
            self._log_length = None
        if client is not None and self._own_client:
            client.close()
        if cluster is not None:
            cluster.close()
        self._cluster = None


def default_jobs() -> int:
    """Processes (or local Dask workers) by default: one per core, one CP-SAT thread each."""
    return max(1, (os.cpu_count() or 1) // WORKERS)


def open_backend(scheduler: Any = None, *, jobs: int | None = None) -> Backend:
    """The back-end for ``scheduler``: local processes (``None``) or Dask.

    Parameters
    ----------
    scheduler
        ``None`` for local processes, ``"local"`` for a ``LocalCluster``, a
        scheduler address (``tcp://HOST:PORT``) or a ``distributed.Client``.
    jobs
        Local processes (default: all cores, each solve running one CP-SAT
        thread), or the workers of a ``"local"`` Dask cluster.

    Examples
    --------
    >>> with open_backend(None, jobs=1) as backend:
    ...     backend.describe()
    'this process'
    """
    if scheduler is None:
        n = default_jobs() if jobs is None else max(1, int(jobs))
        return LocalBackend(n)
    return DaskBackend(scheduler, jobs=jobs)


def run_communities(
    fn: Callable[[Any], Any],
    tasks: Iterable[Task],
    backend: Backend,
    *,
    total: int | None = None,
    progress: bool = False,
    desc: str = "communities",
) -> Iterator[tuple[Task, Any]]:
    """Run ``fn`` over ``tasks`` on ``backend``; yield ``(task, outcome)`` as each finishes.

    Parameters
    ----------
    fn
        A module-level function (picklable by reference) taking one payload.
    tasks
        The tasks; consumed lazily, a few ahead of the running ones.
    backend
        From :func:`open_backend`.
    total
        Number of tasks, for the progress bar.
    progress
        Show a progress bar (on stderr).
    desc
        Its label.

    Yields
    ------
    (Task, result or Failure)
        In completion order; exactly one outcome per task, whatever the back-end
        and even when Dask workers die.  A task that raised yields a
        :class:`Failure`.

    Examples
    --------
    >>> tasks = [Task(i, str(i), f"k{i}", i) for i in range(3)]
    >>> with open_backend(None, jobs=1) as backend:
    ...     sorted(r for _, r in run_communities(abs, tasks, backend))
    [0, 1, 2]
    """
    bar = tqdm(total=total, desc=desc, unit="community", disable=not progress)
    started = time.perf_counter()
    try:
        for task, outcome in backend.outcomes(fn, iter(tasks)):
            bar.update()
            yield task, outcome
    finally:
        bar.close()
        log.info("ran tasks on %s in %.1f s", backend.describe(), time.perf_counter() - started)
