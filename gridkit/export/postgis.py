"""Export to PostGIS: every layer into its table, in one transaction, all or nothing.

Every layer is loaded into a staging table ``<layer>__gridkit_new`` (columns, ``geom``
column, primary key :data:`PRIMARY_KEYS`, GiST index), then the old tables are dropped
and the staging tables renamed.  Any error rolls everything back, so the previous
tables stay intact and no staging table is left.  Needs the ``postgis`` extra
(SQLAlchemy and psycopg 3): ``pip install "gridkit[postgis]"``.  The export itself,
formats and coordinate systems, is :func:`gridkit.export.export_layers`.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import GridkitError, InputError

__all__ = ["PRIMARY_KEYS", "ExportError", "is_postgis_url", "postgis_url", "write_postgis"]


#: Primary key column of each layer in PostGIS (a ``fid`` column is added when it is
#: missing or not unique).
PRIMARY_KEYS: dict[str, str] = {
    "grids": "grid_code",
    "buildings": "building_id",
    "workers": "worker_id",
}

_STAGING_SUFFIX = "__gridkit_new"


class ExportError(GridkitError, RuntimeError):
    """An export could not be completed; nothing was changed at the destination."""


def _require_postgis_deps() -> Any:
    try:
        import psycopg  # noqa: F401
        import sqlalchemy
    except ImportError as err:
        msg = (
            f"exporting to PostGIS needs SQLAlchemy and psycopg 3 ({err}): install them with "
            '`pip install "gridkit[postgis]"` (or `pip install sqlalchemy "psycopg[binary]"`).'
        )
        raise ImportError(msg) from err
    return sqlalchemy


def is_postgis_url(to: Any) -> bool:
    """Whether the destination ``to`` is a PostGIS URL (``postgresql://`` or ``postgres://``).

    Parameters
    ----------
    to
        The ``to`` of :func:`gridkit.export.export_layers` (a path or a URL).

    Returns
    -------
    bool
        ``True`` for a string whose scheme is ``postgresql`` / ``postgres`` (with or
        without a ``+driver``).
    """
    return isinstance(to, str) and to.split(":", 1)[0].lower().split("+")[0] in (
        "postgresql",
        "postgres",
    )


def _pg_type(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp with time zone" if getattr(dtype, "tz", None) else "timestamp"
    return "text"


def _geometry_type(geoms: np.ndarray) -> tuple[str, np.ndarray]:
    """The PostGIS geometry type of a column, and the geometries (promoted to Multi* if mixed)."""
    present = ~shapely.is_missing(geoms)
    types = set(shapely.get_type_id(geoms[present]).tolist())
    names = {
        0: "Point",
        1: "LineString",
        3: "Polygon",
        4: "MultiPoint",
        5: "MultiLineString",
        6: "MultiPolygon",
    }
    if len(types) == 1 and next(iter(types)) in names:
        return names[next(iter(types))], geoms
    for single, multi, build in (
        (0, 4, shapely.multipoints),
        (1, 5, shapely.multilinestrings),
        (3, 6, shapely.multipolygons),
    ):
        if types == {single, multi}:
            out = np.array(geoms, dtype=object)
            promote = present & (shapely.get_type_id(out) == single)
            out[promote] = [build([g]) for g in out[promote]]
            return names[multi], out
    return "Geometry", geoms


def _cell(value: Any) -> Any:
    """A Python value psycopg can COPY (``None`` for missing)."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if np.ndim(value) == 0 and pd.isna(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value if isinstance(value, int | float | bool | str) else str(value)


def _stage(
    conn: Any, schema: str, layer: str, gdf: gpd.GeoDataFrame, srid: int, comment: str
) -> str:
    """Create and fill ``schema.<layer>__gridkit_new``; return its name."""
    from psycopg import sql

    raw = conn.connection.driver_connection
    staging = f"{layer}{_STAGING_SUFFIX}"
    geom_name = gdf.geometry.name
    frame = pd.DataFrame(gdf.drop(columns=[geom_name]))
    key = PRIMARY_KEYS[layer]
    if not (key in frame.columns and frame[key].notna().all() and frame[key].is_unique):
        key = "fid"
        frame.insert(0, "fid", np.arange(1, len(frame) + 1, dtype=np.int64))
    if "geom" in frame.columns:
        frame = frame.rename(columns={"geom": "geom_src"})
    gtype, geoms = _geometry_type(np.asarray(gdf.geometry.array, dtype=object))
    table = sql.Identifier(schema, staging)
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(str(c)), sql.SQL(_pg_type(frame[c])))
        for c in frame.columns
    ]
    columns.append(sql.SQL("geom geometry({}, {})").format(sql.SQL(gtype), sql.Literal(srid)))
    with raw.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(columns)))
        names = sql.SQL(", ").join(
            [sql.Identifier(str(c)) for c in frame.columns] + [sql.Identifier("geom")]
        )
        ewkb = np.full(len(geoms), None, dtype=object)
        present = ~shapely.is_missing(geoms)
        if present.any():
            ewkb[present] = shapely.to_wkb(
                shapely.set_srid(geoms[present], srid), hex=True, include_srid=True
            )
        values = frame.to_numpy(dtype=object)
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)) as copy:
            for row, geom in zip(values, ewkb, strict=True):
                copy.write_row([*(_cell(v) for v in row), geom])
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                table, sql.Identifier(f"{staging}_pkey"), sql.Identifier(key)
            )
        )
        cur.execute(
            sql.SQL("CREATE INDEX {} ON {} USING GIST (geom)").format(
                sql.Identifier(f"{staging}_geom_idx"), table
            )
        )
        cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment)))
    return staging


