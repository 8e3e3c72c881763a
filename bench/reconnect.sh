#!/usr/bin/env bash
# Reconnect benchmark: how soon data flows again after the broker comes
# back. Runs the real mosquitto with mutual TLS on 127.0.0.1, an aggregator
# on SQLite and one agent (a sim collector every second, everything else at
# the programs' defaults: keepalive, backoff, ack timeout). ROUNDS times it
# SIGKILLs the broker, keeps it down for the next outage of OUTAGES (cycled),
# starts it again and measures, from the moment the broker accepts TCP
# connections again:
#   connected  until the agent logs "uplink: connected to"
#   stored     until the store holds a sample it did not hold at the restart
# and prints each round, then the median and the worst of both, overall and
# per outage length. Outages longer than 60 s (the old backoff cap) are the
# case that used to take up to a minute.
#
#   bench/reconnect.sh [ROUNDS] [OUTAGES]    (defaults 20 "10 10 10 65")
#
# Needs a build with the programs (ET_BENCH_BUILD, default build-bench/,
# made if missing), mosquitto, sqlite3 and python3. Everything runs in a
# temporary directory that is removed at the end (ET_BENCH_KEEP=1 keeps it).
set -euo pipefail

rounds=${1:-20}
read -r -a outages <<<"${2:-10 10 10 65}"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ET_BENCH_BUILD:-$repo/build-bench}
device=bench-device
round_timeout=120   # seconds a round may take after the restart before it counts as failed

if [[ ! -x $build/agent/edgetel-agent || ! -x $build/aggregator/edgetel-aggregator ]]; then
  cmake -S "$repo" -B "$build" -DET_BUILD_BENCH=ON -DET_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target edgetel-agent edgetel-aggregator >/dev/null
fi

work=$(mktemp -d /tmp/edgetel-reconnect-XXXXXX)
broker=
pids=()
cleanup() {
  [[ -n $broker ]] && kill "$broker" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${ET_BENCH_KEEP:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
# Milliseconds from $1 to $2 (both from now()).
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
stored() {
  local n
  n=$(sqlite3 "$work/store.db" "select coalesce(sum(samples_stored), 0) from devices" \
        2>/dev/null || true)
  [[ $n =~ ^[0-9]+$ ]] && echo "$n" || echo 0
}
connects() { grep -c "uplink: connected to" "$work/agent.log" || true; }

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
et_bench_setup "$work" "$device"
start_broker() {
  /usr/sbin/mosquitto -c "$work/mosquitto.conf" 2>>"$work/mosquitto.log" &
  broker=$!
}

et_bench_agent_conf "$work" "$device" info

start_broker
for _ in $(seq 100); do listening && break; sleep 0.1; done
"$build/aggregator/edgetel-aggregator" --config "$work/aggregator.conf" 2>"$work/aggregator.log" &
pids+=("$!")
"$build/agent/edgetel-agent" --config "$work/agent.conf" 2>"$work/agent.log" &
agent=$!
pids+=("$agent")

# Steady state: samples reach the store.
for _ in $(seq 300); do (($(stored) > 0)) && break; sleep 0.1; done
if (($(stored) == 0)); then
  echo "reconnect: nothing stored 30 s after start" >&2
  tail -n 20 "$work/agent.log" "$work/aggregator.log" >&2
  exit 1
fi

results=$work/results
: >"$results"
printf '%-6s %-8s %12s %12s\n' round outage connected stored
for ((r = 1; r <= rounds; r++)); do
  outage=${outages[$(((r - 1) % ${#outages[@]}))]}
  # Data flows before each kill, so every round starts from the same place.
  before=$(stored)
  for _ in $(seq 300); do (($(stored) > before)) && break; sleep 0.1; done

  kill -KILL "$broker"
  wait "$broker" 2>/dev/null || true
  sleep "$outage"
  conn_before=$(connects)
  stored_before=$(stored)
  start_broker
  until listening; do sleep 0.01; done
  back=$(now)

  t_conn= t_stored=
  deadline=$(($(date +%s) + round_timeout))
  while [[ -z $t_conn || -z $t_stored ]] && (($(date +%s) < deadline)); do
    [[ -z $t_conn ]] && (($(connects) > conn_before)) && t_conn=$(ms_between "$back" "$(now)")
    [[ -z $t_stored ]] && (($(stored) > stored_before)) && t_stored=$(ms_between "$back" "$(now)")
    sleep 0.02
  done
  if ! kill -0 "$agent" 2>/dev/null; then
    echo "reconnect: the agent exited" >&2
    tail -n 20 "$work/agent.log" >&2
    exit 1
  fi
  printf '%-6s %-8s %12s %12s\n' "$r" "${outage}s" "${t_conn:-timeout} ms" "${t_stored:-timeout} ms"
  echo "$outage ${t_conn:-999999} ${t_stored:-999999}" >>"$results"
done

echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [tuple(int(x) for x in line.split()) for line in open(sys.argv[1]) if line.strip()]
def show(label, sel):
    if not sel:
        return
    conn = [c for _, c, _ in sel]
    stored = [s for _, _, s in sel]
    print(f"{label:<28} {len(sel):>3} rounds  connected median {statistics.median(conn) / 1000:.2f} s"
          f" worst {max(conn) / 1000:.2f} s   stored median {statistics.median(stored) / 1000:.2f} s"
          f" worst {max(stored) / 1000:.2f} s")
show("all outages", rows)
for o in sorted({r[0] for r in rows}):
    show(f"outages of {o} s", [r for r in rows if r[0] == o])
PY
