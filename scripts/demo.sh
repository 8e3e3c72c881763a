#!/usr/bin/env bash
# edgetel on one machine, end to end:
#   mosquitto (mutual TLS, 127.0.0.1)  <-  edgetel-agent (system metrics + sim)
#   mosquitto                          ->  edgetel-aggregator (SQLite store)
#   mosquitto                          <-> edgetelctl ca serve (the issuer)
# and a live view of what reaches the store. Ctrl-C stops everything.
# The board enrolls by claim as a freshly flashed one does: on the first
# run edgetelctl provision writes its first-boot folder (demo/boot stands
# for the SD card's boot partition); the agent takes its config and claim
# from there, makes its own key and gets its certificate from the issuer.
#
# Everything it makes goes in demo/ in the repo (git-ignored): certificates
# (made on the first run, kept afterwards), configs, logs, the agent's
# outbox and the store. Running it again picks up where the last run ended.
#
# Options:
#   --duration SECONDS   stop by itself after that long (for scripted runs)
#   --fresh              delete demo/ data (not the CA) first: the board is
#                        flashed anew and enrolls by claim again
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

duration=0
fresh=0
while (($#)); do
  case "$1" in
    --duration) duration=${2:?--duration needs a number of seconds}; shift 2 ;;
    --fresh) fresh=1; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$duration" =~ ^[0-9]+$ ]]; then
  echo "demo: --duration $duration: expected whole seconds" >&2
  exit 2
fi

demo=$repo/demo
build=$repo/build
device=demo-device
mkdir -p "$demo/logs" "$demo/run"

# One demo at a time: two agents on one outbox would be a different demo.
exec 9>"$demo/run/lock"
if ! flock -n 9; then
  echo "demo: another demo is running from this checkout (lock $demo/run/lock)." >&2
  exit 1
fi

