"""PostGIS export against a real PostgreSQL + PostGIS server on 127.0.0.1.

A session fixture starts a throwaway cluster with ``scripts/postgis.sh start``
(installing Debian's ``postgresql`` and ``postgresql-postgis`` packages when
missing) in a private folder, and stops it at the end.  Set
``GRIDKIT_POSTGIS_URL`` to use a server of your own instead (the tests create
and drop their own schemas in it).  When the server cannot be had, the tests
skip with the reason locally and FAIL when the ``CI`` variable is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import jsonschema
import pytest
from gridmaps import (
    assert_same_features,
    make_map,
    max_shift_m,
    records,
    workers_frame,
    write_output_dir,
)

from gridkit.audit import audit_grids, read_grids
from gridkit.crs import to_wgs84
from gridkit.export import postgis
from gridkit.export.exchange import CRS_NOTES, export_layers, grids_schema
from gridkit.export.postgis import ExportError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "postgis.sh"
LAYERS = ("grids", "buildings", "workers")
KEYS = {"grids": "grid_code", "buildings": "building_id", "workers": "worker_id"}


def _unavailable(reason: str) -> None:
    msg = f"PostGIS server not available: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{msg} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(f"{msg}; run `bash scripts/postgis.sh start` to see why")


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """URL of a PostGIS database: started for the session, stopped afterwards."""
    try:
        import psycopg  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as err:
        _unavailable(f"{err}; install the extra: pip install -e '.[postgis]'")
    given = os.environ.get("GRIDKIT_POSTGIS_URL")
    if given:
        yield given
        return
    pgdir = Path(tempfile.gettempdir()) / f"gridkit-postgis-pytest-{os.getpid()}"
    env = dict(os.environ, GRIDKIT_PGDIR=str(pgdir))
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        _unavailable(f"`bash scripts/postgis.sh start` did not finish ({err})")
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        _unavailable(f"`bash scripts/postgis.sh start` failed (exit {proc.returncode}): {tail}")
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120, env=env, check=False
        )


@pytest.fixture(scope="session")
def engine(postgis_url: str):
    import sqlalchemy

    eng = sqlalchemy.create_engine(
        postgis_url.replace("postgresql://", "postgresql+psycopg://", 1),
        poolclass=sqlalchemy.pool.NullPool,
    )
    yield eng
    eng.dispose()


@pytest.fixture
def schema(engine) -> Iterator[str]:
    """A fresh schema per test, dropped afterwards."""
    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    grids, buildings, _ = make_map()
    return write_output_dir(tmp_path / "src", grids, buildings, workers_frame())


def _url(postgis_url: str, schema: str) -> str:
    return f"{postgis_url}?schema={schema}"


def _read(engine, schema: str, layer: str) -> gpd.GeoDataFrame:
    frame = gpd.read_postgis(
        f'SELECT * FROM "{schema}"."{layer}" ORDER BY "{KEYS[layer]}"', engine, geom_col="geom"
    )
    return frame.rename_geometry("geometry")


def _scalar(engine, sql: str, **params):
    import sqlalchemy

    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text(sql), params).scalar()


def _tables(engine, schema: str) -> list[str]:
    import sqlalchemy

    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                "ORDER BY table_name"
            ),
            {"s": schema},
        )
        return [r[0] for r in rows]


def _originals(src: Path) -> dict[str, gpd.GeoDataFrame]:
    return {layer: gpd.read_file(src / f"{layer}.geojson") for layer in LAYERS}


def test_export_reads_back_feature_by_feature(src, postgis_url, engine, schema):
    written = export_layers(src, _url(postgis_url, schema))
    assert written == [f"{schema}.{layer}" for layer in LAYERS]
    originals = _originals(src)
    validator = jsonschema.Draft202012Validator(grids_schema())
    for layer in LAYERS:
        back = _read(engine, schema, layer)
        assert list(back.columns) == list(originals[layer].columns)
        assert_same_features(back, originals[layer], tol=0)
        assert back.crs.to_epsg() == 4326
    grids = _read(engine, schema, "grids")
    assert grids["grid_name"].iloc[0] == "江汉社区第1网格"
    assert grids["households"].dtype.kind == "i"
    assert all(validator.is_valid(p) for p in records(grids))
    # primary keys, spatial indexes, typed geometry columns
    for layer in LAYERS:
        indexes = _scalar(
            engine,
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
            "WHERE schemaname = :s AND tablename = :t",
            s=schema,
            t=layer,
        )
        assert indexes == f"{layer}_geom_idx,{layer}_pkey"
        key = _scalar(
            engine,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = "
            "format('%I.%I', CAST(:s AS text), CAST(:t AS text))::regclass",
            s=schema,
            t=layer,
        )
        assert key == KEYS[layer]
    gtype = _scalar(
        engine,
        "SELECT type || ':' || srid FROM geometry_columns WHERE f_table_schema = :s "
        "AND f_table_name = 'grids'",
        s=schema,
    )
    assert gtype == "POLYGON:4326"
    assert _tables(engine, schema) == sorted(LAYERS)


def test_reexport_replaces_tables_and_leaves_no_staging(src, postgis_url, engine, schema):
    export_layers(src, _url(postgis_url, schema))
    grids, buildings, _ = make_map()
    write_output_dir(src, grids.iloc[:2], buildings.iloc[:5])
    export_layers(src, _url(postgis_url, schema), layers="grids,buildings")
    assert len(_read(engine, schema, "grids")) == 2
    assert len(_read(engine, schema, "buildings")) == 5
    assert len(_read(engine, schema, "workers")) == 2  # not exported again: kept
    assert _tables(engine, schema) == sorted(LAYERS)


def test_server_refusing_midway_leaves_previous_tables(src, postgis_url, engine, schema):
    """The server rejects the buildings layer after grids were staged: nothing changes."""
    import sqlalchemy

    export_layers(src, _url(postgis_url, schema))
    before = {layer: _read(engine, schema, layer) for layer in LAYERS}
    grids, buildings, _ = make_map()
    write_output_dir(src, grids.iloc[:1], buildings.iloc[:1])
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text(
                f"""
                CREATE FUNCTION "{schema}".refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$
                DECLARE r record;
                BEGIN
                  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
                    IF r.command_tag = 'CREATE INDEX' AND r.object_identity LIKE
                       '%buildings__gridkit_new%' THEN
                      RAISE EXCEPTION 'test: server refuses %', r.object_identity;
                    END IF;
                  END LOOP;
                END $$;
                CREATE EVENT TRIGGER "{schema}_refuse" ON ddl_command_end
                  EXECUTE FUNCTION "{schema}".refuse();
                """
            )
        )
    try:
        with pytest.raises(ExportError, match="rolled back") as info:
            export_layers(src, _url(postgis_url, schema))
        assert "test: server refuses" in str(info.value)
        assert "loading layer 'buildings'" in str(info.value)
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP EVENT TRIGGER IF EXISTS "{schema}_refuse"'))
    for layer in LAYERS:
        assert_same_features(_read(engine, schema, layer), before[layer], tol=0)
    assert _tables(engine, schema) == sorted(LAYERS)


def test_connection_lost_midway_leaves_previous_tables(
    src, postgis_url, engine, schema, monkeypatch
):
    """The session is killed after the first layer was staged: nothing changes."""
    export_layers(src, _url(postgis_url, schema))
    before = {layer: _read(engine, schema, layer) for layer in LAYERS}
    real_stage = postgis._stage

    def stage_then_die(conn, schema_, layer, *args, **kwargs):
        name = real_stage(conn, schema_, layer, *args, **kwargs)
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return name

    monkeypatch.setattr(postgis, "_stage", stage_then_die)
    grids, _, _ = make_map()
    write_output_dir(src, grids.iloc[:1])
    with pytest.raises(ExportError, match="rolled back"):
        export_layers(src, _url(postgis_url, schema), layers="grids")
    for layer in LAYERS:
        assert_same_features(_read(engine, schema, layer), before[layer], tol=0)
    assert _tables(engine, schema) == sorted(LAYERS)


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_shifted_export_is_marked_and_converts_back(src, postgis_url, engine, schema, system):
    export_layers(src, _url(postgis_url, schema), crs=system)
    originals = _originals(src)
    for layer in LAYERS:
        back = _read(engine, schema, layer)
        assert (back["crs_note"] == CRS_NOTES[system]).all()
        comment = _scalar(
            engine,
            "SELECT obj_description(format('%I.%I', CAST(:s AS text), CAST(:t AS text))"
            "::regclass, 'pg_class')",
            s=schema,
            t=layer,
        )
        assert CRS_NOTES[system] in comment
        unshifted = to_wgs84(back.set_crs(None, allow_override=True), system)
        assert max_shift_m(unshifted, originals[layer]) < 1.0


def test_projected_epsg_srid(src, postgis_url, engine, schema):
    export_layers(src, _url(postgis_url, schema), crs="EPSG:4547", layers="grids")
    srid = _scalar(
        engine,
        "SELECT srid FROM geometry_columns WHERE f_table_schema = :s AND f_table_name = 'grids'",
        s=schema,
    )
    assert srid == 4547
    assert _read(engine, schema, "grids").crs.to_epsg() == 4547


def test_round_trip_through_audit(src, postgis_url, engine, schema):
    _, buildings, communities = make_map()
    export_layers(src, _url(postgis_url, schema), layers="grids")
    grids = read_grids(_read(engine, schema, "grids"))
    result = audit_grids(grids, buildings, communities=communities)
    assert set(result.grids["problems"]) == {""}
    assert result.report["gaps"] == 0


def test_database_without_postgis(src, postgis_url, engine):
    import sqlalchemy

    name = f"nopostgis_{uuid.uuid4().hex[:8]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        url = postgis_url.rsplit("/", 1)[0] + f"/{name}"
        with pytest.raises(ExportError, match="CREATE EXTENSION postgis"):
            export_layers(src, url)
    finally:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))


def test_unreachable_server_hides_the_password(src):
    pytest.importorskip("psycopg")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ExportError) as info:
        export_layers(src, f"postgresql://gk:s3cret@127.0.0.1:{port}/db")
    text = str(info.value)
    assert "s3cret" not in text and "***" in text
    assert "while connecting" in text and "previous tables are unchanged" in text
