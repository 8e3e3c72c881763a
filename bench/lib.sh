# What the benchmarks that run the real programs share (drain.sh,
# reconnect.sh): the certificates, a free port, the shipped broker config
# and the aggregator's config, all in the benchmark's own directory.
# Sourced, with $repo set to the checkout.

# et_bench_setup WORK DEVICE: certificates for DEVICE and the aggregator in
# WORK/certs, a free port in $port, WORK/mosquitto.conf from the shipped
# template, WORK/aggregator.conf (store WORK/store.db), WORK/agent/ made.
et_bench_setup() {
  local work=$1 device=$2

  "$repo/scripts/make-certs.sh" "$work/certs" "$device" >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/mosquitto" "$work/agent"
  sed -e "s|@ET_MQTT_PORT@|$port|g" -e "s|@ET_MQTT_BIND@|127.0.0.1|g" \
      -e "s|@ET_CERT_DIR@|$work/certs|g" -e "s|@ET_ACL_FILE@|$repo/packaging/mosquitto/acl|g" \
      -e "s|@ET_PERSIST_DIR@|$work/mosquitto|g" -e "s|@ET_BROKER_USER@|$(id -un)|g" \
      "$repo/packaging/mosquitto/edgetel.conf.in" >"$work/mosquitto.conf"
  cat >"$work/aggregator.conf" <<CONF
[aggregator]
log_level = info
[mqtt]
host = 127.0.0.1
port = $port
ca = $work/certs/ca.crt
cert = $work/certs/aggregator.crt
key = $work/certs/aggregator.key
[store]
path = $work/store.db
CONF
}

# et_bench_agent_conf WORK DEVICE LOG_LEVEL [MQTT_LINES]: WORK/agent.conf for
# DEVICE on the broker et_bench_setup made, a sim collector every second,
# MQTT_LINES (e.g. "max_inflight = 16") added to [mqtt].
et_bench_agent_conf() {
  local work=$1 device=$2 level=$3 extra=${4:-}

  cat >"$work/agent.conf" <<CONF
[agent]
device_id = $device
data_dir = $work/agent
log_level = $level
[mqtt]
host = 127.0.0.1
port = $port
ca = $work/certs/ca.crt
cert = $work/certs/$device.crt
key = $work/certs/$device.key
clock_wait = 0s
$extra
[collector sim]
type = sim
interval = 1s
CONF
}
