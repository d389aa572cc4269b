"""The Dask back-end against a real cluster: a ``dask scheduler`` and two ``dask worker``
processes started on localhost by the ``cluster`` fixture (the recipe of docs/cluster.md).

Eight communities of the sample district, one CSV row per household, go through
``gridkit partition --scheduler tcp://127.0.0.1:PORT`` and must give byte for byte the
outputs of the embedded local back-end; a worker killed in the middle of a run must
neither lose nor duplicate a community; a resumed run solves nothing again; a failing
community is reported while the others finish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from batchfiles import (
    assert_same_outputs,
    bowtie_of,
    log_entries,
    partition_args,
    run_cli,
    write_inputs,
)

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed: pip install -e '.[dask]'"
)

from gridkit.io.readers import read_boundaries  # noqa: E402
from gridkit.pipeline.batch import partition_files  # noqa: E402
from gridkit.pipeline.plan import make_grids  # noqa: E402
from gridkit.pipeline.shards import HouseholdFile  # noqa: E402

TIME_LIMIT = 0.5
DASK = Path(sys.executable).parent / "dask"


class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes on localhost (logs in ``folder``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.workers: dict[str, subprocess.Popen] = {}
        self.scheduler = self._start(
            "scheduler",
            [
                "scheduler",
                "--host", "127.0.0.1",
                "--port", "0",
                "--dashboard-address", "127.0.0.1:0",
                "--scheduler-file", str(folder / "scheduler.json"),
            ],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (folder / "scheduler.json").exists():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but let it be flushed
        self.address = json.loads((folder / "scheduler.json").read_text())["address"]

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with (self.folder / f"{name}.log").open("w") as log:  # the process keeps its copy
            return subprocess.Popen(
                [str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
            )

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def start_worker(self, name: str) -> None:
        """``dask worker ADDRESS --nthreads 1 --no-nanny`` (a kill really removes it)."""
        self.workers[name] = self._start(
            name,
            [
                "worker", self.address,
                "--name", name,
                "--nthreads", "1",
                "--nworkers", "1",
                "--no-nanny",
                "--no-dashboard",
                "--memory-limit", "0",
                "--local-directory", str(self.folder / name),
            ],
        )  # fmt: skip

    def wait_for_workers(self, n: int) -> None:
        with distributed.Client(self.address, timeout=30) as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers.values(), self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _log_lengths():
    """A function for ``run_on_scheduler`` (a closure: sent by value, not by module)."""

    def lengths(dask_scheduler=None) -> list:
        return sorted({c.recent_message_log.maxlen for c in dask_scheduler.stream_comms.values()})

    return lengths


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers, stopped after the module."""
    if not DASK.exists():
        pytest.fail(f"the `dask` command is missing beside {sys.executable}: pip install dask")
    c = Cluster(tmp_path_factory.mktemp("dask_cluster"))
    try:
        c.start_worker("w1")
        c.start_worker("w2")
        c.wait_for_workers(2)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def communities8(sample, sample_subset):
    """The four awkward communities and four ordinary ones (about 20,000 households)."""
    communities, buildings = sample
    totals = buildings.groupby("community_id")["households"].sum()
    awkward = set(sample_subset.communities["community_id"])
    ordinary = [c for c in totals[(totals > 1500) & (totals < 3000)].index if c not in awkward]
    keep = sorted(awkward | set(ordinary[:4]))
    return (
        communities[communities["community_id"].isin(keep)].reset_index(drop=True),
        buildings[buildings["community_id"].isin(keep)].reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, communities8) -> dict:
    return write_inputs(tmp_path_factory.mktemp("dask_inputs"), *communities8)


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Path:
    """The embedded local back-end (one process): the reference outputs."""
    out = tmp_path_factory.mktemp("dask_local") / "out"
    code, _, err = run_cli(partition_args(inputs, out, "--jobs", 1, time_limit=TIME_LIMIT))
    assert code == 0, err
    return out


