#!/usr/bin/env bash
# Start a throwaway PostgreSQL on a unix socket in a fresh temporary folder, for tests and
# load runs. Prints `export FLAKEHOUND_TEST_PG=…; export PG_TEST_DIR=…` for eval; stop it
# with `scripts/pg-test-server.sh stop "$PG_TEST_DIR"`. `ctl DIR stop|start|restart` stops,
# starts or restarts it keeping its data (for outage tests).
#
# PostgreSQL refuses to run as root, so under root the server runs as the `postgres` system
# user (created by the Debian package) or a `flakehound-pg` user created here.
set -euo pipefail

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    su -s /bin/sh "$OWNER" -c "$*"
  else
    sh -c "$*"
  fi
}

if [ "${1:-}" = stop ]; then
  dir=${2:?usage: pg-test-server.sh stop DIR}
  OWNER=$(stat -c %U "$dir/data")
  bin=$(pg_bin)
  as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

if [ "${1:-}" = ctl ]; then
  dir=${2:?usage: pg-test-server.sh ctl DIR stop|start|restart}
  action=${3:?usage: pg-test-server.sh ctl DIR stop|start|restart}
  OWNER=$(stat -c %U "$dir/data")
  bin=$(pg_bin)
  as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/log' -m fast -w $action" >/dev/null
  exit 0
fi

if ! bin=$(pg_bin); then
  echo "PostgreSQL is not installed; installing it from the Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update >&2
  $sudo_ apt-get install -y --no-install-recommends postgresql >&2
  bin=$(pg_bin)
fi

OWNER=$(id -un)
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then
    OWNER=postgres
  else
    id flakehound-pg >/dev/null 2>&1 || useradd --system --no-create-home flakehound-pg
    OWNER=flakehound-pg
  fi
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/flakehound-pg.XXXXXX")
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown "$OWNER" "$dir"
as_owner "'$bin/initdb' -D '$dir/data' -U flakehound --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync" >/dev/null
# Settings for a disposable test server: no durability cost beyond what a crash test needs.
# Also in postgresql.conf, so that `ctl DIR start` brings it back the same.
printf "unix_socket_directories = '%s'\nlisten_addresses = ''\nmax_connections = 200\nshared_buffers = 128MB\n" "$dir" >>"$dir/data/postgresql.conf"
as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/log' -w -o \"-k $dir -c listen_addresses='' -c max_connections=200 -c shared_buffers=128MB\" start" >/dev/null
as_owner "'$bin/createdb' -h '$dir' -U flakehound flakehound"
echo "export FLAKEHOUND_TEST_PG='postgresql:///flakehound?host=$dir&user=flakehound'; export PG_TEST_DIR='$dir'"
