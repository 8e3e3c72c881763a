#!/usr/bin/env bash
# compare.sh — edgetel-agent and collectd side by side, at once, against one
# local mosquitto, for a few minutes; then a table with ratios.
#
#   bench/compare.sh [--agent-only] [SECONDS]      (default 240)
#
# What runs (everything on 127.0.0.1, in a temp dir removed at the end):
#   - mosquitto with two TLS listeners: one with the shipped edgetel rules
#     (the edgetel_acl plugin) for the agents and the aggregator, one without
#     rules for collectd and the observer;
#   - edgetel-aggregator on SQLite (it acks, so the agents never resend for
#     want of one);
#   - agent "1s": the default system set with every collector at 1 s;
#   - agent "default": the default system set at its default intervals;
#   - agent "static": as "1s", the single-file static build, when it links;
#   - with ET_BENCH_BEFORE=PATH, that agent (an older build) as "old-1s" and
#     "old-default": before and after in one run;
#   - collectd 5.12 (Debian's collectd-core) with cpu, memory, df, disk,
#     interface, load, uptime, processes and thermal every 1 s, writing
#     through its mqtt plugin (QoS 1, TLS) — the agent's default set as
#     near as collectd has it;
#   - an observer (mosquitto_sub) that logs every PUBLISH the agents and
#     collectd make: its topic, its payload length and, for collectd, the
#     payload (one value list, "time:v1[:v2...]").
# Half way through, the broker is killed and restarted 20 s later.
#
# What it prints, per program, and the ratios agent / collectd. "Steady"
# is the window from 30 s in to the outage (start-up is over: probes, TLS
# handshakes, an agent's metric dictionary, sent once per stream); "whole
# run" counts everything:
#   - MQTT PUBLISH bytes per value: every PUBLISH packet the program sent
#     (fixed header, topic, packet id, MQTT 5 properties, payload; computed
#     from topic and payload length as the observer got them, so resends
#     count), divided by the values that arrived (an agent's: samples the
#     aggregator stored, each once; collectd's: the values in its payloads);
#   - CPU seconds per 1,000 values: user + system time of the whole process
#     (every thread; /proc/PID/task/*/schedstat, nanoseconds) over the
#     values it made;
#   - VmRSS and PSS (smaps_rollup), medians of one reading a second;
#   - values lost in the 20 s broker outage: from the values per second of
#     the minute before it, what is missing from the window around it once
#     everything has come back (an agent's values carry their measuring time;
#     collectd's too).
# The programs share the machine and run at once, so the ratios hold on a
# busy machine; the absolute numbers do not. Values per round differ by
# machine (disks, interfaces, cores): the per-value figures divide by what
# each program really made.
#
# collectd-core is installed from Debian (apt-get, as scripts/deps.sh does)
# when missing; when that cannot be done (no network), the script says so
# and exits 2. --agent-only runs the agents alone (no collectd column).
set -euo pipefail

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$prog" "$*" >&2; }

agent_only=0
if [[ ${1:-} == --agent-only ]]; then
  agent_only=1
  shift
fi
seconds=${1:-240}
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds >= 90)) || die "SECONDS \"$seconds\": at least 90"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ET_BENCH_BUILD:-$repo/build-bench}
static_build=${ET_BENCH_STATIC_BUILD:-$repo/build-bench-static}
outage=20

# ---- what is needed --------------------------------------------------------
for tool in mosquitto_sub awk sqlite3 cmake; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/deps.sh first"
done
[[ -x /usr/sbin/mosquitto ]] || die "/usr/sbin/mosquitto not found: run scripts/deps.sh first"
if ((agent_only == 0)) && [[ ! -x /usr/sbin/collectd ]]; then
  say "collectd is not installed: installing Debian's collectd-core"
  sudo=()
  ((EUID == 0)) || sudo=(sudo)
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
     ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends collectd-core; then
    say "cannot install collectd-core (see apt-get's lines above: no network or no"
    say "Debian mirror reachable?). The comparison needs collectd; nothing was measured."
    say "Run it again when apt-get works, or with --agent-only for the agents alone."
    exit 2
  fi
  [[ -x /usr/sbin/collectd ]] || { say "collectd-core installed no /usr/sbin/collectd"; exit 2; }