def test_dask_gives_the_local_outputs(cluster, inputs, local_run, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    argv = partition_args(inputs, out, "--scheduler", cluster.address, "--work-dir", work,
                          "--chunk-rows", 5000, time_limit=TIME_LIMIT)  # fmt: skip
    code, stdout, stderr = run_cli(argv)
    assert code == 0, stderr
    assert f"ran on Dask at {cluster.address} (2 worker threads): 8 communities solved" in stdout
    assert "Dask dashboard: http://127.0.0.1:" in stderr  # printed before the work starts
    assert_same_outputs(local_run, out)
    # both workers took part, each community exactly once
    entries = log_entries(work)
    assert sorted(e["community_id"] for e in entries) == sorted(
        json.loads((out / "report.json").read_text())["communities"][i]["community_id"]
        for i in range(8)
    )
    assert len({e["worker"] for e in entries}) == 2

    # the scheduler's message log (which would hold every community's households) is
    # turned off during the run and restored afterwards
    with distributed.Client(cluster.address, timeout=30) as client:
        assert client.run_on_scheduler(_log_lengths()) == [1000]

    # resume: nothing is solved again, the outputs are the same
    code, stdout, stderr = run_cli([*argv, "--resume"])
    assert code == 0, stderr
    assert "0 communities solved, 8 taken from the work folder (--resume)" in stdout
    assert len(log_entries(work)) == 8
    assert_same_outputs(local_run, out)


def test_a_killed_worker_loses_and_duplicates_nothing(cluster, inputs, local_run, tmp_path):
    """SIGKILL the worker that is solving a community: the scheduler reruns it elsewhere."""
    out, work = tmp_path / "out", tmp_path / "work"
    argv = partition_args(inputs, out, "--scheduler", cluster.address, "--work-dir", work, "-q",
                          time_limit=TIME_LIMIT)  # fmt: skip
    killed_key = killed_pid = None
    with distributed.Client(cluster.address, timeout=30) as client:
        pids = client.run(os.getpid)  # worker address -> process id
        with (tmp_path / "stderr.txt").open("w") as err:
            run = subprocess.Popen(
                [str(Path(sys.executable).parent / "gridkit"), *argv],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            deadline = time.monotonic() + 120
            while killed_pid is None and time.monotonic() < deadline and run.poll() is None:
                busy = {w: keys for w, keys in client.processing().items() if keys}
                if len(log_entries(work)) >= 1 and busy:
                    worker, keys = sorted(busy.items())[0]
                    killed_key, killed_pid = str(keys[0]), pids[worker]
                    os.kill(killed_pid, signal.SIGKILL)
                else:
                    time.sleep(0.05)
            run.wait(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert killed_pid is not None, "the run ended before a worker could be killed"
    assert killed_pid in {p.pid for p in cluster.workers.values()}
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr

    entries = log_entries(work)
    ids = [e["community_id"] for e in entries]
    assert len(ids) == len(set(ids)) == 8, ids  # none lost, none duplicated
    assert all(e["status"] == "ok" for e in entries)
    # the community that was being solved when its worker died was solved by the survivor
    victim = next(e for e in entries if killed_key == f"gridkit-{e['community_id']}-"
                  f"{e['input_hash'][:16]}")  # fmt: skip
    assert not victim["worker"].endswith(f":{killed_pid}")
    assert_same_outputs(local_run, out)

    # bring the cluster back to two workers for the tests that follow
    name = next(n for n, p in cluster.workers.items() if p.pid == killed_pid)
    cluster.workers[name].wait()
    cluster.start_worker(name)
    cluster.wait_for_workers(2)


def test_a_failing_community_is_reported_and_the_others_finish(
    cluster, inputs, communities8, tmp_path
):
    communities = read_boundaries(inputs["communities"])
    bad_id = str(communities["community_id"].iloc[3])
    communities.loc[3, "geometry"] = bowtie_of(communities.geometry[3])
    with pytest.warns(Warning, match="outside every community"):  # the bow tie is smaller
        run = partition_files(
            communities,
            HouseholdFile(str(inputs["households"]), input_crs="wgs84"),
            tmp_path / "out",
            time_limit=TIME_LIMIT,
            scheduler=cluster.address,
        )
    assert list(run.failures) == [bad_id]
    assert run.failures[bad_id].error.startswith("GEOSException: TopologyException")
    assert run.solved == 7
    assert [f["community_id"] for f in run.report["failed_communities"]] == [bad_id]
    table = pd.read_csv(tmp_path / "out" / "assignments.csv", dtype=str, keep_default_na=False,
                        encoding="utf-8-sig")  # fmt: skip
    assert set(table.loc[table["community_id"] == bad_id, "reason"]) == {"community_failed"}
    assert run.work_dir is not None and (run.work_dir / "failed").is_dir()


def test_make_grids_on_the_cluster(cluster, communities8):
    """The in-memory API takes the same back-ends; the plan does not depend on them."""
    communities, buildings = communities8
    small = communities["community_id"].iloc[:3]
    c = communities[communities["community_id"].isin(small)]
    b = buildings[buildings["community_id"].isin(small)]
    here = make_grids(c, b, time_limit=TIME_LIMIT, jobs=1)
    there = make_grids(c, b, time_limit=TIME_LIMIT, scheduler=cluster.address)
    pd.testing.assert_frame_equal(here.grids, there.grids)
    pd.testing.assert_frame_equal(here.assignments, there.assignments)


def test_local_cluster_gives_the_local_outputs(inputs, local_run, tmp_path):
    """``--scheduler local`` starts a LocalCluster of --jobs workers for the run, quietly."""
    out = tmp_path / "out"
    argv = partition_args(inputs, out, "--scheduler", "local", "--jobs", 2, time_limit=TIME_LIMIT)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "gridkit"), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ran on a local Dask cluster (2 worker threads): 8 communities solved" in proc.stdout
    assert "Dask dashboard: http://" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert "INFO" not in proc.stderr and "distributed." not in proc.stderr, proc.stderr
    assert_same_outputs(local_run, out)
