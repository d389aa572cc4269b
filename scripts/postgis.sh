#!/usr/bin/env bash
# A throwaway PostgreSQL + PostGIS server for the export tests (tests/test_postgis.py).
#
# Usage:
#   bash scripts/postgis.sh install   # Debian packages only (postgresql, postgresql-postgis)
#   bash scripts/postgis.sh start     # install if needed, start the server, print its URL
#   bash scripts/postgis.sh url       # print the URL of the running server
#   bash scripts/postgis.sh status    # exit 0 if it is running
#   bash scripts/postgis.sh stop      # stop it and delete its data folder
#
# Every action is idempotent: `start` on a running server prints the URL again,
# `stop` on a stopped one does nothing.  The cluster lives in $GRIDKIT_PGDIR
# (default /tmp/gridkit-postgis): a fresh `initdb` with trust authentication,
# listening on 127.0.0.1 only, on the first free port from $GRIDKIT_PGPORT
# (default 55432), with its Unix socket in the same folder.  It runs as the
# calling user, or as `postgres` (created by the Debian package) when called by
# root, since PostgreSQL refuses to run as root.  The system's own cluster, if
# the package started one, is left alone.  Database: `gridkit` with the
# `postgis` extension; user: `postgres`.
#
# The last line printed by `start` and `url` is the URL, e.g.
#   postgresql://postgres@127.0.0.1:55432/gridkit
# Progress and errors go to standard error.
set -euo pipefail

ACTION=${1:-start}
PGDIR=${GRIDKIT_PGDIR:-/tmp/gridkit-postgis}
DATA="$PGDIR/data"
PORT_FILE="$PGDIR/port"
LOG="$PGDIR/server.log"
FIRST_PORT=${GRIDKIT_PGPORT:-55432}
DB=gridkit

say() { echo "postgis.sh: $*" >&2; }
die() { say "$*"; exit 1; }

MARKER="$PGDIR/.gridkit-postgis"
# Delete $PGDIR only if this script made it (it holds the marker) or it is empty.
remove_pgdir() {
    [ -e "$PGDIR" ] || return 0
    if [ -f "$MARKER" ] || [ -z "$(ls -A "$PGDIR" 2>/dev/null)" ]; then
        rm -rf "$PGDIR"
    else
        die "refusing to delete $PGDIR: it was not made by this script (no $MARKER); set GRIDKIT_PGDIR to a new folder"
    fi
}

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

pg_bindir() {
    # The newest installed server's bin folder (Debian: /usr/lib/postgresql/NN/bin).
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

has_postgis() {
    local bindir=$1 share
    share=$("$bindir/pg_config" --sharedir 2>/dev/null || true)
    [ -z "$share" ] && share="/usr/share/postgresql/$(basename "$(dirname "$bindir")")"
    ls "$share"/extension/postgis.control >/dev/null 2>&1
}

install() {
    local bindir
    bindir=$(pg_bindir || true)
    if [ -n "$bindir" ] && has_postgis "$bindir"; then
        say "PostgreSQL and PostGIS already installed ($bindir)"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
        die "need root (or sudo) to apt-get install postgresql postgresql-postgis"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # `postgresql` and `postgresql-postgis` are Debian's version-independent
    # meta packages (bookworm: postgresql-15 and postgresql-15-postgis-3).
    local candidate
    candidate=$(apt-cache policy postgresql-postgis 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        $SUDO apt-get update -qq
    fi
    say "installing postgresql postgresql-postgis (apt-get)"
    $SUDO apt-get install -y -qq --no-install-recommends postgresql postgresql-postgis >/dev/null
    bindir=$(pg_bindir || true)
    [ -n "$bindir" ] && has_postgis "$bindir" || die "apt-get finished but no PostgreSQL with PostGIS was found"
    say "installed: $("$bindir/postgres" --version)"
}

# Run a command as the cluster's owner.
OWNER=$(id -un)
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$OWNER" -- "$@"
    else
        "$@"
    fi
}

port_free() {
    # True when nothing listens on 127.0.0.1:$1.
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running() {
    local bindir=$1
    [ -f "$DATA/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() { echo "postgresql://postgres@127.0.0.1:$(cat "$PORT_FILE")/$DB"; }

start() {
    install
    local bindir port
    bindir=$(pg_bindir)
    if [ "$(id -u)" -eq 0 ]; then
        OWNER=postgres
        id postgres >/dev/null 2>&1 || die "user postgres missing (the Debian package creates it)"
    fi
    if running "$bindir"; then
        say "already running in $DATA"
        url
        return 0
    fi
    # A stale folder (crashed run, other owner): start afresh.
    remove_pgdir
    mkdir -p "$PGDIR"
    touch "$MARKER"
    chmod 700 "$PGDIR"
    [ "$(id -u)" -eq 0 ] && chown "$OWNER" "$PGDIR"
    as_owner "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$PGDIR/initdb.log" 2>&1 || { cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
    port=$FIRST_PORT
    while ! port_free "$port"; do
        port=$((port + 1))
        [ "$port" -gt $((FIRST_PORT + 100)) ] && die "no free port in $FIRST_PORT..$((FIRST_PORT + 100))"
    done
    echo "$port" >"$PORT_FILE"
    as_owner "$bindir/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PGDIR -c fsync=off -c full_page_writes=off" \
        start >/dev/null || { cat "$LOG" >&2; die "the server did not start (log above)"; }
    as_owner "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
        -c "CREATE DATABASE $DB" >/dev/null
    as_owner "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$DB" -qAt \
        -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
    say "started PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') with PostGIS in $DATA (port $port)"
    url
}

stop() {
    local bindir
    bindir=$(pg_bindir || true)
    if [ -z "$bindir" ] || [ ! -d "$PGDIR" ]; then
        say "not running"
        return 0
    fi
    if [ "$(id -u)" -eq 0 ]; then
        OWNER=$(stat -c %U "$PGDIR")
    fi
    if running "$bindir"; then
        as_owner "$bindir/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        say "stopped"
    fi
    remove_pgdir
}

case "$ACTION" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    url)
        [ -f "$PORT_FILE" ] || die "not running: call 'bash scripts/postgis.sh start'"
        url
        ;;
    status)
        bindir=$(pg_bindir || true)
        [ -n "$bindir" ] && [ -d "$PGDIR" ] || exit 1
        [ "$(id -u)" -eq 0 ] && OWNER=$(stat -c %U "$PGDIR")
        running "$bindir"
        ;;
    *) die "unknown action '$ACTION': use install, start, url, status or stop" ;;
esac
