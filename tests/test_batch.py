"""Tests for file-to-file runs (gridkit.batch, gridkit.shard) on the embedded local back-end.

``gridkit partition`` reads the households in chunks into per-community shards, solves
each community as its own task and assembles per-community results.  These tests hold
it to the contract of ``make_grids`` + ``GridPlan.write`` (byte for byte, whatever the
chunk size and the number of processes), to resume (only missing or stale results are
computed) and to failure isolation (one bad community is reported, the others finish).
The Dask back-end is tested in ``test_dask.py``.
"""

from __future__ import annotations

import json
import socket
import sys

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

import gridkit.cli.files
from gridkit.io.readers import read_boundaries, read_households
from gridkit.pipeline.plan import make_grids

TIME_LIMIT = 0.5


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_subset) -> dict:
    """The four awkward sample communities as files, one CSV row per household."""
    return write_inputs(
        tmp_path_factory.mktemp("batch_inputs"), sample_subset.communities, sample_subset.buildings
    )


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """``make_grids`` + ``GridPlan.write`` on the same files: the contract."""
    out = tmp_path_factory.mktemp("batch_reference")
    plan = make_grids(
        read_boundaries(inputs["communities"]),
        read_households(inputs["households"], input_crs="wgs84"),
        time_limit=TIME_LIMIT,
        jobs=1,
    )
    plan.write(out)
    return out


def _ok(argv) -> str:
    code, out, err = run_cli(argv)
    assert code == 0, err
    assert "Traceback" not in err
    return out


def test_same_outputs_as_make_grids_in_chunks_and_processes(inputs, reference, tmp_path):
    rows = len(pd.read_csv(inputs["households"]))
    assert rows > 2000  # several chunks of 700 rows
    out = tmp_path / "out"
    stdout = _ok(partition_args(inputs, out, "--chunk-rows", 700, "--jobs", 2))
    assert_same_outputs(reference, out)
    assert "ran on 2 local processes: 4 communities solved" in stdout
    assert "time per community: mean" in stdout
    # the default work folder is removed after a complete run
    assert sorted(p.name for p in out.iterdir()) == [
        "assignments.csv",
        "buildings.geojson",
        "gridkit-outputs.json",
        "grids.geojson",
        "report.json",
    ]


def test_resume_skips_done_communities_and_never_reuses_stale_ones(inputs, reference, tmp_path):
    work = tmp_path / "work"
    _ok(partition_args(inputs, tmp_path / "a", "--work-dir", work))
    solved = [e["community_id"] for e in log_entries(work)]
    assert len(solved) == len(set(solved)) == 4
    assert (work / "manifest.json").exists()  # an explicit work folder is kept

    # nothing changed: every community comes from the work folder, the solver is not run
    stdout = _ok(partition_args(inputs, tmp_path / "b", "--work-dir", work, "--resume"))
    assert "0 communities solved, 4 taken from the work folder (--resume)" in stdout
    assert len(log_entries(work)) == 4
    assert_same_outputs(reference, tmp_path / "b")

    # one community's households change: only that community is solved again
    table = pd.read_csv(inputs["households"], dtype=str, keep_default_na=False)
    changed = inputs["households"].with_name("changed.csv")
    table.iloc[:-1].to_csv(changed, index=False)  # the last row (last community) is gone
    args = partition_args({**inputs, "households": changed}, tmp_path / "c", "--work-dir", work)
    stdout = _ok([*args, "--resume"])
    assert "1 community solved, 3 taken from the work folder (--resume)" in stdout

    # other settings: no result is reused
    stdout = _ok(partition_args(inputs, tmp_path / "d", "--work-dir", work, "--resume",
                                time_limit=0.4))  # fmt: skip
    assert "4 communities solved" in stdout and "taken from" not in stdout


