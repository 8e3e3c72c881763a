# What the benchmarks that run the real programs share (drain.sh,
# reconnect.sh): the certificates, a free port, the shipped broker config
# and the aggregator's config, all in the benchmark's own directory.
# Sourced, with $repo set to the checkout.

source "$repo/scripts/site.sh"

# et_bench_setup WORK DEVICE: certificates for DEVICE and the aggregator in
# WORK/certs (edgetelctl ca, from $build), a free port in $port,
# WORK/mosquitto.conf from the shipped template, WORK/aggregator.conf
# (store WORK/store.db), WORK/agent/ made.
et_bench_setup() {
  local work=$1 device=$2

  et_site_certs "$build/ctl/edgetelctl" "$work/certs" "$device" || return 1
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/mosquitto" "$work/agent"
  et_site_broker_conf "$work/certs" "$port" "$work/mosquitto" "$build/broker/edgetel_acl.so" \
    "$work/mosquitto.conf"
  cat >"$work/aggregator.conf" <<CONF
[aggregator]
log_level = info
[mqtt]
host = 127.0.0.1
port = $port
ca = $work/certs/ca/ca.crt
cert = $work/certs/issued/aggregator-1.crt
key = $work/certs/issued/aggregator-1.key
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
ca = $work/certs/ca/ca.crt
cert = $work/certs/issued/$device.crt
key = $work/certs/issued/$device.key
clock_wait = 0s
$extra
[collector sim]
type = sim
interval = 1s
CONF
}
