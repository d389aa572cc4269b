"""Fault injection: ``kill -9`` at every step of writing outputs (issue 18, classes 3-4).

Each command (``partition``, ``regenerate``, ``assign``, ``audit``, ``export``) writes
into a folder that holds a complete earlier set.  The command runs in a forked child
with ``GRIDKIT_KILL_AT_STEP=N`` (:data:`gridkit.outputs.KILL_ENV`): the child
SIGKILLs itself at the N-th step of writing its outputs (a file started in staging,
the journal, each move into place, each removal of a stale file, the clean-up), for
N = 1, 2, ... until a run finishes.  After every kill:

- as left on disk, the folder holds the complete previous set or the complete new
  one, or it holds the commit journal (the new set is then complete in staging);
- once any gridkit command has looked at it (:func:`gridkit.outputs.settle`), it holds
  exactly the previous set or exactly the new set, every file as its manifest says.

A real ``kill -9`` of ``gridkit partition --jobs 2`` while its workers solve is
followed at once by ``--resume``, which must find the work folder free and finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from batchfiles import run_cli, write_inputs
from hostile import write_corpus, write_roster

from gridkit.cli.commands import main
from gridkit.export import outputs
from gridkit.export.outputs import JOURNAL, KILL_ENV, MANIFEST, settle

#: Every file name a command may write (beside its manifest).
KNOWN = {
    "partition": ["grids.geojson", "assignments.csv", "report.json", "buildings.geojson",
                  "map.html"],
    "regenerate": ["grids.geojson", "assignments.csv", "report.json", "buildings.geojson",
                   "changes.csv", "diff.geojson", "summary.json", "codes.json", "map.html"],
    "assign": ["roster.csv", "grids.geojson", "shortages.csv", "staffing_report.json",
               "map.html"],
    "audit": ["audit.geojson", "gaps.geojson", "assignments.csv", "report.json"],
    "export": ["x.csv", "x_buildings.csv"],
}  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _state(folder: Path, command: str) -> dict[str, str]:
    """The command's files in ``folder`` (and the manifest) with their SHA-256."""
    names = [*KNOWN[command], MANIFEST]
    return {n: _digest(folder / n) for n in names if (folder / n).is_file()}


def _complete(folder: Path, command: str) -> bool:
    """Whether ``folder`` holds one whole set: every file as its manifest lists it, no other."""
    if command == "export":
        return True  # no manifest: compared with the reference sets instead
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    files = manifest["files"]
    present = {n for n in KNOWN[command] if (folder / n).is_file()}
    if present != set(files):
        return False
    return all(_digest(folder / n) == info["sha256"] for n, info in files.items())


