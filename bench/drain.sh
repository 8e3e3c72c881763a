#!/usr/bin/env bash
# Drain benchmark: an agent comes back online with a backlog of SAMPLES
# samples (in batches of BATCH samples) and sends it over a loopback
# mosquitto with mutual TLS to an aggregator on SQLite. Measures the time
# until every backlog batch is acknowledged (deleted from the outbox) and
# the agent's peak RSS meanwhile.
#
#   bench/drain.sh [SAMPLES] [BATCH]      (defaults 1000000 1000)
#
# Uses the Release build in build-bench/ (made if missing). Everything runs
# on 127.0.0.1 and in a temp dir that is removed at the end.
set -euo pipefail

samples=${1:-1000000}
per=${2:-1000}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ET_BENCH_BUILD:-$repo/build-bench}
device=bench-device

if [[ ! -x $build/bench/outbox_fill || ! -x $build/agent/edgetel-agent ]]; then
  cmake -S "$repo" -B "$build" -DET_BUILD_BENCH=ON -DET_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" >/dev/null
fi

work=$(mktemp -d /tmp/edgetel-drain-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
et_bench_setup "$work" "$device"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
broker=$!
pids+=("$broker")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

"$build/aggregator/edgetel-aggregator" --config "$work/aggregator.conf" 2>"$work/aggregator.log" &
aggregator=$!
pids+=("$aggregator")

# The aggregator must be subscribed before the agent sends: a batch the
# broker has nobody to give to waits for the ack timeout.
for _ in $(seq 100); do grep -q "subscribed" "$work/aggregator.log" && break; sleep 0.1; done

"$build/bench/outbox_fill" "$work/agent/outbox.db" "$device" "$samples" "$per" >/dev/null
backlog=$(sqlite3 "$work/agent/outbox.db" "select count(*), max(seq) from batch")
last_seq=${backlog#*|}

et_bench_agent_conf "$work" "$device" warn "max_inflight = ${ET_BENCH_INFLIGHT:-16}"

start=$(date +%s.%N)
"${ET_BENCH_AGENT:-$build/agent/edgetel-agent}" --config "$work/agent.conf" 2>"$work/agent.log" &
agent=$!
pids+=("$agent")
peak_rss=0
peak_anon=0
left=$last_seq
# Bounded: two minutes at most.
for _ in $(seq 1200); do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$agent/status" 2>/dev/null || echo 0)
  anon=$(awk '/^RssAnon/ {print $2}' "/proc/$agent/status" 2>/dev/null || echo 0)
  ((rss > peak_rss)) && peak_rss=$rss
  ((anon > peak_anon)) && peak_anon=$anon
  # Acknowledged = the aggregator committed it and published the Ack. (The
  # agent's deletes land in its own group commit, seen from outside only at
  # the end of its durability window.)
  acked=$(sqlite3 "$work/store.db" "select s.acked_through from devices d join streams s on s.device = d.id and s.stream = d.stream where d.id = '$device'" 2>/dev/null || echo 0)
  [[ $acked =~ ^[0-9]+$ ]] || acked=0
  left=$((last_seq - acked))
  ((left <= 0)) && { left=0; break; }
  sleep 0.1
done
end=$(date +%s.%N)
# CPU seconds (user + system) each process used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"; }
cpu_agent=$(cpu_s "$agent"); cpu_agg=$(cpu_s "$aggregator"); cpu_broker=$(cpu_s "$broker")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$agent/status" 2>/dev/null || echo 0)
stored=$(sqlite3 "$work/store.db" "select samples_stored from devices where id = '$device'" 2>/dev/null || echo "?")

if [[ $left != 0 ]]; then
  echo "drain: $left backlog batches still unacknowledged after two minutes" >&2
  tail -n 20 "$work/agent.log" "$work/aggregator.log" >&2
  exit 1
fi
printf '%-44s %s\n' "backlog" "$samples samples in ${backlog%|*} batches of $per"
printf '%-44s %.2f s\n' "drained to aggregator-acknowledged" "$(echo "$end - $start" | bc)"
printf '%-44s %s\n' "samples stored by the aggregator" "$stored"
printf '%-44s %.1f MB (VmHWM %.1f MB)\n' "agent RSS peak during the drain" \
  "$(echo "$peak_rss / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)"
printf '%-44s agent %s, aggregator %s, mosquitto %s\n' "CPU seconds" "$cpu_agent" "$cpu_agg" "$cpu_broker"
printf '%-44s %.1f MB\n' "  of which private (RssAnon; the rest is shared library pages)" \
  "$(echo "$peak_anon / 1024" | bc -l)"