fi

if [[ ! -x $build/agent/edgetel-agent || ! -x $build/aggregator/edgetel-aggregator ||
      ! -x $build/ctl/edgetelctl || ! -f $build/broker/edgetel_acl.so ]]; then
  say "building the Release programs in $build"
  cmake -S "$repo" -B "$build" -DET_BUILD_BENCH=ON -DET_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "${JOBS:-2}" >/dev/null
fi
static_agent=
if [[ ${ET_BENCH_STATIC:-1} == 1 ]]; then
  if [[ ! -x $static_build/agent/edgetel-agent ]]; then
    say "building the static agent in $static_build"
    { cmake -S "$repo" -B "$static_build" -DET_STATIC=ON -DET_BUILD_TESTS=OFF \
        -DET_BUILD_CLOUD=OFF -DCMAKE_BUILD_TYPE=Release &&
      cmake --build "$static_build" -j "${JOBS:-2}" --target edgetel-agent; } \
      >"${TMPDIR:-/tmp}/edgetel-compare-static.log" 2>&1 ||
      say "the static agent does not build here (log: ${TMPDIR:-/tmp}/edgetel-compare-static.log)"
  fi
  if [[ -x $static_build/agent/edgetel-agent ]]; then
    static_agent=$static_build/agent/edgetel-agent
  fi
fi