# A previous run that was killed outright (no chance to clean up) may have
# left its programs behind; stop those, and only those.
for pidfile in "$demo"/run/*.pid; do
  [[ -e "$pidfile" ]] || continue
  pid=$(cat "$pidfile")
  if [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] &&
     tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$demo/"; then
    echo "demo: stopping $(basename "$pidfile" .pid) (pid $pid) left by an earlier run"
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done

echo "demo: checking dependencies"
./scripts/deps.sh

# ---- build -------------------------------------------------------------------
if [[ -f "$build/CMakeCache.txt" ]] &&
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$repo" "$build/CMakeCache.txt"; then
  echo "demo: $build belongs to another checkout; starting it afresh"
  rm -rf "$build"
fi
echo "demo: building into build/ (first time takes a minute)"
cmake -S . -B "$build" >"$demo/logs/build.log" 2>&1 &&
  cmake --build "$build" -j "$(nproc)" \
    --target edgetel-agent edgetel-aggregator edgetelctl edgetel_acl \
    >>"$demo/logs/build.log" 2>&1 || {
  tail -n 30 "$demo/logs/build.log" >&2
  echo "demo: the build failed; the whole log is $demo/logs/build.log" >&2
  exit 1
}
agent_bin=$build/agent/edgetel-agent
aggregator_bin=$build/aggregator/edgetel-aggregator
ctl_bin=$build/ctl/edgetelctl

# ---- certificates (first run only) ------------------------------------------
# The fleet CA of edgetelctl: a demo CA in demo/certs/ca, and certificates
# for the broker, the aggregator (instance 1) and the issuer (issuer-1) in
# demo/certs/issued. None for the device: it makes its own key.
source "$repo/scripts/site.sh"
certs=$demo/certs
if [[ ! -f "$certs/issued/issuer-1.crt" ]]; then
  echo "demo: making a demo CA and certificates in demo/certs/ (edgetelctl ca)"
fi
{ et_site_certs "$ctl_bin" "$certs" "" && et_site_issuer "$ctl_bin" "$certs"; } \
  >"$demo/logs/certs.log" 2>&1 || {
  cat "$demo/logs/certs.log" >&2
  echo "demo: making certificates failed" >&2
  exit 1
}

# The operator's signing key for config pushes (edgetelctl keys init), made
# once; the board trusts its public half ([agent] trusted_keys).
operator=$demo/operator
if [[ ! -f "$operator/operator.key" ]]; then
  "$ctl_bin" keys init --dir "$operator" >"$demo/logs/keys.log" 2>&1 || {
    cat "$demo/logs/keys.log" >&2
    echo "demo: making the operator key failed" >&2
    exit 1
  }
fi

if ((fresh)); then
  # The broker's persistence too: its retained configs belong to the old store.
  rm -rf "$demo/agent-data" "$demo/etc" "$demo/boot" "$demo/store.db" "$demo/store.db-wal" \
    "$demo/store.db-shm" "$demo/run/sim-interval" "$demo/run/port" "$demo/mosquitto"
fi

# ---- ports: the broker's 8883 and the web view's 8080 when free ---------------
port_in_use() {
  # A connection that succeeds means something listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
# first_free FROM WHAT: the first port from FROM up to FROM+100 that nothing holds.
first_free() {
  local p=$1
  while port_in_use "$p"; do
    p=$((p + 1))
    if ((p > $1 + 100)); then
      echo "demo: no free port in $1..$(($1 + 100)) on 127.0.0.1 for $2" >&2
      return 1
    fi
  done
  echo "$p"
}
port=$(first_free 8883 "the broker") || exit 1
web_port=$(first_free 8080 "the web view") || exit 1

# ---- configs -------------------------------------------------------------------
# The broker config is the shipped template with this demo's values: the
# client id bound to the certificate, the CRL, the edgetel_acl plugin.
mkdir -p "$demo/mosquitto"
et_site_broker_conf "$certs" "$port" "$demo/mosquitto" "$build/broker/edgetel_acl.so" \
  "$demo/mosquitto.conf"

cat >"$demo/aggregator.conf" <<EOF
[aggregator]
log_level = info

[mqtt]
host = 127.0.0.1
port = $port
ca = $certs/ca/ca.crt
cert = $certs/issued/aggregator-1.crt
key = $certs/issued/aggregator-1.key

[store]
type = sqlite
path = $demo/store.db

# The fleet's web view and Prometheus /metrics, on loopback only.
[http]
enabled = true
address = 127.0.0.1
port = $web_port
EOF

cat >"$demo/issuer.conf" <<EOF
[issuer]
# A day each; the board renews at two thirds of that (renew_at).
device_lifetime = 1d

[mqtt]
host = 127.0.0.1
port = $port
ca = $certs/ca/ca.crt
cert = $certs/issued/issuer-1.crt
key = $certs/issued/issuer-1.key
EOF

# The board. Before its first run (no identity yet) edgetelctl provision
# writes what a freshly flashed SD card carries on its boot partition;
# the agent moves it into demo/etc and demo/agent-data when it starts.
# Later runs only point its config at this run's port.
if [[ ! -f "$demo/agent-data/identity/current" ]]; then
  cat >"$demo/board-template.conf" <<EOF
[agent]
batch_interval = 2s
log_level = info

[mqtt]
# The demo's certificates were made on this machine by this clock, so
# there is no point waiting for NTP before connecting.
clock_wait = 0s

[collector cpu]
type = cpu
interval = 2s

[collector memory]
type = memory
interval = 5s

[collector load]
type = load
interval = 5s

[collector uptime]
type = uptime
interval = 10s

[collector sim]
type = sim
interval = 5s
period = 30s
EOF
  rm -rf "${demo:?}/etc" "${demo:?}/agent-data"
  "$ctl_bin" provision "$device" --dir "$certs/ca" --boot "$demo/boot" \
    --broker "127.0.0.1:$port" --etc "$demo/etc" --data-dir "$demo/agent-data" \
    --template "$demo/board-template.conf" --operator-key "$operator/operator.pub" \
    >"$demo/logs/provision.log" 2>&1 || {
    cat "$demo/logs/provision.log" >&2
    echo "demo: edgetelctl provision failed" >&2
    exit 1
  }
  echo "demo: provisioned $device for enrollment by claim; its first-boot folder is demo/boot"
else
  sed -i "s/^port = .*/port = $port/" "$demo/etc/agent.conf"
  # A config pushed in an earlier run names that run's broker port, and a
  # committed push wins over the local file: on another port, go back to
  # the file (the agent is not running yet).
  if [[ "$(cat "$demo/run/port" 2>/dev/null)" != "$port" ]]; then
    "$agent_bin" --config "$demo/etc/agent.conf" --forget-push >"$demo/logs/forget.log" 2>&1 || true
    rm -f "$demo/run/sim-interval"
  fi
