"""Output sets (:mod:`gridkit.outputs`): staging, journal, manifest, settle and checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gridkit.errors import InputError
from gridkit.export import outputs
from gridkit.export.outputs import JOURNAL, MANIFEST, OutputSet, check_set, settle


def _write(folder, files: dict[str, str], **options) -> dict:
    with OutputSet(folder, "demo", **options) as out:
        for name, text in files.items():
            out.path(name).write_text(text)
        return out.commit()


def test_a_set_replaces_the_previous_one_and_drops_stale_known_files(tmp_path):
    _write(tmp_path, {"a.txt": "1", "map.html": "m"}, known=["a.txt", "map.html"])
    _write(tmp_path, {"a.txt": "2"}, known=["a.txt", "map.html"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", MANIFEST]
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["command"] == "demo" and list(manifest["files"]) == ["a.txt"]
    assert check_set(tmp_path, ["a.txt"]) == manifest


def test_an_error_before_the_journal_keeps_the_previous_set(tmp_path):
    _write(tmp_path, {"a.txt": "old"})
    with pytest.raises(RuntimeError), OutputSet(tmp_path, "demo") as out:
        out.path("a.txt").write_text("new")
        raise RuntimeError("solver crashed")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert not list(tmp_path.glob(".gridkit-staging-*"))


def test_a_failure_after_the_journal_is_finished_later(tmp_path, monkeypatch):
    _write(tmp_path, {"a.txt": "old", "b.txt": "old"})

    def broken(folder, journal):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "_finish", broken)
    with pytest.raises(OSError), OutputSet(tmp_path, "demo") as out:
        out.path("a.txt").write_text("new")
        out.path("b.txt").write_text("new")
        out.commit()
    monkeypatch.undo()
    assert (tmp_path / JOURNAL).exists()  # the staging folder was kept for it
    assert settle(tmp_path)
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text() == "new"
    assert check_set(tmp_path, ["a.txt", "b.txt"]) is not None


def test_settle_finishes_every_journal_and_keeps_live_staging(tmp_path):
    # an export (labelled set) killed after its journal, then a partition in the same folder
    code = (
        "import os, signal, sys\n"
        "from gridkit import outputs\n"
        "os.environ[outputs.KILL_ENV] = '4'\n"  # write, write, journal, first move
        "with outputs.OutputSet(sys.argv[1], 'export', label='x.csv') as out:\n"
        "    out.path('x.csv').write_text('new x')\n"
        "    out.path('x_buildings.csv').write_text('new b')\n"
        "    out.commit()\n"
    )
    (tmp_path / "x.csv").write_text("old x")
    (tmp_path / "x_buildings.csv").write_text("old b")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert done.returncode == -9
    assert (tmp_path / f".x.csv{JOURNAL}").exists()
    live = tmp_path / f".gridkit-staging-{os.getpid()}-live"
    live.mkdir()
    _write(tmp_path, {"grids.geojson": "{}"})  # settles the folder first
    assert (tmp_path / "x.csv").read_text() == "new x"
    assert (tmp_path / "x_buildings.csv").read_text() == "new b"
    assert live.is_dir()  # this process is alive: its staging folder is kept
    assert [p.name for p in tmp_path.glob(".gridkit-staging-*")] == [live.name]


def test_check_set_names_the_changed_file(tmp_path):
    _write(tmp_path, {"grids.geojson": "{}", "report.json": "{}"})
    (tmp_path / "grids.geojson").write_text("{ }")
    with pytest.raises(InputError, match=r"grids\.geojson.*delete gridkit-outputs\.json"):
        check_set(tmp_path, ["grids.geojson"])
    check_set(tmp_path, ["report.json"])  # the others are fine
    (tmp_path / MANIFEST).write_text("[]")
    with pytest.raises(InputError, match=r"gridkit-outputs\.json' is damaged"):
        check_set(tmp_path, ["report.json"])


def test_only_plain_names(tmp_path):
    with OutputSet(tmp_path, "demo") as out, pytest.raises(ValueError):
        out.path("../escape.txt")
