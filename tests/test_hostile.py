"""Hostile and damaged inputs, without a browser (issue 18, classes 3 and 5-8).

- spreadsheet formulas never reach a CSV cell gridkit writes (``assignments.csv``,
  ``roster.csv``, ``shortages.csv``, ``changes.csv``, the CSV export, ``write_workers``),
  numbers stay numbers, and gridkit reads its own ids back unchanged;
- every damaged ``--previous`` folder and corrupt output folder given to a command is an
  ``error:`` naming the file and the fix, exit code 2, never a traceback;
- the work folder never unpickles anything and notices content changes that keep the
  size and the timestamp;
- a killed local worker is an ``error:``, and ``--resume`` works right after;
- ``audit --input-crs bd09`` leaves gridkit's own WGS84 grids alone.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from batchfiles import run_cli
from hostile import (
    FORMULAS,
    NUMBERS,
    SCRIPTS,
    formula_cells,
    hostile_previous,
    write_corpus,
    write_roster,
)

from gridkit.crs import from_wgs84
from gridkit.export.files import original_text, spreadsheet_safe
from gridkit.pipeline import batch
from gridkit.pipeline.storage import DamagedWorkFile, load_arrays, save_arrays
from gridkit.pipeline.workdir import community_key


def _partition_argv(paths: dict, out: Path, *extra, quiet: bool = True) -> list[str]:
    return [
        "partition", "--communities", str(paths["communities"]),
        "--households", str(paths["households"]), "--input-crs", "wgs84",
        "--time-limit", "0.3", "--jobs", "1", "--out", str(out), "--no-map",
        *(["-q"] if quiet else []), *map(str, extra),
    ]  # fmt: skip


def _ok(argv: list[str]) -> str:
    code, out, err = run_cli(argv)
    assert code == 0, err
    assert "Traceback" not in err
    return out


def _error(argv: list[str], *names: str) -> str:
    """Run ``argv``: exit 2 with one ``error:`` naming every one of ``names``, no traceback."""
    code, _, err = run_cli(argv)
    assert code == 2, err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, f"{name!r} not named in: {err}"
    return err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = write_corpus(folder / "in")
    out = folder / "out"
    _ok(_partition_argv(paths, out))  # barriers and compounds: their own test below
    return folder, paths, out


# --------------------------------------------------------------------------- class 5: CSV


def test_spreadsheet_safe_rule():
    cells = [*FORMULAS, "\r=1+1", "'quoted", *NUMBERS, "plain", "网格", None, ""]
    frame = pd.DataFrame({"text": cells, "n": np.arange(len(cells)) - 5.5, f"{FORMULAS[0]}": 1})
    safe = spreadsheet_safe(frame)
    out = safe["text"].tolist()
    for before, after in zip(cells, out, strict=True):
        if before is None:
            assert pd.isna(after)
            continue
        if before in NUMBERS or before in ("plain", "网格", ""):
            assert after == before
        else:
            assert after == "'" + before
        assert original_text(after) == before
    assert safe["n"].tolist() == frame["n"].tolist()  # numbers untouched
    assert safe.columns[2] == "'" + FORMULAS[0]
    assert frame["text"].fillna("NA").tolist() == [("NA" if c is None else c) for c in cells]


def test_no_formula_in_any_csv_gridkit_writes(corpus, tmp_path):
    _folder, paths, out = corpus
    written = [out / "assignments.csv"]
    roster = write_roster(out / "grids.geojson", tmp_path / "roster.csv")
    _ok(["assign", "--grids", str(out), "--workers", str(roster), "--out",
         str(tmp_path / "staff"), "--no-map", "--time-limit", "2", "-q"])  # fmt: skip
    written += [tmp_path / "staff" / "roster.csv", tmp_path / "staff" / "shortages.csv"]
    _ok(["export", str(out), "--to", str(tmp_path / "x" / "grids.csv"), "--layers",
         "grids,buildings", "-q"])  # fmt: skip
    written += [tmp_path / "x" / "grids.csv", tmp_path / "x" / "grids_buildings.csv"]
    _ok(["audit", "--grids", str(out / "grids.geojson"), "--households",
         str(paths["households"]), "--input-crs", "wgs84", "--out", str(tmp_path / "audit"),
         "-q"])  # fmt: skip
    written.append(tmp_path / "audit" / "assignments.csv")
    from gridkit.staffing.roster import read_workers, write_workers

    written.append(write_workers(read_workers(roster, input_crs="wgs84"), tmp_path / "workers.csv"))
    for path in written:
        assert path.stat().st_size > 0
        assert formula_cells(path) == [], path
    ids = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False)["household_id"]
    raw = pd.read_csv(paths["households"], dtype=str, keep_default_na=False)["household_id"]
    raw = raw.str.strip()  # the reader strips cells (a leading tab too)
    assert ids.map(original_text).tolist() == raw.tolist()  # machine-readable, one rule
    assert {"-12.5", "+86", "1e-3"} <= set(ids)  # numbers stay as they are
    assert "'-12.5#27" not in set(ids) and "'+1+1#1" in set(ids)  # formulas do not
    note = pd.read_csv(tmp_path / "x" / "grids_buildings.csv", dtype=str).columns
    assert not any(str(c)[:1] in "=+-@|" for c in note)


def test_regenerate_reads_its_own_neutralised_ids(corpus, tmp_path):
    _, paths, out = corpus
    from gridkit.regenerate import read_previous

    previous = read_previous(out)
    raw = pd.read_csv(paths["households"], dtype=str, keep_default_na=False)["household_id"]
    assert previous.household_ids == set(raw.str.strip())
    regen = tmp_path / "regen"
    _ok(["regenerate", "--previous", str(out), "--communities", str(paths["communities"]),
         "--households", str(paths["households"]), "--input-crs", "wgs84", "--time-limit",
         "0.3", "--jobs", "1", "--out", str(regen), "--no-map", "-q"])  # fmt: skip
    summary = json.loads((regen / "summary.json").read_text(encoding="utf-8"))
    assert summary["households_moved"] == 0 and summary["households_new"] == 0
    assert formula_cells(regen / "changes.csv") == []
    assert formula_cells(regen / "assignments.csv") == []


def test_barriers_and_compounds_with_payloads(corpus, tmp_path):
    """Payload names and columns in the barrier and compound layers: text in the report."""
    _, paths, _ = corpus
    out = tmp_path / "out"
    _ok(_partition_argv(paths, out, "--compounds", paths["compounds"],
                        "--barriers", paths["barriers"]))  # fmt: skip
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert SCRIPTS[2] in json.dumps(report, ensure_ascii=False)  # the barrier's name, as text
    assert formula_cells(out / "assignments.csv") == []


# --------------------------------------------------------------------------- class 6


def _damage(folder: Path, name: str, how: str) -> None:
    path = folder / name
    if how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"\x00\xff\xfe garbage \x89PNG" * 40)
    else:
        raise AssertionError(how)


def _no_manifest_copy(out: Path, to: Path) -> Path:
    """A copy of an output folder as a person might hand it over (no manifest)."""
    shutil.copytree(out, to)
    (to / "gridkit-outputs.json").unlink()
    return to


def _edit_grids(folder: Path, **columns) -> None:
    grids = gpd.read_file(folder / "grids.geojson")
    for col, values in columns.items():
        grids[col] = values if not callable(values) else values(grids)
    grids.to_file(folder / "grids.geojson", engine="pyogrio")


DAMAGED_PREVIOUS = {
    "grids truncated": ("grids.geojson", lambda f: _damage(f, "grids.geojson", "truncate")),
    "grids empty": ("grids.geojson", lambda f: _damage(f, "grids.geojson", "empty")),
    "grids garbage": ("grids.geojson", lambda f: _damage(f, "grids.geojson", "garbage")),
    "codes.json not json": ("codes.json", lambda f: (f / "codes.json").write_text("{oops")),
    "codes.json a list": ("codes.json", lambda f: (f / "codes.json").write_text("[1, 2]")),
    "codes.json issued not a list": (
        "codes.json",
        lambda f: (f / "codes.json").write_text('{"communities": {"A": {"issued": 7}}}'),
    ),
    "codes.json bad codes": (
        "codes.json",
        lambda f: (f / "codes.json").write_text('{"communities": {"A": {"issued": ["A-1x"]}}}'),
    ),
    "assignments garbage": (
        "assignments.csv",
        lambda f: (f / "assignments.csv").write_bytes(b'"a,"b\n"\x00\xff' * 50),
    ),
    "assignments empty": ("assignments.csv", lambda f: _damage(f, "assignments.csv", "empty")),
    "codes without 3 digits": (
        "grids.geojson",
        lambda f: _edit_grids(f, grid_code=lambda g: [f"X{i}" for i in range(len(g))]),
    ),
    "households not numbers": (
        "grids.geojson",
        lambda f: _edit_grids(f, households=lambda g: ["many"] * len(g)),
    ),
}


@pytest.mark.parametrize("case", list(DAMAGED_PREVIOUS))
def test_damaged_previous_is_an_error_naming_the_file(corpus, tmp_path, case):
    _, paths, out = corpus
    name, damage = DAMAGED_PREVIOUS[case]
    previous = _no_manifest_copy(out, tmp_path / "previous")
    if name == "codes.json" and not (previous / "codes.json").exists():
        (previous / "codes.json").write_text("{}")
    damage(previous)
    _error(["regenerate", "--previous", str(previous), "--communities",
            str(paths["communities"]), "--households", str(paths["households"]),
            "--input-crs", "wgs84", "--time-limit", "0.3", "--jobs", "1",
            "--out", str(tmp_path / "o"), "-q"], name)  # fmt: skip
    assert not (tmp_path / "o" / "grids.geojson").exists()


MANIFEST_CASES = {
    "grids changed": ("grids.geojson", lambda f: _damage(f, "grids.geojson", "truncate")),
    "assignments removed": ("assignments.csv", lambda f: (f / "assignments.csv").unlink()),
    "manifest damaged": (
        "gridkit-outputs.json",
        lambda f: (f / "gridkit-outputs.json").write_text("{not json"),
    ),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
@pytest.mark.parametrize("command", ["regenerate", "map", "export", "assign"])
def test_a_folder_that_is_not_the_set_gridkit_wrote_is_refused(corpus, tmp_path, case, command):
    _, paths, out = corpus
    name, damage = MANIFEST_CASES[case]
    folder = tmp_path / "folder"
    shutil.copytree(out, folder)
    damage(folder)
    argv = {
        "regenerate": ["regenerate", "--previous", str(folder), "--communities",
                       str(paths["communities"]), "--households", str(paths["households"]),
                       "--input-crs", "wgs84", "--out", str(tmp_path / "o"), "-q"],
        "map": ["map", str(folder)],
        "export": ["export", str(folder), "--to", str(tmp_path / "x.gpkg"), "-q"],
        "assign": ["assign", "--grids", str(folder), "--workers", str(paths["households"]),
                   "--out", str(tmp_path / "o"), "-q"],
    }[command]  # fmt: skip
    if command != "regenerate" and name == "assignments.csv":
        pytest.skip(f"{command} does not read assignments.csv")
    _error(argv, name)


CORRUPT_GRIDS = {
    "truncated": lambda f: _damage(f, "grids.geojson", "truncate"),
    "empty file": lambda f: _damage(f, "grids.geojson", "empty"),
    "garbage": lambda f: _damage(f, "grids.geojson", "garbage"),
    "households not numbers": lambda f: _edit_grids(f, households=lambda g: ["x"] * len(g)),
    "buildings truncated": lambda f: _damage(f, "buildings.geojson", "truncate"),
    "null geometry": lambda f: (f / "grids.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": None,
                        "properties": {
                            "grid_code": "A-001",
                            "households": 5,
                            "status": "ok",
                            "community_id": "A",
                        },
                    }
                ],
            }
        )
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT_GRIDS))
def test_corrupt_grid_layer_given_to_map(corpus, tmp_path, case):
    _, _, out = corpus
    folder = _no_manifest_copy(out, tmp_path / "folder")
    CORRUPT_GRIDS[case](folder)
    name = "buildings.geojson" if case.startswith("buildings") else "grids.geojson"
    _error(["map", str(folder)], name)
    _error(["map", str(folder / "grids.geojson"), "--out", str(tmp_path / "m.html")], name)


def test_corrupt_export_and_assign_sources(corpus, tmp_path):
    _, paths, out = corpus
    folder = _no_manifest_copy(out, tmp_path / "folder")
    _damage(folder, "grids.geojson", "garbage")
    _error(["export", str(folder), "--to", str(tmp_path / "x.csv"), "-q"], "grids.geojson")
    _error(["assign", "--grids", str(folder), "--workers", str(paths["households"]),
            "--out", str(tmp_path / "o"), "-q"], "grids.geojson")  # fmt: skip


# --------------------------------------------------------------------------- class 3, 6: workers


def _suicide(task):
    os.kill(os.getpid(), signal.SIGKILL)


def test_killed_local_worker_is_an_error_and_resume_works(corpus, tmp_path, monkeypatch):
    _, paths, _ = corpus
    out, work = tmp_path / "out", tmp_path / "work"
    argv = _partition_argv(paths, out, "--work-dir", work)
    argv[argv.index("--jobs") + 1] = "2"
    monkeypatch.setattr(batch, "solve_community", _suicide)
    _error(argv, "worker process died", "--resume")
    monkeypatch.undo()
    assert not (out / "grids.geojson").exists()
    _ok([*argv, "--resume"])  # the lock was not kept by a worker
    assert (out / "grids.geojson").exists()


def test_killed_regenerate_worker_is_an_error(corpus, tmp_path, monkeypatch):
    _, paths, out = corpus
    import importlib

    regen_module = importlib.import_module("gridkit.regenerate.redraw")  # not the function
    previous = _no_manifest_copy(out, tmp_path / "previous")
    # previous grids of other communities: both communities are solved anew, in workers
    _edit_grids(previous, community_id=lambda g: [f"old-{c}" for c in g["community_id"]])
    monkeypatch.setattr(regen_module, "_run", _suicide)
    _error(["regenerate", "--previous", str(previous), "--communities",
            str(paths["communities"]), "--households", str(paths["households"]),
            "--input-crs", "wgs84", "--time-limit", "0.3", "--jobs", "2",
            "--out", str(tmp_path / "o"), "-q"], "worker process died")  # fmt: skip
    assert not (tmp_path / "o" / "grids.geojson").exists()


# --------------------------------------------------------------------------- class 7


class _Planted:
    """Unpickling this writes a marker file: what a crafted work-folder file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def test_work_folder_never_unpickles(corpus, tmp_path):
    _, paths, _ = corpus
    out, work = tmp_path / "out", tmp_path / "work"
    argv = _partition_argv(paths, out, "--work-dir", work)
    _ok(argv)
    marker = tmp_path / "marker"
    results = sorted((work / "results").glob("*.npz"))
    assert len(results) == 2 and not list(work.rglob("*.pkl"))
    # 1. an old-style pickle result beside the real ones, 2. a result replaced by an .npz
    # holding a pickled object array, 3. a result replaced by a pickle under the .npz name
    from hostile import community_ids

    (work / "results" / f"{community_key(community_ids()[0])}.pkl").write_bytes(
        pickle.dumps(_Planted(marker))
    )
    with results[0].open("wb") as fh:
        np.save(fh, np.array([_Planted(marker)], dtype=object), allow_pickle=True)
    results[1].write_bytes(pickle.dumps(_Planted(marker)))
    with pytest.raises(DamagedWorkFile):
        load_arrays(results[0])
    with pytest.raises(DamagedWorkFile):
        load_arrays(results[1])
    stdout = _ok([*_partition_argv(paths, out, "--work-dir", work, quiet=False), "--resume"])
    assert not marker.exists()
    assert "2 communities solved" in stdout  # both planted results refused, solved again
    # a planted shard stops the resumed run with an error, not a traceback or a command
    shard = next((work / "shards").glob("*/*.npz"))
    save_arrays(shard, {"household_id": np.array(["x"], dtype=object)})
    with shard.open("r+b") as fh:
        fh.write(pickle.dumps(_Planted(marker)))
    for r in (work / "results").glob("*.npz"):
        r.unlink()
    _error([*argv, "--resume"], "work folder", "without --resume")
    assert not marker.exists()
    _ok(argv)  # afresh


