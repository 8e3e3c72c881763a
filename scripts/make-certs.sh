#!/bin/sh
# make-certs.sh DIR [DEVICE...]
#
# Makes, with the openssl command line, the certificates an edgetel site
# needs for mutual TLS, each only if it is not there yet, so the script can
# be run again to add devices:
#   DIR/ca.crt, ca.key                  the site CA (EC P-256)
#   DIR/server.crt, server.key          the broker, for 127.0.0.1 and localhost
#                                       (add names with ET_SERVER_NAMES, see below)
#   DIR/aggregator.crt, aggregator.key  the aggregator's identity (CN=aggregator)
#   DIR/<device>.crt, <device>.key      one per device (CN=<device id>)
# Keys are mode 0600. The broker takes the client's CN as its user name
# (mosquitto use_identity_as_username), so a device id may use only
# letters, digits, '.', '_' and '-' and cannot be "ca" or "server".
#
# Environment:
#   ET_CERT_DAYS     validity of the leaf certificates in days (default 825)
#   ET_CA_DAYS       validity of a new CA in days (default 3650)
#   ET_SERVER_NAMES  extra subjectAltName entries for the broker,
#                    e.g. "DNS:mqtt.example.org,IP:10.0.0.5"
set -eu

usage() {
    echo "usage: $0 DIR [DEVICE...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
dir=$1
shift
days=${ET_CERT_DAYS:-825}
ca_days=${ET_CA_DAYS:-3650}
server_san="IP:127.0.0.1,DNS:localhost${ET_SERVER_NAMES:+,$ET_SERVER_NAMES}"

command -v openssl >/dev/null 2>&1 || {
    echo "$0: openssl: command not found (install the openssl package)" >&2
    exit 1
}

for id in "$@"; do
    case $id in
        ca | server | "" | *[!A-Za-z0-9._-]* | .*)
            echo "$0: device id \"$id\": use letters, digits, '.', '_', '-' (not \"ca\" or \"server\", no leading '.')" >&2
            exit 2 ;;
    esac
done

umask 077
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# Write to a temporary name and rename, so an interrupted run never leaves a
# half-written key or certificate that a later run would take as present.
new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$tmp/key.pem" 2>"$tmp/err" || {
        cat "$tmp/err" >&2
        echo "$0: cannot make key $1" >&2
        exit 1
    }
    chmod 600 "$tmp/key.pem"
    mv "$tmp/key.pem" "$1"
}

serial() {
    # 16 random bytes, top bit cleared so the serial is positive as RFC 5280 asks.
    printf '0x%s' "$(openssl rand -hex 16 | sed 's/^./0/')"
}

if [ ! -f "$dir/ca.key" ]; then
    if [ -f "$dir/ca.crt" ]; then
        echo "$0: $dir/ca.crt exists without ca.key: refusing to make a new CA over it" >&2
        exit 1
    fi
    new_key "$dir/ca.key"
fi
if [ ! -f "$dir/ca.crt" ]; then
    openssl req -new -x509 -key "$dir/ca.key" -sha256 -days "$ca_days" \
        -set_serial "$(serial)" -subj "/O=edgetel/CN=edgetel CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$tmp/cert.pem"
    chmod 644 "$tmp/cert.pem"
    mv "$tmp/cert.pem" "$dir/ca.crt"
fi

# leaf NAME CN EKU [SAN]
leaf() {
    name=$1 cn=$2 eku=$3 san=${4:-}
    [ -f "$dir/$name.key" ] || new_key "$dir/$name.key"
    [ -f "$dir/$name.crt" ] && return 0
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$eku"
        echo "subjectKeyIdentifier=hash"
        echo "authorityKeyIdentifier=keyid"
        [ -z "$san" ] || echo "subjectAltName=$san"
    } >"$tmp/ext.cnf"
    openssl req -new -key "$dir/$name.key" -subj "/O=edgetel/CN=$cn" -out "$tmp/req.pem"
    openssl x509 -req -in "$tmp/req.pem" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -set_serial "$(serial)" -sha256 -days "$days" -extfile "$tmp/ext.cnf" \
        -out "$tmp/cert.pem" 2>"$tmp/err" || {
        cat "$tmp/err" >&2
        echo "$0: cannot sign certificate $dir/$name.crt" >&2
        exit 1
    }
    chmod 644 "$tmp/cert.pem"
    mv "$tmp/cert.pem" "$dir/$name.crt"
}

leaf server localhost serverAuth "$server_san"
leaf aggregator aggregator clientAuth
for id in "$@"; do
    leaf "$id" "$id" clientAuth
done