def test_a_failed_community_is_reported_and_resume_retries_only_it(
    inputs, reference, sample_subset, tmp_path, monkeypatch
):
    """An invalid outline (a bow tie) breaks one community; the others are written."""
    bad_id = sample_subset.tight_id
    read = gridkit.cli.files.read_communities

    def with_bowtie(args):
        communities = read(args)
        k = communities.index[communities["community_id"] == bad_id][0]
        communities.loc[k, "geometry"] = bowtie_of(communities.geometry[k])
        return communities

    out, work = tmp_path / "out", tmp_path / "out" / ".gridkit-work"
    monkeypatch.setattr(gridkit.cli.files, "read_communities", with_bowtie)
    code, stdout, stderr = run_cli(partition_args(inputs, out))
    assert code == 3, stderr
    assert f"community {bad_id} failed: GEOSException" in stderr
    assert "1 of 4 communities could not be partitioned" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [f["community_id"] for f in report["failed_communities"]] == [bad_id]
    assert report["totals"]["communities_failed"] == 1
    entry = next(c for c in report["communities"] if c["community_id"] == bad_id)
    assert entry["solver_status"] == "FAILED" and entry["grids"] == 0 and not entry["bounds_met"]
    table = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False,
                        encoding="utf-8-sig")  # fmt: skip
    failed = table["reason"] == "community_failed"
    assert failed.any() and (table.loc[failed, "grid_code"] == "").all()
    assert (table.loc[table["grid_code"] != "", "community_id"] != bad_id).all()
    grids = json.loads((out / "grids.geojson").read_text(encoding="utf-8"))
    other_ids = set(sample_subset.communities["community_id"]) - {bad_id}
    assert {f["properties"]["community_id"] for f in grids["features"]} == other_ids
    assert len(list((work / "failed").iterdir())) == 1  # the traceback is kept

    # fixed outline: --resume solves only the failed community, and all is as make_grids
    monkeypatch.setattr(gridkit.cli.files, "read_communities", read)
    stdout = _ok([*partition_args(inputs, out), "--resume"])
    assert "1 community solved, 3 taken from the work folder (--resume)" in stdout
    assert_same_outputs(reference, out)
    assert not work.exists()


def _data_error(argv) -> str:
    code, _, err = run_cli(argv)
    assert code == 2, err
    assert "Traceback" not in err and "error: " in err
    return err[err.index("error: ") :]


def test_errors_in_later_chunks_name_the_file_rows(inputs, tmp_path):
    table = pd.read_csv(inputs["households"], dtype=str, keep_default_na=False)
    table["households"] = "1"
    table.loc[1233, "households"] = "-3"  # data row 1,234: the 234th row of the third chunk
    bad = tmp_path / "bad.csv"
    table.to_csv(bad, index=False)
    err = _data_error(partition_args({**inputs, "households": bad}, tmp_path / "o",
                                     "--chunk-rows", 500))  # fmt: skip
    assert "row 234" in err or "rows 234" in err, err
    assert "from data row 1,001 to 1,500" in err and "add 1,000" in err
    assert not (tmp_path / "o").exists()  # nothing left behind


def test_duplicate_ids_across_chunks(inputs, tmp_path):
    table = pd.read_csv(inputs["households"], dtype=str, keep_default_na=False)
    table.loc[1500, "household_id"] = table.loc[9, "household_id"]
    bad = tmp_path / "dup.csv"
    table.to_csv(bad, index=False)
    err = _data_error(partition_args({**inputs, "households": bad}, tmp_path / "o",
                                     "--chunk-rows", 500))  # fmt: skip
    assert f"household id {table.loc[9, 'household_id']!r} of row 1501 was already used by " \
        "row 10" in err


def test_work_dir_must_be_new_empty_or_gridkit_s(inputs, tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "thesis.docx").write_text("precious")
    err = _data_error(partition_args(inputs, tmp_path / "o", "--work-dir", work))
    assert "is not empty and is not a gridkit work folder" in err
    assert (work / "thesis.docx").read_text() == "precious"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler(inputs, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    err = _data_error(partition_args(inputs, tmp_path / "o", "--scheduler", address))
    assert f"cannot reach the Dask scheduler at {address}" in err
    assert "start it with `dask scheduler`" in err and "--scheduler local" in err
    assert not (tmp_path / "o").exists()


def test_not_a_scheduler_address(inputs, tmp_path):
    err = _data_error(partition_args(inputs, tmp_path / "o", "--scheduler", "my-cluster"))
    assert "not a Dask scheduler address" in err and "tcp://" in err


def test_dask_not_installed(inputs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    err = _data_error(partition_args(inputs, tmp_path / "o", "--scheduler", "local"))
    assert "pip install -e '.[dask]'" in err