def test_stored_results_round_trip_exactly(corpus, tmp_path, monkeypatch):
    """What the work folder stores is the result, every field of it (no pickle needed)."""
    import dataclasses

    import shapely

    from gridkit.pipeline.workdir import WorkDir

    _, paths, _ = corpus
    saved = []
    original = WorkDir.save_result
    monkeypatch.setattr(WorkDir, "save_result", lambda self, r: (saved.append(r),
                                                                   original(self, r)))  # fmt: skip
    _ok(_partition_argv(paths, tmp_path / "out"))
    assert len(saved) == 2
    for result in saved:
        back = batch.CommunityResult.from_arrays(
            load_arrays(save_arrays(tmp_path / "r.npz", result.to_arrays())),
            result.community_id,
            result.input_hash,
        )
        for f in dataclasses.fields(result.plan):
            a, b = getattr(result.plan, f.name), getattr(back.plan, f.name)
            if isinstance(a, pd.Series):
                pd.testing.assert_series_equal(a, b)
            else:
                assert a == b and type(a) is type(b), f.name
        assert len(back.grids) == len(result.grids)
        for g, h in zip(result.grids, back.grids, strict=True):
            assert g[:4] == h[:4] and g[5] == h[5]
            assert shapely.equals_exact(g[4], h[4], tolerance=0)
        pd.testing.assert_frame_equal(result.buildings.reset_index(drop=True), back.buildings,
                                      check_dtype=False)  # fmt: skip
        assert np.array_equal(result.rows, back.rows)
        assert np.array_equal(result.row_grid, back.row_grid)
        assert (back.notes, back.n_units, back.households) == (
            result.notes, result.n_units, result.households)  # fmt: skip
        assert batch.CommunityResult.from_arrays(result.to_arrays(), "other", "x") is None


