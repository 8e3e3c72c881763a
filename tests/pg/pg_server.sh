#!/usr/bin/env bash
# pg_server.sh start|stop STATE_DIR — a private PostgreSQL 15 for the tests.
#
# start: initdb a cluster in a new directory under /tmp, start postgres on
#   it listening on a Unix socket in that directory only (no TCP port, so
#   nothing clashes with another run or a system cluster), and write the
#   libpq connection string to STATE_DIR/conninfo. PostgreSQL refuses to
#   run as root: as root the cluster belongs to, and postgres runs as, the
#   unprivileged user $ET_PG_USER (default nobody), through setpriv. The
#   cluster is tuned for tests (no fsync): never a place for data. With
#   ET_PG_DURABLE=1 it keeps PostgreSQL's durable defaults (fsync,
#   synchronous commit), as the benchmarks want; ET_PG_OPTIONS adds
#   settings (-c name=value ...).
# stop: stop that server (immediate) and remove its directory.
#
# Binaries: $ET_PG_BINDIR, else Debian's /usr/lib/postgresql/15/bin, else
# the directory pg_config names.
set -euo pipefail

cmd=${1:-}
state=${2:-}
[[ ( $cmd == start || $cmd == stop ) && -n $state ]] || {
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
}

bindir=${ET_PG_BINDIR:-/usr/lib/postgresql/15/bin}
if [[ ! -x $bindir/postgres ]] && command -v pg_config >/dev/null 2>&1; then
  bindir=$(pg_config --bindir)
fi

stop() {
  [[ -f $state/datadir ]] || return 0
  local dir
  dir=$(cat "$state/datadir")
  if [[ -f $dir/data/postmaster.pid ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  rm -f "$state/datadir" "$state/conninfo"
}

as_owner() {
  if ((EUID == 0)); then
    setpriv --reuid="$user" --regid="$group" --clear-groups -- "$@"
  else
    "$@"
  fi
}

user=${ET_PG_USER:-nobody}
group=$(id -gn "$user" 2>/dev/null || echo nogroup)

if [[ $cmd == stop ]]; then
  stop
  exit 0
fi

if [[ ! -x $bindir/initdb || ! -x $bindir/postgres ]]; then
  echo "pg_server: no PostgreSQL server in $bindir (Debian: apt-get install postgresql)" >&2
  exit 1
fi
mkdir -p "$state"
stop   # a server a killed run left behind
dir=$(mktemp -d /tmp/et-pg-XXXXXX)
echo "$dir" >"$state/datadir"
if ((EUID == 0)); then
  chown "$user:$group" "$dir"
fi
chmod 700 "$dir"
as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
  --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}
options="-c listen_addresses='' -k $dir -c max_connections=200 -c shared_buffers=128MB"
if [[ ${ET_PG_DURABLE:-0} != 1 ]]; then
  options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
options+=" ${ET_PG_OPTIONS:-}"
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$options" \
  >/dev/null || {
  cat "$dir/server.log" >&2
  exit 1
}
echo "host=$dir port=5432 user=postgres dbname=postgres" >"$state/conninfo"
echo "pg_server: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $dir"
