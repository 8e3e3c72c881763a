#!/usr/bin/env bash
# cross-test.sh ARCH — build edgetel for a Raspberry Pi-class board and run
# its tests under qemu-user.
#
#   ARCH  aarch64 (= arm64: 64-bit Raspberry Pi OS / Debian arm64)
#         armhf   (= arm: Debian armhf, ARMv7 hard-float)
#
# Steps, each stopping the script with a non-zero exit on failure:
#   1. install the host tools that are missing (cross gcc, qemu-user,
#      protoc-c, cmake, make, pkg-config), through sudo when not root
#   2. make the target sysroot (toolchains/make-sysroot.sh), cached in
#      build-<arch>/sysroot: a second run reuses it
#   3. configure build-<arch> with toolchains/<triple>.cmake, build, and run
#      `ctest --output-on-failure` there: the unit and driver tests run under
#      qemu-<arch> -L <sysroot> (integration and fault tests need a real
#      broker and processes and are not built when cross compiling)
#   4. the same for a static agent in build-static-<arch> (-DET_STATIC=ON),
#      then check edgetel-agent is one self-contained file that runs
#   5. smoke test: that static agent, under qemu, sends telemetry to a real
#      mosquitto with mutual TLS on 127.0.0.1 (packaging/mosquitto config,
#      certificates from edgetelctl ca; edgetelctl and the broker's
#      edgetel_acl plugin are built for the host, in $ET_HOST_BUILD,
#      default build/)
#
# Environment:
#   JOBS                       parallel build jobs (default: number of CPUs)
#   ET_CROSS_STATIC=0          leave out steps 4 and 5
#   ET_CROSS_SMOKE=0           leave out step 5
#   ET_CROSS_CMAKE_ARGS        extra arguments for both configure steps
#   ET_CROSS_CTEST_ARGS        extra arguments for ctest, e.g. "-L unit"
#   ET_SYSROOT_ALLOW_PARTIAL   default 1 here, see below; 0 = strict
#
# A test sysroot may be built from partial apt indexes (a mirror in the
# middle of a sync cannot serve, say, bookworm-security for one architecture):
# the tests then run against the previous point release's libraries, which
# still tests the code.  make-sysroot.sh says so loudly.  A sysroot for a
# release build of the static agent should be made strictly (the default of
# make-sysroot.sh itself).
set -euo pipefail

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '\n==> %s: %s\n' "$prog" "$*"; }