def test_resume_notices_a_changed_file_with_the_same_size_and_time(corpus, tmp_path):
    _, paths, _ = corpus
    households = tmp_path / "households.csv"
    shutil.copy(paths["households"], households)
    stat = households.stat()
    inputs = {**paths, "households": households}
    out, work = tmp_path / "out", tmp_path / "work"
    argv = _partition_argv(inputs, out, "--work-dir", work)
    _ok(argv)
    before = json.loads((out / "report.json").read_text())["totals"]["households"]
    text = households.read_text(encoding="utf-8")
    changed = text.replace(",110,", ",220,", 3)
    assert len(changed) == len(text) and changed != text
    households.write_text(changed, encoding="utf-8")
    os.utime(households, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert households.stat().st_size == stat.st_size
    assert households.stat().st_mtime_ns == stat.st_mtime_ns
    _ok([*argv, "--resume"])
    after = json.loads((out / "report.json").read_text())["totals"]["households"]
    assert after == before + 3 * 110
    assigned = pd.read_csv(out / "assignments.csv", dtype=str)
    assert len(assigned) == len(pd.read_csv(households))


# --------------------------------------------------------------------------- class 8


@pytest.mark.parametrize("manifest", [True, False])
def test_audit_input_crs_does_not_shift_gridkit_grids(corpus, tmp_path, manifest):
    _, paths, out = corpus
    grids = out if manifest else _no_manifest_copy(out, tmp_path / "copy")
    table = pd.read_csv(paths["households"], dtype=str, keep_default_na=False)
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(table["lon"].astype(float), table["lat"].astype(float)),
        crs=4326,
    )
    bd = from_wgs84(points, "bd09")
    table["lon"], table["lat"] = bd.geometry.x.round(7), bd.geometry.y.round(7)
    bd_csv = tmp_path / "bd09.csv"
    table.to_csv(bd_csv, index=False)
    code, stdout, err = run_cli(["audit", "--grids", str(grids / "grids.geojson"),
                                 "--households", str(bd_csv), "--input-crs", "bd09",
                                 "--out", str(tmp_path / "audit")])  # fmt: skip
    assert code == 0, err
    assert "not applied" in err  # said once, as a warning
    report = json.loads((tmp_path / "audit" / "report.json").read_text(encoding="utf-8"))
    assert report["grids_with_problems"] == 0, stdout
    assert report["household_rows_outside_grids"] == 0
    # --grids-crs still forces a CRS on the grids: then they are shifted, and flagged
    code, _, err = run_cli(["audit", "--grids", str(grids / "grids.geojson"), "--households",
                            str(bd_csv), "--input-crs", "bd09", "--grids-crs", "bd09", "--out",
                            str(tmp_path / "audit2"), "-q"])  # fmt: skip
    assert code == 0, err
    forced = json.loads((tmp_path / "audit2" / "report.json").read_text(encoding="utf-8"))
    assert forced["household_rows_outside_grids"] > 0


def test_payloads_in_errors_are_plain_text(tmp_path):
    """The corpus itself is sound: its payloads survive reading as text."""
    paths = write_corpus(tmp_path)
    table = pd.read_csv(paths["households"], dtype=str, keep_default_na=False)
    assert any(SCRIPTS[0] in c for c in table.columns) or SCRIPTS[2] in table.columns
    assert hostile_previous  # used by the browser tests
