#!/usr/bin/env bash
# The store benchmarks in one run, with their ratios:
#   1. ingest rate, acks included, of one aggregator on SQLite and on
#      PostgreSQL, then of two and three instances on one PostgreSQL
#      (targets on a 2-core machine: >= 200,000 samples/s on SQLite,
#      >= 100,000 on PostgreSQL)
#   2. a day of one metric at 1 s (86,400 samples) read back, each store
# Each line also gives the aggregator processes' own CPU time: on a machine
# that others share, the wall clock counts their work too (see the load
# average printed first).
# PostgreSQL 15 runs durable (fsync, synchronous commit: an Ack means the
# commit is on disk, as SQLite's synchronous=FULL) in a temporary directory,
# as nobody when run as root (tests/pg/pg_server.sh).
#   bench/store.sh [DEVICES] [BATCHES]     (default 100 devices x 100 batches of 120)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build=${ET_BENCH_BUILD:-$repo/build-bench}
devices=${1:-100}
batches=${2:-100}

cmake -S . -B "$build" -DET_BUILD_BENCH=ON -DET_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 --target ingest_bench >/dev/null
bench=$build/bench/ingest_bench

work=$(mktemp -d /tmp/et-store-bench-XXXXXX)
state=$work/pg
cleanup() {
  tests/pg/pg_server.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ET_PG_DURABLE=1 tests/pg/pg_server.sh start "$state" >/dev/null
base=$(cat "$state/conninfo")
pg_store() {   # a new schema: an empty store (called in $(...): no counter survives)
  local s
  s=s$(date +%s%N)
  psql "$base" -qc "CREATE SCHEMA $s" >/dev/null
  echo "$base options='-csearch_path=$s'"
}
rate() { sed -n 's/.* \([0-9][0-9]*\) samples\/s.*/\1/p'; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== 1. ingest, acks included ($devices devices x $batches batches of 120 samples)"
out=$("$bench" ingest "$work/lite.db" --devices "$devices" --batches "$batches"); echo "$out"
lite=$(rate <<<"$out")
sqlite3 "$work/lite.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
echo "sqlite     $(( $(stat -c %s "$work/lite.db") / $(sqlite3 "$work/lite.db" \
  "SELECT COUNT(*) FROM samples") )) bytes a stored sample (the whole file)"
store=$(pg_store)
out=$("$bench" ingest "$store" --devices "$devices" --batches "$batches"); echo "$out"
pg1=$(rate <<<"$out")
echo "postgresql $(psql "$store" -Atc "SELECT round((SELECT sum(pg_total_relation_size(i.inhrelid))
  FROM pg_inherits i WHERE i.inhparent = 'samples'::regclass) / (SELECT count(*) FROM samples))") \
bytes a stored sample (the samples partitions with their indexes)"
out=$("$bench" ingest "$(pg_store)" --devices "$devices" --batches "$batches" --instances 2)
echo "$out"; pg2=$(rate <<<"$out")
out=$("$bench" ingest "$(pg_store)" --devices "$devices" --batches "$batches" --instances 3)
echo "$out"; pg3=$(rate <<<"$out")
awk -v l="$lite" -v a="$pg1" -v b="$pg2" -v c="$pg3" 'BEGIN {
  printf "ratios: postgresql/sqlite %.2f; 2 instances/1 %.2f; 3 instances/1 %.2f\n",
         a / l, b / a, c / a }'

echo
echo "== 2. a day of one metric at 1 s, read through the store reader"
rm -f "$work"/lite.db*
"$bench" query "$work/lite.db"
"$bench" query "$(pg_store)"