[ $# -eq 1 ] || die "usage: $prog aarch64|armhf"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=lib/cross.sh
source "$repo/scripts/lib/cross.sh"
et_cross_target "$1"
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
build=$repo/build-$name
build_static=$repo/build-static-$name
sysroot=$build/sysroot
export ET_SYSROOT_ALLOW_PARTIAL=${ET_SYSROOT_ALLOW_PARTIAL:-1}
# shellcheck disable=SC2206 # splitting the extra arguments is intended
extra_args=(${ET_CROSS_CMAKE_ARGS:-})
# shellcheck disable=SC2206
ctest_args=(${ET_CROSS_CTEST_ARGS:-})

timings=()
phase_start=0
begin() { say "$1"; phase_start=$(date +%s); }
end() { timings+=("$(printf '%-34s %5ss' "$1" $(($(date +%s) - phase_start)))"); }

# The processes the smoke test started; stopped on the way out, however the
# script ends.
smoke_pids=()
smoke_stop() {
  local p
  for p in "${smoke_pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${smoke_pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  smoke_pids=()
}

# smoke_test AGENT DIR EMPTY: run the board's agent (under qemu, with nothing
# to load from a sysroot) against a real mosquitto with mutual TLS on
# 127.0.0.1, and wait until one telemetry batch from it reaches a subscriber
# holding the aggregator's certificate.  Unit tests cannot show this: the
# static OpenSSL, Paho's threads and the outbox working together on the
# target's instruction set.
smoke_test() {
  local agent=$1 dir=$2 empty=$3 device=smoke-device port=18883 i rc broker_pid sub_pid agent_pid
  [ -n "$dir" ] || die "smoke: no directory given"
  rm -rf "$dir"
  mkdir -p "$dir/data" "$dir/mosquitto"
  # The CA and the broker's plugin run on this machine, not the board.
  local host_build=${ET_HOST_BUILD:-$repo/build}
  if [[ ! -f "$host_build/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$host_build" -DET_BUILD_TESTS=OFF > "$dir/host-build.log" 2>&1 ||
      { cat "$dir/host-build.log" >&2; die "smoke: cannot configure the host build"; }
  fi
  cmake --build "$host_build" -j "$jobs" --target edgetelctl edgetel_acl \
      >> "$dir/host-build.log" 2>&1 ||
    { cat "$dir/host-build.log" >&2; die "smoke: cannot build edgetelctl for the host"; }
  source "$repo/scripts/site.sh"
  et_site_certs "$host_build/ctl/edgetelctl" "$dir/certs" "$device" > "$dir/certs.log" 2>&1 ||
    { cat "$dir/certs.log" >&2; die "smoke: making certificates failed"; }
  # A free port: a connection that succeeds means something listens there.
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
    [ $port -le 18983 ] || die "smoke: no free port in 18883..18983 on 127.0.0.1"
  done
  et_site_broker_conf "$dir/certs" "$port" "$dir/mosquitto" \
      "$host_build/broker/edgetel_acl.so" "$dir/mosquitto.conf"
  printf '%s\n' \
    "[agent]" "device_id = $device" "data_dir = $dir/data" "batch_interval = 1s" "" \
    "[mqtt]" "host = 127.0.0.1" "port = $port" "ca = $dir/certs/ca/ca.crt" \
    "cert = $dir/certs/issued/$device.crt" "key = $dir/certs/issued/$device.key" \
    "; certificates made just now by this clock: no NTP wait" "clock_wait = 0s" \
    > "$dir/agent.conf"

  "$qemu" -L "$empty" "$agent" --check -c "$dir/agent.conf" > "$dir/check.log" 2>&1 ||
    { cat "$dir/check.log" >&2; die "smoke: the $name agent refuses the smoke test's config"; }

  mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
  broker_pid=$!
  smoke_pids+=("$broker_pid")
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    cat "$dir/mosquitto.log" >&2
    smoke_stop
    die "smoke: mosquitto did not listen on 127.0.0.1:$port"
  fi
  # The subscriber is an aggregator instance's identity (the broker lets it
  # subscribe to every device's telemetry, as an aggregator does); it exits
  # after one message (-C 1) or after 120 s without one (-W).
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$dir/certs/ca/ca.crt" \
      --cert "$dir/certs/issued/aggregator-1.crt" --key "$dir/certs/issued/aggregator-1.key" \
      -i aggregator-1 -t "edgetel/v1/+/telemetry" -C 1 -W 120 -F '%t %l bytes' \
      > "$dir/sub.out" 2> "$dir/sub.err" &
  sub_pid=$!
  smoke_pids+=("$sub_pid")
  "$qemu" -L "$empty" "$agent" -c "$dir/agent.conf" > "$dir/agent.log" 2>&1 &
  agent_pid=$!
  smoke_pids+=("$agent_pid")
  # Until the subscriber has its message (or gives up), unless the agent
  # exits first: then there is nothing more to wait for.
  while kill -0 "$sub_pid" 2>/dev/null && kill -0 "$agent_pid" 2>/dev/null; do
    sleep 0.2
  done
  rc=0
  if kill -0 "$sub_pid" 2>/dev/null; then
    rc="the agent exited first"
  else
    wait "$sub_pid" || rc="mosquitto_sub exit $?"
  fi
  smoke_stop
  if [ "$rc" != 0 ] || ! [ -s "$dir/sub.out" ]; then
    printf -- '--- agent log\n' >&2; tail -n 30 "$dir/agent.log" >&2
    printf -- '--- mosquitto log\n' >&2; tail -n 30 "$dir/mosquitto.log" >&2
    printf -- '--- subscriber\n' >&2; cat "$dir/sub.err" >&2
    die "smoke: no telemetry from the $name agent reached the broker ($rc)"
  fi
  say "smoke: received $(cat "$dir/sub.out") from the static $name agent over mutual TLS"
}

# ---- 1. host tools -------------------------------------------------------------
begin "host tools"
et_cross_host_tools
# The smoke test of the static agent needs a broker, a client and openssl.
if [ "${ET_CROSS_STATIC:-1}" != 0 ] && [ "${ET_CROSS_SMOKE:-1}" != 0 ]; then
  et_install_missing "mosquitto:mosquitto" "mosquitto_sub:mosquitto-clients" "openssl:openssl"
fi
end "host tools"

# A build directory configured from another checkout cannot be reused.
et_fresh_build_dir "$build" "$build_static"

# ---- 2. sysroot ------------------------------------------------------------------
begin "sysroot for $arch in $sysroot"
et_cross_sysroot "$sysroot"
end "sysroot ($arch)"

# ---- 3. dynamic build + tests under qemu ----------------------------------------
begin "configure and build $build"
et_cross_configure "$sysroot" "$build" -DET_BUILD_TESTS=ON "${extra_args[@]}"
cmake --build "$build" -j "$jobs"
end "configure + build ($name)"

begin "ctest in $build (under $qemu -L $sysroot)"
ctest --test-dir "$build" --output-on-failure -j "$jobs" "${ctest_args[@]}"
end "ctest ($name)"

# ---- 4. static agent -------------------------------------------------------------
if [ "${ET_CROSS_STATIC:-1}" != 0 ]; then
  begin "configure and build static $build_static"
  et_cross_configure "$sysroot" "$build_static" -DET_BUILD_TESTS=ON -DET_STATIC=ON \
    "${extra_args[@]}"
  cmake --build "$build_static" -j "$jobs"
  end "configure + build (static $name)"

  begin "ctest in $build_static"
  ctest --test-dir "$build_static" --output-on-failure -j "$jobs" "${ctest_args[@]}"
  end "ctest (static $name)"

  agent=$build_static/agent/edgetel-agent
  [ -x "$agent" ] || die "$agent was not built"
  # One file: no program interpreter, no shared library needed.
  if "$triple-readelf" -l "$agent" | grep -q 'INTERP'; then
    die "$agent has a program interpreter: it is not statically linked"
  fi
  if "$triple-readelf" -d "$agent" 2>/dev/null | grep -q 'NEEDED'; then
    die "$agent needs shared libraries: $("$triple-readelf" -d "$agent" | grep NEEDED)"
  fi
  # Run it with an empty -L prefix: nothing of the sysroot is there to load.
  empty=$(mktemp -d)
  trap 'smoke_stop; rmdir "$empty"' EXIT
  version=$("$qemu" -L "$empty" "$agent" --version) ||
    die "static $agent --version failed under $qemu"
  say "static agent runs: $version ($(stat -c %s "$agent") bytes unstripped)"

  if [ "${ET_CROSS_SMOKE:-1}" != 0 ]; then
    begin "smoke test: static $name agent -> mosquitto over mutual TLS"
    smoke_test "$agent" "$build_static/smoke" "$empty"
    end "smoke, mTLS to mosquitto ($name)"
  fi
fi

say "summary for $name"
printf '  %s\n' "${timings[@]}"
echo "$prog: $name passed"