def run_killed(argv: list[str], step: int) -> int | None:
    """``gridkit argv`` in a forked child killed at ``step``; its exit code, None if killed."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, only the command
        code = 99
        try:
            os.environ[KILL_ENV] = str(step)
            outputs.reset_fault_steps()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            code = main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return None
    return os.WEXITSTATUS(status)


def sweep(
    tmp_path: Path,
    command: str,
    old: Path,
    new_argv: Callable[[Path], list[str]],
    new_reference: Path,
    *,
    label: str | None = None,
    same: Callable[[dict, dict], bool] | None = None,
) -> dict[str, int]:
    """Kill ``new_argv`` at every step over a copy of the complete set in ``old``.

    Returns how many kills left the previous set, the new set, or a journal to finish.
    """
    old_state = _state(old, command)
    new_state = _state(new_reference, command)
    same = same or (lambda a, b: a == b)

    def is_new(state: dict) -> bool:  # the new set: the same layers as the reference run
        keys = [n for n in new_state if n not in ("report.json", MANIFEST, "summary.json",
                                                  "staffing_report.json", "map.html")]  # fmt: skip
        return set(state) - {MANIFEST} == set(new_state) - {MANIFEST} and all(
            state.get(k) == new_state[k] for k in keys
        )

    seen = {"previous": 0, "new": 0, "journal": 0, "steps": 0}
    for step in range(1, 60):
        folder = tmp_path / f"{command}-{step}"
        shutil.copytree(old, folder)
        code = run_killed(new_argv(folder), step)
        if code is not None:
            assert code == 0, f"{command} failed without a kill (step {step})"
            assert _complete(folder, command) and is_new(_state(folder, command))
            seen["steps"] = step - 1
            break
        raw = _state(folder, command)
        journal = (folder / (JOURNAL if label is None else f".{label}{JOURNAL}")).exists()
        if journal:
            seen["journal"] += 1
        elif same(raw, old_state):
            seen["previous"] += 1
        else:
            assert is_new(raw) and _complete(folder, command), (
                f"{command} killed at step {step} left a mix: {sorted(raw)}"
            )
            seen["new"] += 1
        settle(folder, label=label)
        after = _state(folder, command)
        assert not list(folder.glob(".gridkit-staging-*")), "staging left behind"
        assert same(after, old_state) or (is_new(after) and _complete(folder, command)), (
            f"{command} killed at step {step}: after settle, neither set: {sorted(after)}"
        )
        if journal:
            assert is_new(after)
        shutil.rmtree(folder)
    else:  # pragma: no cover
        pytest.fail(f"{command} never finished")
    print(f"\n{command}: {seen}")
    assert seen["previous"] and seen["journal"]
    return seen


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    paths = write_corpus(folder / "in")
    return folder, paths


def _partition(paths, out, *extra) -> list[str]:
    return [
        "partition", "--communities", str(paths["communities"]),
        "--households", str(paths["households"]), "--input-crs", "wgs84",
        "--time-limit", "0.3", "--jobs", "1", "--out", str(out), "-q", *map(str, extra),
    ]  # fmt: skip


def _ok(argv):
    code, _, err = run_cli(argv)
    assert code == 0, err


def test_partition_killed_at_every_step(corpus, tmp_path):
    _, paths = corpus
    old, ref, work = tmp_path / "old", tmp_path / "ref", tmp_path / "work"
    _ok(_partition(paths, old, "--max-households", 700, "--min-households", 300))  # with a map
    assert (old / "map.html").exists()
    new = lambda out: _partition(paths, out, "--no-map", "--work-dir", work, "--resume")  # noqa: E731
    _ok(new(ref))
    seen = sweep(tmp_path, "partition", old, new, ref)
    assert seen["steps"] >= 10  # 4 files, journal, 5 moves, 1 removal (map.html), clean-up


def test_regenerate_killed_at_every_step(corpus, tmp_path):
    _, paths = corpus
    previous, old, ref = tmp_path / "previous", tmp_path / "old", tmp_path / "ref"
    _ok(_partition(paths, previous, "--no-map"))

    def regen(out, *extra):
        return ["regenerate", "--previous", str(previous), "--communities",
                str(paths["communities"]), "--households", str(paths["households"]),
                "--input-crs", "wgs84", "--time-limit", "0.3", "--jobs", "1", "--out", str(out),
                "-q", *map(str, extra)]  # fmt: skip

    _ok(regen(old, "--max-households", 700, "--min-households", 300))
    _ok(regen(ref, "--no-map"))
    sweep(tmp_path, "regenerate", old, lambda out: regen(out, "--no-map"), ref)


def test_assign_killed_at_every_step(corpus, tmp_path):
    _, paths = corpus
    grids, old, ref = tmp_path / "grids", tmp_path / "old", tmp_path / "ref"
    _ok(_partition(paths, grids, "--no-map"))
    rosters = [write_roster(grids / "grids.geojson", tmp_path / f"r{s}.csv", seed=s)
               for s in (0, 1)]  # fmt: skip

    def assign(out, roster, *extra):
        return ["assign", "--grids", str(grids), "--workers", str(roster), "--out", str(out),
                "--time-limit", "2", "-q", *extra]  # fmt: skip

    _ok(assign(old, rosters[0]))
    _ok(assign(ref, rosters[1], "--no-map"))
    sweep(tmp_path, "assign", old, lambda out: assign(out, rosters[1], "--no-map"), ref)


def test_audit_killed_at_every_step(corpus, tmp_path):
    _, paths = corpus
    grids, old, ref = tmp_path / "grids", tmp_path / "old", tmp_path / "ref"
    _ok(_partition(paths, grids, "--no-map"))

    def audit(out, *extra):
        return ["audit", "--grids", str(grids / "grids.geojson"), "--households",
                str(paths["households"]), "--input-crs", "wgs84", "--out", str(out), "-q",
                *map(str, extra)]  # fmt: skip

    _ok(audit(old, "--max-households", 600))
    _ok(audit(ref))
    sweep(tmp_path, "audit", old, audit, ref)


def test_export_killed_at_every_step(corpus, tmp_path):
    _, paths = corpus
    grids, old, ref = tmp_path / "grids", tmp_path / "old", tmp_path / "ref"
    _ok(_partition(paths, grids, "--no-map"))

    def export(out, crs):
        return ["export", str(grids), "--to", str(out / "x.csv"), "--layers", "grids,buildings",
                "--crs", crs, "-q"]  # fmt: skip

    _ok(export(old, "gcj02"))
    _ok(export(ref, "wgs84"))
    assert _state(old, "export") != _state(ref, "export")
    sweep(tmp_path, "export", old, lambda out: export(out, "wgs84"), ref, label="x.csv")


def test_partition_killed_at_random_moments(corpus, tmp_path):
    """SIGKILL after a delay, wherever the run is (reading, solving, mid-write of a file)."""
    _, paths = corpus
    old, work = tmp_path / "old", tmp_path / "work"
    _ok(_partition(paths, old, "--max-households", 700, "--min-households", 300))
    old_state = _state(old, "partition")
    outcomes = {"previous": 0, "journal": 0, "new": 0}
    for k, delay in enumerate((0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)):
        folder = tmp_path / f"run{k}"
        shutil.copytree(old, folder)
        argv = _partition(paths, folder, "--no-map", "--work-dir", work, "--resume")
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                code = main(argv)
            finally:
                os._exit(code)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raw = _state(folder, "partition")
        if (folder / JOURNAL).exists():
            outcomes["journal"] += 1
        elif raw == old_state:
            outcomes["previous"] += 1
        else:
            assert _complete(folder, "partition") and "map.html" not in raw, sorted(raw)
            outcomes["new"] += 1
        settle(folder)
        after = _state(folder, "partition")
        assert after == old_state or (_complete(folder, "partition") and "map.html" not in after)
    print(f"\nrandom kills: {outcomes}")
    assert sum(outcomes.values()) == 10


# --------------------------------------------------------------------------- --jobs 2


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_resume_right_after_kill_with_two_jobs(sample_subset, tmp_path):
    inputs = write_inputs(tmp_path / "in", sample_subset.communities, sample_subset.buildings)
    out, work = tmp_path / "out", tmp_path / "work"
    argv = [
        "partition", "--communities", str(inputs["communities"]),
        "--households", str(inputs["households"]), "--input-crs", "wgs84", "--no-map",
        "--time-limit", "1.5", "--jobs", "2", "--out", str(out), "--work-dir", str(work), "-q",
    ]  # fmt: skip
    errors = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gridkit", *argv],
                            stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
    deadline = time.monotonic() + 120
    log = work / "log.jsonl"
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid) or workers
        if log.exists() and log.read_text().strip() and workers:
            break
        time.sleep(0.05)
    errors.close()
    assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
    assert len(workers) >= 1
    proc.kill()  # kill -9 while the other communities are being solved
    proc.wait()
    # the workers die with their parent (at once), so nothing holds the work folder
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "worker processes outlived the killed run"
    # a fresh process, as a user would run it (and with the same code fingerprint as the
    # killed run, even while gridkit's sources are being edited)
    resumed = subprocess.run([sys.executable, "-m", "gridkit", *argv[:-1], "--resume"],
                             capture_output=True, text=True, check=False)  # fmt: skip
    code, stdout, err = resumed.returncode, resumed.stdout, resumed.stderr
    assert code == 0, err
    assert "taken from the work folder (--resume)" in stdout
    assert (out / "grids.geojson").exists() and (out / "assignments.csv").stat().st_size > 0
