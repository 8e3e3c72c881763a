# What the scripts that run a whole site on this machine share (demo.sh,
# bench/lib.sh, cross-test.sh): certificates from edgetelctl ca and the
# shipped broker config filled in. Sourced; needs $repo (the checkout).

# et_site_certs CTL DIR DEVICE: a fleet CA in DIR/ca and, in DIR/issued,
# certificates for the broker (DIR/issued/broker.crt), the aggregator
# instance aggregator-1 and DEVICE (none when DEVICE is "": a board that
# enrolls by claim makes its own key), each only if not made yet.
et_site_certs() {
  local ctl=$1 dir=$2 device=$3
  [[ -f "$dir/ca/ca.crt" ]] || "$ctl" ca init --dir "$dir/ca" >/dev/null || return 1
  [[ -f "$dir/issued/broker.crt" ]] ||
    "$ctl" ca issue server broker --dir "$dir/ca" --out "$dir/issued" >/dev/null || return 1
  [[ -f "$dir/issued/aggregator-1.crt" ]] ||
    "$ctl" ca issue aggregator 1 --dir "$dir/ca" --out "$dir/issued" >/dev/null || return 1
  [[ -z "$device" || -f "$dir/issued/$device.crt" ]] ||
    "$ctl" ca issue device "$device" --dir "$dir/ca" --out "$dir/issued" >/dev/null
}

# et_site_issuer CTL DIR: the cloud issuer's certificate, issuer-1, in
# DIR/issued (for edgetelctl ca serve), if not made yet.
et_site_issuer() {
  local ctl=$1 dir=$2
  [[ -f "$dir/issued/issuer-1.crt" ]] ||
    "$ctl" ca issue issuer 1 --dir "$dir/ca" --out "$dir/issued" >/dev/null
}

# et_site_broker_conf CERTS PORT PERSIST PLUGIN OUT: the shipped mosquitto
# config for the certificates et_site_certs made in CERTS, listening on
# 127.0.0.1:PORT, with the edgetel_acl plugin at PLUGIN, written to OUT.
et_site_broker_conf() {
  local certs=$1 port=$2 persist=$3 plugin=$4 out=$5
  sed -e "s|@ET_MQTT_PORT@|$port|g" -e "s|@ET_MQTT_BIND@|127.0.0.1|g" \
      -e "s|@ET_CA_DIR@|$certs/ca|g" \
      -e "s|@ET_SERVER_CERT@|$certs/issued/broker.crt|g" \
      -e "s|@ET_SERVER_KEY@|$certs/issued/broker.key|g" \
      -e "s|@ET_ACL_PLUGIN@|$plugin|g" \
      -e "s|@ET_PERSIST_DIR@|$persist|g" -e "s|@ET_BROKER_USER@|$(id -un)|g" \
      "$repo/packaging/mosquitto/edgetel.conf.in" >"$out"
}