# ---- the site --------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/edgetel-compare-XXXXXX")
pids=()
cleanup() {
  local p
  # An observer's loop is held first, then what it runs (its mosquitto_sub)
  # ended, then the loop: it cannot start another in between.
  for p in "${pids[@]}"; do
    kill -STOP "$p" 2>/dev/null || true
    pkill -P "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null || true
    kill -CONT "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${COMPARE_KEEP:-0} == 1 ]]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
ctl=$build/ctl/edgetelctl
agents=(cmp-1s cmp-default)
if [[ -n $static_agent ]]; then agents+=(cmp-static); fi
# ET_BENCH_BEFORE: another build's edgetel-agent (an older revision), run
# beside at 1 s and at default intervals: before and after in one run.
before_agent=${ET_BENCH_BEFORE:-}
if [[ -n $before_agent ]]; then
  [[ -x $before_agent ]] || die "ET_BENCH_BEFORE \"$before_agent\" is not a program"
  agents+=(old-1s old-default)
fi
et_bench_setup "$work" cmp-1s || die "cannot make the site's certificates"
for name in "${agents[@]}" collectd-bench observer observer2; do
  et_site_certs "$ctl" "$work/certs" "$name" || die "cannot issue a certificate for $name"
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open=$(free_port)
certs=$work/certs
cat >"$work/mosquitto.conf" <<CONF
per_listener_settings true
user $(id -un)
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
max_packet_size 1048576
set_tcp_nodelay true
max_queued_messages 1000

# The agents and the aggregator: the shipped rules.
listener $port 127.0.0.1
protocol mqtt
cafile $certs/ca/ca.crt
certfile $certs/issued/broker.crt
keyfile $certs/issued/broker.key
tls_version tlsv1.2
require_certificate true
use_identity_as_username true
use_username_as_clientid true
plugin $build/broker/edgetel_acl.so
plugin_opt_topic_root edgetel

# collectd and the observer: TLS too, no topic rules.
listener $port_open 127.0.0.1
protocol mqtt
cafile $certs/ca/ca.crt
certfile $certs/issued/broker.crt
keyfile $certs/issued/broker.key
tls_version tlsv1.2
require_certificate true
use_identity_as_username true
use_username_as_clientid true
allow_anonymous false
CONF

start_broker() {
  /usr/sbin/mosquitto -c "$work/mosquitto.conf" 2>>"$work/mosquitto.log" &
  broker=$!
  pids+=("$broker")
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  die "mosquitto did not start: $(tail -n 5 "$work/mosquitto.log")"
}
start_broker

# The observers: restarted whenever the broker goes (bounded by the run's
# end). Each has a certificate of its own (the broker makes a client's id
# its certificate's name). The agents' payloads are binary: only their
# length is logged.
end_by=$(($(date +%s) + seconds + 120))
observe() {
  local cert=$1 format=$2 out=$3
  shift 3
  while (($(date +%s) < end_by)); do
    mosquitto_sub -h 127.0.0.1 -p "$port_open" -q 1 --cafile "$certs/ca/ca.crt" \
      --cert "$certs/issued/$cert.crt" --key "$certs/issued/$cert.key" \
      "$@" -F "$format" >>"$out" 2>>"$work/observer.log" || true
    sleep 0.5
  done
}
observe observer '%U %t %l' "$work/observed.edgetel" -t 'edgetel/v1/+/telemetry' -t 'edgetel/v1/+/status' &
pids+=($!)
observe observer2 '%U %t %l %p' "$work/observed.collectd" -t 'collectd/#' &
pids+=($!)

"$build/aggregator/edgetel-aggregator" --config "$work/aggregator.conf" 2>"$work/aggregator.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "subscribed" "$work/aggregator.log" && break; sleep 0.1; done

# The agents.
agent_conf() {
  local name=$1 interval=$2
  mkdir -p "$work/$name"
  {
    printf '[agent]\ndevice_id = %s\ndata_dir = %s/%s\nlog_level = warn\n' "$name" "$work" "$name"
    printf '[mqtt]\nhost = 127.0.0.1\nport = %s\nca = %s\ncert = %s\nkey = %s\nclock_wait = 0s\n' \
      "$port" "$certs/ca/ca.crt" "$certs/issued/$name.crt" "$certs/issued/$name.key"
    # Any [collector] section turns the implicit set off: name it whole.
    for c in cpu memory disk diskio net load uptime procs thermal throttle self; do
      printf '[collector %s]\ntype = %s\n' "$c" "$c"
      if [[ -n $interval ]]; then printf 'interval = %s\n' "$interval"; fi
    done
  } >"$work/$name.conf"
}
declare -A pid_of
for name in "${agents[@]}"; do
  bin=$build/agent/edgetel-agent interval=1s
  if [[ $name == cmp-static ]]; then bin=$static_agent; fi
  if [[ $name == old-* ]]; then bin=$before_agent; fi
  if [[ $name == *-default ]]; then interval=; fi
  agent_conf "$name" "$interval"
  "$bin" --config "$work/$name.conf" 2>"$work/$name.log" &
  pid_of[$name]=$!
  pids+=($!)
done

if ((agent_only == 0)); then
  mkdir -p "$work/collectd"
  cat >"$work/collectd.conf" <<CONF
Hostname "bench"
FQDNLookup false
BaseDir "$work/collectd"
PIDFile "$work/collectd/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin load
LoadPlugin uptime
LoadPlugin processes
LoadPlugin thermal
LoadPlugin mqtt
<Plugin mqtt>
  <Publish "bench">
    Host "127.0.0.1"
    Port $port_open
    ClientId "collectd-bench"
    QoS 1
    Prefix "collectd"
    CACert "$certs/ca/ca.crt"
    CertificateFile "$certs/issued/collectd-bench.crt"
    CertificateKeyFile "$certs/issued/collectd-bench.key"
    TLSProtocol "tlsv1.2"
  </Publish>
</Plugin>
CONF
  /usr/sbin/collectd -f -C "$work/collectd.conf" >"$work/collectd.log" 2>&1 &
  pid_of[collectd]=$!
  pids+=($!)
fi
programs=("${agents[@]}")
if ((agent_only == 0)); then programs+=(collectd); fi

# ---- the run ---------------------------------------------------------------
# CPU time of every thread a process has now (ns): threads that ended are in
# the process's own stat, so both are read.
cpu_ns() {
  local p=$1
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1e9 / hz }' "/proc/$p/stat" 2>/dev/null || echo 0
}
sched_ns() {
  local p=$1
  cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}
