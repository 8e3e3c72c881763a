#!/usr/bin/env bash
# Install, from Debian's archive, everything edgetel needs to build, test
# and run the demo on Debian 12 / Raspberry Pi OS bookworm. This is the one
# list: scripts/demo.sh and scripts/test.sh both call it.
#
# Idempotent and quiet: when every package is already installed it prints
# nothing and touches nothing. Otherwise it runs apt-get (through sudo when
# not root), refreshing the package index first.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  # libraries (all from Debian; nothing is vendored)
  libpaho-mqtt-dev libssl-dev libmbedtls-dev
  libprotobuf-c-dev protobuf-c-compiler
  libsqlite3-dev libinih-dev
  # the PostgreSQL store of a fleet (cloud/store/store_pg_*.c): libpq's
  # headers to build it, and the server (15 on Debian 12) that its tests,
  # benchmarks and the demo of many aggregators start in a temporary
  # directory (tests/pg/pg_server.sh)
  libpq-dev postgresql
  # the aggregator's HTTP server for the web view and /metrics (Debian's
  # libmicrohttpd is built with GnuTLS, which gives it HTTPS), and dygraphs,
  # the plotting script its device page loads from this machine, never a CDN
  libmicrohttpd-dev libjs-dygraphs
  # the web view's tests: promtool (Debian's prometheus) checks /metrics in the
  # exposition format, and headless chromium loads the pages against a real
  # aggregator (tests/integration/test_web.c)
  prometheus chromium
  # tests; protobuf-compiler is Google's protoc, which checks that the golden
  # wire vector decodes from the .proto alone (unit_wire_protoc_interop)
  libcmocka-dev protobuf-compiler
  # the broker and inspection tools used by tests and the demo (openssl
  # reads the CA's CRL in a test); mosquitto-dev and libmosquitto-dev are
  # the headers of the broker's plugin API, for edgetel_acl (broker/)
  mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev openssl sqlite3
  # pgrep, for the demo's check that nothing is left running (minimal images lack it)
  procps
  # ip, for the chaos test's partitions (a network namespace and a veth
  # pair, tests/lib/netns.c); minimal images lack it too
  iproute2
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: this script needs a Debian-based system (apt-get, dpkg-query)." >&2
  echo "deps: install by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=()
if ((EUID != 0)); then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: missing packages and not root, and sudo is not installed." >&2
    echo "deps: as root run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
