#!/usr/bin/env bash
# SD card wear: bytes the agent writes to storage per sample, against the
# encoded bytes per sample, at the default outbox settings (durability
# window 10 s, batch interval 2 s). The agent runs with no broker, as a
# board that is offline, collecting the default system set plus four sim
# collectors every SIM_INTERVAL (default 100ms: 80 samples a second).
# write_bytes comes from /proc/PID/io; the encoded bytes from the outbox.
#
#   bench/wear.sh [SECONDS] [SIM_INTERVAL]        (defaults 60 100ms)
set -euo pipefail

secs=${1:-60}
interval=${2:-100ms}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ET_BENCH_BUILD:-$repo/build-bench}
if [[ ! -x $build/agent/edgetel-agent ]]; then
  cmake -S "$repo" -B "$build" -DET_BUILD_BENCH=ON -DET_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" >/dev/null
fi
# The data dir must be on a real disk (tmpfs counts no writes).
work=$(mktemp -d "${ET_BENCH_DIR:-$repo}/.wear-XXXXXX")
agent=
cleanup() {
  [[ -n $agent ]] && kill "$agent" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

{
  echo "[agent]"
  echo "device_id = wear-bench"
  echo "data_dir = $work/data"
  echo "log_level = warn"
  for c in cpu memory disk diskio net load uptime procs self; do
    printf '[collector %s]\ntype = %s\n' "$c" "$c"
  done
  for i in 1 2 3 4; do
    printf '[collector sim%d]\ntype = sim\ninterval = %s\n' "$i" "$interval"
  done
} >"$work/agent.conf"

"$build/agent/edgetel-agent" --config "$work/agent.conf" 2>"$work/agent.log" &
agent=$!
sleep "$secs"
written=$(awk '/^write_bytes/ {print $2}' "/proc/$agent/io")
kill -TERM "$agent"
wait "$agent" || true
agent=
read -r batches samples encoded < <(sqlite3 -separator ' ' "$work/data/outbox.db" \
  "select count(*), sum(n_samples), sum(length(payload)) from batch")
printf '%-40s %s s, sim every %s\n' "run" "$secs" "$interval"
printf '%-40s %s in %s batches\n' "samples stored" "$samples" "$batches"
printf '%-40s %.1f B\n' "encoded bytes per sample" "$(echo "$encoded / $samples" | bc -l)"
printf '%-40s %.1f B\n' "bytes written to storage per sample" "$(echo "$written / $samples" | bc -l)"
printf '%-40s %.2f x\n' "written / encoded" "$(echo "$written / $encoded" | bc -l)"