sample_memory() {
  local name
  for name in "${programs[@]}"; do
    awk '/^VmRSS:/ { r = $2 } END { printf "%s ", r }' "/proc/${pid_of[$name]}/status" 2>/dev/null \
      >>"$work/$name.mem" || true
    awk '/^Pss:/ { print $2 }' "/proc/${pid_of[$name]}/smaps_rollup" 2>/dev/null \
      >>"$work/$name.mem" || echo >>"$work/$name.mem"
  done
}

t0=$(date +%s)
half=$((seconds / 2))
say "running ${programs[*]} for $seconds s; the broker goes for ${outage} s at ${half} s"
# The steady window: from 30 s in (probes, TLS handshakes, the metric
# dictionary sent once are over) to the outage.
declare -A cpu_steady0 cpu_steady1
steady_from=0
for ((i = 0; i < half; i++)); do
  sleep 1
  sample_memory
  if ((i == 29)); then
    steady_from=$(date +%s%3N)
    for name in "${programs[@]}"; do cpu_steady0[$name]=$(sched_ns "${pid_of[$name]}"); done
  fi
done
for name in "${programs[@]}"; do cpu_steady1[$name]=$(sched_ns "${pid_of[$name]}"); done
outage_start=$(date +%s%3N)
kill "$broker"
wait "$broker" 2>/dev/null || true
for ((i = 0; i < outage; i++)); do sleep 1; sample_memory; done
start_broker
outage_end=$(date +%s%3N)
for ((i = half + outage; i < seconds; i++)); do sleep 1; sample_memory; done
t1=$(date +%s)
declare -A cpu
for name in "${programs[@]}"; do
  kill -0 "${pid_of[$name]}" 2>/dev/null || die "$name stopped early: $(tail -n 5 "$work/$name.log" 2>/dev/null)"
  cpu[$name]=$(sched_ns "${pid_of[$name]}")
done
# Let what was held during the outage arrive and be acknowledged.
sleep 15

# ---- counting ----------------------------------------------------------------
touch "$work/observed.edgetel" "$work/observed.collectd"
# PUBLISH bytes of one message: fixed header (1 + remaining-length varint),
# topic (2 + n), packet id (QoS 1: 2), MQTT 5 properties (the agents: an
# empty list, 1 byte; collectd speaks 3.1.1), payload.
# publish_bytes WHO V5 [FROM TO]: bytes and messages of the topics matching
# WHO, received in [FROM, TO) ms (all when not given).
publish_bytes() {
  LC_ALL=C awk -v who="$1" -v v5="$2" -v from="${3:-0}" -v to="${4:-99999999999999}" '
    function varint(n) { return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4 }
    $2 ~ who && $1 * 1000 >= from && $1 * 1000 < to {
      rem = 2 + length($2) + 2 + (v5 ? 1 : 0) + $3; total += 1 + varint(rem) + rem; n++ }
    END { printf "%d %d\n", total, n }' "$work/observed.edgetel" "$work/observed.collectd"
}
store_sql() { sqlite3 "$work/store.db" "$1" 2>/dev/null || echo 0; }
# values of device with measuring time in [from, to) (ms)
stored_between() {
  store_sql "select count(*) from samples s join metrics m on m.id = s.metric_id
             where m.device = '$1' and s.ts_ms >= $2 and s.ts_ms < $3"
}
collectd_between() {
  LC_ALL=C awk -v from="$1" -v to="$2" '$2 ~ /^collectd\// {
      n = split($4, f, ":"); t = f[1] * 1000
      if (t >= from && t < to) c += n - 1 }
    END { printf "%d\n", c }' "$work/observed.collectd"
}
values_between() { if [[ $1 == collectd ]]; then collectd_between "$2" "$3"; else stored_between "$1" "$2" "$3"; fi; }
median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) : 0 }'; }