fi
echo "$port" >"$demo/run/port"

# ---- start, and stop everything on the way out ----------------------------------
names=()
pids=()

stop_all() {
  local i waited
  # One at a time, newest first: the agent says goodbye (its offline status)
  # while the aggregator still listens, then the aggregator, then the broker.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    waited=0
    while kill -0 "${pids[i]}" 2>/dev/null && ((waited < 50)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "${pids[i]}" 2>/dev/null; then
      echo "demo: ${names[i]} did not stop within 5 s; killing it"
      kill -KILL "${pids[i]}" 2>/dev/null || true
    fi
    wait "${pids[i]}" 2>/dev/null || true
    rm -f "$demo/run/${names[i]}.pid"
  done
  pids=()
  names=()
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  # Output may be gone (closed terminal, `| head`): cleaning up still
  # matters more than any message, so no command here may end the script.
  trap '' PIPE
  set +e
  # The scheduled push, if it has not run yet (a short run, an early Ctrl-C).
  if [[ -n "${push_pid:-}" ]]; then
    kill "$push_pid" 2>/dev/null
    wait "$push_pid" 2>/dev/null
  fi
  if ((${#pids[@]})); then
    echo
    echo "demo: stopping"
    stop_all
    local left
    left=$(pgrep -f -- "$demo/" || true)
    if [[ -n "$left" ]]; then
      echo "demo: still running, please check: $left" >&2
    else
      echo "demo: stopped; nothing left running. Data stays in demo/ for the next run."
    fi
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A closed terminal (HUP) or a reader that went away (PIPE) would otherwise
# end this script without cleaning up, and the broker ignores HUP.
trap 'exit 129' HUP
trap 'exit 141' PIPE

# start NAME COMMAND...: run in the background, log to demo/logs/NAME.log.
start() {
  local name=$1
  shift
  # 9>&-: the programs must not inherit the demo lock and hold it after us.
  # setsid: a new session, so the terminal's Ctrl-C reaches only this script,
  # which then stops them in order (setsid execs in place: $! is the program).
  setsid "$@" >"$demo/logs/$name.log" 2>&1 9>&- &
  local pid=$!
  names+=("$name")
  pids+=("$pid")
  echo "$pid" >"$demo/run/$name.pid"
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, or give up.
wait_for() {
  local what=$1 limit=$2 waited=0
  shift 2
  until "$@"; do
    if ((waited >= limit * 10)); then
      echo "demo: $what did not happen within ${limit}s" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

alive() {
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      if [[ -f "$demo/logs/${names[i]}.log" ]]; then
        echo "demo: ${names[i]} exited; its log ($demo/logs/${names[i]}.log) ends:" >&2
        tail -n 20 "$demo/logs/${names[i]}.log" >&2
      else
        echo "demo: ${names[i]} exited" >&2
      fi
      return 1
    fi
  done
}

# Debian puts mosquitto in /usr/sbin, which is not on a normal user's PATH.
mosquitto_bin=$(PATH=$PATH:/usr/sbin:/sbin command -v mosquitto) || {
  echo "demo: mosquitto not found (scripts/deps.sh installs it)" >&2
  exit 1
}
start mosquitto "$mosquitto_bin" -c "$demo/mosquitto.conf"
# Our broker's own log, not just an open port: another program that took
# the port since we looked would otherwise pass for it.
broker_listening() {
  alive || exit 1
  grep -q "listen socket on port $port" "$demo/logs/mosquitto.log" 2>/dev/null &&
    port_in_use "$port"
}
wait_for "mosquitto listening on 127.0.0.1:$port" 10 broker_listening || exit 1
start aggregator "$aggregator_bin" --config "$demo/aggregator.conf"
start issuer "$ctl_bin" ca serve --dir "$certs/ca" --config "$demo/issuer.conf"
# Subscribed before the board asks: a request nobody takes is dropped.
issuer_ready() {
  alive || exit 1
  grep -q "taking requests on" "$demo/logs/issuer.log" 2>/dev/null
}
wait_for "the issuer taking requests" 10 issuer_ready || exit 1
start agent "$agent_bin" --config "$demo/etc/agent.conf" --boot-dir "$demo/boot"

store_has_data() {
  alive || exit 1
  [[ -f "$demo/store.db" ]] &&
    "$ctl_bin" --store "$demo/store.db" devices 2>/dev/null | grep -q -- "$device"
}
echo "demo: waiting for the first batch to reach the store"
wait_for "a first batch from $device in the store" 30 store_has_data || exit 1

cat <<EOF

  edgetel demo — running now
  ----------------------------------------------------------------------
  mosquitto          127.0.0.1:$port, mutual TLS, client id = certificate,
                     edgetel_acl topic rules, CRL (demo/mosquitto.conf)
  edgetel-aggregator SQLite store demo/store.db   (demo/aggregator.conf)
  web view           http://127.0.0.1:$web_port/   (the fleet; click the device for plots)
                     http://127.0.0.1:$web_port/metrics   (Prometheus)
  edgetelctl ca serve the issuer: signs the board's CSRs (demo/issuer.conf)
  edgetel-agent      device "$device": cpu, memory, load, uptime, sim;
                     enrolled by claim, its key made in
                     demo/agent-data/identity/, outbox demo/agent-data/
                     (its first boot: demo/boot -> demo/etc/agent.conf)
  logs               demo/logs/{mosquitto,aggregator,issuer,agent}.log
                     (grep identity demo/logs/agent.log: its enrollment)
  look around        $ctl_bin --store demo/store.db devices
                     $ctl_bin --store demo/store.db metrics
                     $ctl_bin --store demo/store.db config status
  in 12 s            a signed config push changes the sim interval
  ----------------------------------------------------------------------
  Below: every sample as it lands in the store.  Stop with Ctrl-C.

EOF

# push_config: after a while, change the sim interval from the cloud: a
# config signed with the operator key, queued in the store, relayed by the
# aggregator, applied live by the agent, which commits it and reports.
# Each run goes the other way (5 s -> 1 s, then 1 s -> 5 s).
push_config() {
  local prev=5s next=1s
  if [[ -f "$demo/run/sim-interval" && $(cat "$demo/run/sim-interval") == 1s ]]; then
    prev=1s
    next=5s
  fi
  sleep 12
  # The board's own file with another sim interval: what the operator
  # would edit and push.
  awk -v iv="$next" '/^\[/ { sec = $0 } sec == "[collector sim]" && /^interval *=/ {
    print "interval = " iv; next } { print }' "$demo/etc/agent.conf" >"$demo/agent-push.conf"
  echo
  echo "demo: pushing a signed config to $device: sim every $next instead of $prev:"
  echo "      edgetelctl --store demo/store.db config push --key demo/operator/operator.key \\"
  echo "        --device $device demo/agent-push.conf"
  if "$ctl_bin" --store "$demo/store.db" config push --key "$operator/operator.key" \
       --device "$device" "$demo/agent-push.conf" >"$demo/logs/push.log" 2>&1; then
    echo "$next" >"$demo/run/sim-interval"
    sed 's/^/      /' "$demo/logs/push.log"
  else
    echo "demo: the push failed:" >&2
    cat "$demo/logs/push.log" >&2
    return
  fi
  sleep 8
  echo
  echo "demo: edgetelctl --store demo/store.db config status"
  "$ctl_bin" --store "$demo/store.db" config status | sed 's/^/      /'
  echo
}

if ((duration > 0)); then
  push_config 9>&- &
  push_pid=$!
  "$ctl_bin" --store "$demo/store.db" tail 9>&- &
  tail_pid=$!
  names+=("edgetelctl-tail")
  pids+=("$tail_pid")
  end=$((SECONDS + duration))
  while ((SECONDS < end)); do
    alive || exit 1
    sleep 1
  done
  echo
  echo "demo: $duration s are up"
  "$ctl_bin" --store "$demo/store.db" devices || true
else
  push_config 9>&- &
  push_pid=$!
  # In the foreground, so Ctrl-C reaches it; the EXIT trap then stops the rest.
  "$ctl_bin" --store "$demo/store.db" tail 9>&- || true
fi