def _swap(conn: Any, schema: str, layer: str) -> None:
    """Replace ``schema.layer`` by its staging table (same transaction)."""
    from psycopg import sql

    raw = conn.connection.driver_connection
    staging = f"{layer}{_STAGING_SUFFIX}"
    with raw.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, layer)))
        cur.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, staging), sql.Identifier(layer)
            )
        )
        cur.execute(
            sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                sql.Identifier(schema, layer),
                sql.Identifier(f"{staging}_pkey"),
                sql.Identifier(f"{layer}_pkey"),
            )
        )
        cur.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, f"{staging}_geom_idx"), sql.Identifier(f"{layer}_geom_idx")
            )
        )
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, layer)))


def postgis_url(to: str) -> tuple[Any, str, str]:
    """``(sqlalchemy URL for psycopg, schema, URL shown in messages)``."""
    sqlalchemy = _require_postgis_deps()
    try:
        url = sqlalchemy.engine.make_url(to)
    except sqlalchemy.exc.ArgumentError as err:
        msg = (
            f"cannot parse the PostGIS URL given as `to` (CLI `--to`) ({err}): write it as "
            "postgresql://user:password@host:port/database[?schema=name]."
        )
        raise InputError(msg) from err
    if not url.database:
        msg = (
            f"the PostGIS URL {url.render_as_string(hide_password=True)!r} names no database: "
            "write it as postgresql://user@host:port/database."
        )
        raise InputError(msg)
    schema = url.query.get("schema", "public")
    if isinstance(schema, tuple):
        schema = schema[-1]
    url = url.difference_update_query(["schema"]).set(drivername="postgresql+psycopg")
    shown = url.set(drivername="postgresql").render_as_string(hide_password=True)
    return url, str(schema), shown


def write_postgis(
    frames: dict[str, gpd.GeoDataFrame], to: str, *, srid: int, comment: str
) -> list[str]:
    """Load the layers into PostGIS tables in one transaction, all or nothing.

    Parameters
    ----------
    frames
        The layers by name (``grids``, ``buildings``, ``workers``), already in the
        coordinates of ``srid``.
    to
        ``postgresql://user:password@host:port/database[?schema=name]``.
    srid
        The SRID of the geometry columns.
    comment
        The table comment (the source and the coordinate system).

    Returns
    -------
    list of str
        The ``"schema.table"`` names written.

    Raises
    ------
    ExportError
        The database refused the export; the transaction is rolled back, so the
        previous tables are unchanged.
    """
    sqlalchemy = _require_postgis_deps()
    import psycopg

    url, schema, shown = postgis_url(to)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    step = "connecting"
    try:
        with engine.connect() as conn, conn.begin():
            step = "checking the postgis extension"
            has_postgis = conn.execute(
                sqlalchemy.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
            ).first()
            if has_postgis is None:
                msg = (
                    f"database {shown} has no PostGIS: run `CREATE EXTENSION postgis;` in it "
                    "(as a superuser or the database owner), then export again."
                )
                raise ExportError(msg)
            conn.execute(
                sqlalchemy.text(
                    f"CREATE SCHEMA IF NOT EXISTS {conn.dialect.identifier_preparer.quote(schema)}"
                )
            )
            for layer, gdf in frames.items():
                step = f"loading layer {layer!r}"
                _stage(conn, schema, layer, gdf, srid, f"{comment}; layer {layer}")
            for layer in frames:
                step = f"replacing table {schema}.{layer}"
                _swap(conn, schema, layer)
            step = "committing"
    except (sqlalchemy.exc.SQLAlchemyError, psycopg.Error) as err:
        detail = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        msg = (
            f"PostGIS export to {shown} failed while {step} ({type(err).__name__}: {detail}); "
            "the transaction was rolled back, so the previous tables are unchanged. Check "
            "that the server runs and the URL, user and password are right, and that the user "
            "may create tables in schema "
            f"{schema!r} (tables with dependent views must have the views dropped first)."
        )
        raise ExportError(msg) from err
    finally:
        engine.dispose()
    return [f"{schema}.{layer}" for layer in frames]