declare -A bpv bpv_steady cpuk cpuk_steady rss pss lost made
# Windows a whole number of 10 s long, so that rounds every 10 s (the
# agent's default intervals) count the same whatever their phase: 60 s
# before, and 40 s from 10 s before the outage to 10 s after it.
win_from=$((outage_start - 10000)) win_to=$((outage_start + 30000))
before_from=$((win_from - 60000)) before_to=$win_from
for name in "${programs[@]}"; do
  if [[ $name == collectd ]]; then
    read -r bytes msgs < <(publish_bytes '^collectd/' 0)
    total=$(collectd_between 0 99999999999999)
  else
    read -r bytes msgs < <(publish_bytes "^edgetel/v1/$name/" 1)
    total=$(store_sql "select samples_stored from devices where id = '$name'")
  fi
  made[$name]=$total
  bpv[$name]=$(awk -v b="$bytes" -v v="$total" 'BEGIN { printf "%.2f", v ? b / v : 0 }')
  cpuk[$name]=$(awk -v ns="${cpu[$name]}" -v v="$total" 'BEGIN { printf "%.4f", v ? ns / 1e9 / v * 1000 : 0 }')
  # The steady window: values measured in it, bytes received in it (a
  # batch arrives within a second or two of its values), CPU spent in it.
  steady=$(values_between "$name" "$steady_from" "$outage_start")
  if [[ $name == collectd ]]; then
    read -r sbytes _ < <(publish_bytes '^collectd/' 0 "$steady_from" "$outage_start")
  else
    read -r sbytes _ < <(publish_bytes "^edgetel/v1/$name/" 1 "$steady_from" "$outage_start")
  fi
  bpv_steady[$name]=$(awk -v b="$sbytes" -v v="$steady" 'BEGIN { printf "%.2f", v ? b / v : 0 }')
  cpuk_steady[$name]=$(awk -v ns="$((cpu_steady1[$name] - cpu_steady0[$name]))" -v v="$steady" \
    'BEGIN { printf "%.4f", v ? ns / 1e9 / v * 1000 : 0 }')
  rss[$name]=$(awk '{ print $1 }' "$work/$name.mem" | median)
  pss[$name]=$(awk '{ print $2 }' "$work/$name.mem" | median)
  before=$(values_between "$name" "$before_from" "$before_to")
  during=$(values_between "$name" "$win_from" "$win_to")
  lost[$name]=$(awk -v b="$before" -v d="$during" -v bl="$((before_to - before_from))" \
    -v wl="$((win_to - win_from))" 'BEGIN { e = b / bl * wl; l = e - d; printf "%d", (l > 0.5 ? l + 0.5 : 0) }')
done

# ---- the table ---------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
printf '\nedgetel-agent and collectd side by side, %s, %d s, one mosquitto (TLS), broker down %d s half way\n' \
  "$(uname -m)" "$((t1 - t0))" "$outage"
printf '%-38s' ""
for name in "${programs[@]}"; do printf ' %13s' "$name"; done
if ((agent_only == 0)); then printf ' %13s' "1s/collectd"; fi
printf '\n'
row() {
  local label=$1 key=$2 fmt=${3:-%s}
  local -n tbl=$key
  printf '%-38s' "$label"
  for name in "${programs[@]}"; do printf " %13s" "$(printf "$fmt" "${tbl[$name]}")"; done
  if ((agent_only == 0)); then printf ' %13s' "$(ratio "${tbl[cmp-1s]}" "${tbl[collectd]}")"; fi
  printf '\n'
}
row "values made (arrived)" made
row "PUBLISH bytes per value, steady" bpv_steady
row "  whole run (dictionary, outage)" bpv
row "CPU s per 1,000 values, steady" cpuk_steady
row "  whole run (start, reconnects)" cpuk
row "VmRSS median (KiB)" rss
row "PSS median (KiB)" pss
row "values lost in the ${outage} s outage" lost
printf '\ncmp-1s: default set, every collector at 1 s; cmp-default: default intervals;'
printf ' cmp-static: the static agent at 1 s; old-*: ET_BENCH_BEFORE, the same two ways.\n'
