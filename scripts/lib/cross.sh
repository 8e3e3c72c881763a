# shellcheck shell=bash disable=SC2154 # prog comes from the calling script
# What the scripts that build edgetel for the boards share (cross-test.sh,
# static.sh): the targets, the host tools, the sysroot, the static agent
# and its checks, and the smoke test against a real broker.  Sourced by a
# script that has set $prog (its name for messages); sets $repo (the
# checkout) and $jobs (parallel build jobs: $JOBS, or the number of CPUs).
#
# Functions stop the calling script through et_die on failure.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

et_die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
et_say() { printf '\n==> %s: %s\n' "$prog" "$*"; }

# The targets, in the order the scripts build them.
ET_CROSS_TARGETS=(aarch64 armhf armel)

# et_cross_target NAME: set the target's variables, or stop with usage.
#   name       aarch64 | armhf | armel (the build directories' suffix)
#   arch       its Debian architecture (make-sysroot.sh)
#   triple     the GNU triple of its cross compiler and toolchain file
#   qemu       the qemu-user command that runs its programs, as an array
#              (with -cpu where the board's core is older than qemu's default)
#   cloud      ON when the cloud programs are built for it too
#   dynamic    1 when a dynamically linked build of it is worth testing
#              (armel: only the static file is meant for the board)
#   boards     the boards its static file is for, in words
#   no_v7      1 when the file must hold no ARMv6T2/ARMv7 instruction
#              (et_cross_check_isa)
#   build      build-NAME (dynamic build and sysroot), build_static
#              build-static-NAME, sysroot, toolchain
# shellcheck disable=SC2034 # the variables are for the calling script
et_cross_target() {
  case $1 in
    aarch64|arm64)
      name=aarch64 arch=arm64 triple=aarch64-linux-gnu qemu=(qemu-aarch64) cloud=ON dynamic=1 no_v7=0
      boards="Raspberry Pi 3, 4, 5, Zero 2 W with a 64-bit OS (ARMv8-A, AArch64)" ;;
    armhf|arm)
      name=armhf arch=armhf triple=arm-linux-gnueabihf qemu=(qemu-arm) cloud=ON dynamic=1 no_v7=0
      boards="Raspberry Pi 2, 3, 4, 5, Zero 2 W with a 32-bit OS (ARMv7-A and later, VFPv3)" ;;
    armel|armv6)
      # The Pi Zero's, Zero W's and Pi 1's core: SIGILL on any ARMv7
      # instruction.  The same -cpu as toolchains/arm-linux-gnueabi.cmake.
      name=armel arch=armel triple=arm-linux-gnueabi qemu=(qemu-arm -cpu arm1176) cloud=OFF dynamic=0 no_v7=1
      boards="Raspberry Pi Zero, Zero W, 1 (ARMv6, arm1176jzf-s), and every Pi with a 32-bit OS" ;;
    *) et_die "target \"$1\": expected one of ${ET_CROSS_TARGETS[*]}" ;;
  esac
  build=$repo/build-$name
  build_static=$repo/build-static-$name
  sysroot=$build/sysroot
  toolchain=$repo/toolchains/$triple.cmake
}

# et_cross_host_tools [smoke]: install the host tools that are missing
# (cross gcc, qemu-user, protoc-c, cmake, ...) for the current target,
# through sudo when not root; with "smoke", the broker and client too.
et_cross_host_tools() {
  local need pair missing=() sudo=()
  # program -> Debian package that provides it
  need=(
    "$triple-gcc:gcc-$triple"
    "${qemu[0]}:qemu-user"
    "protoc-c:protobuf-c-compiler"
    "cmake:cmake"
    "make:make"
    "pkg-config:pkg-config"
    "dpkg:dpkg"
  )
  # The smoke test of the static agent needs a broker, a client and openssl.
  [ "${1:-}" = smoke ] &&
    need+=("mosquitto:mosquitto" "mosquitto_sub:mosquitto-clients" "openssl:openssl")
  for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  et_say "installing host tools: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      et_die "missing ${missing[*]} and not root without sudo; as root run: apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  # Another apt on the same machine holds the lock for a while: wait for it
  # rather than fail.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}"
}

# et_cross_fresh DIR...: a build directory configured from another checkout
# cannot be reused (its cache names the other source tree and sysroot);
# empty it, keeping a sysroot in it.
et_cross_fresh() {
  local d src
  for d in "$@"; do
    [ -f "$d/CMakeCache.txt" ] || continue
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$d/CMakeCache.txt")
    if [ -n "$src" ] && [ "$src" != "$repo" ]; then
      et_say "$d was configured for $src; starting it afresh (the sysroot is kept)"
      find "${d:?}" -mindepth 1 -maxdepth 1 ! -name sysroot ! -name sysroot.apt -exec rm -rf {} +
    fi
  done
}

# et_cross_sysroot: make (or reuse) the target's sysroot in $sysroot.
et_cross_sysroot() {
  "$repo/toolchains/make-sysroot.sh" "$arch" "$sysroot" ||
    et_die "making the $arch sysroot in $sysroot failed"
}

# et_cross_configure_static DIR [CMAKE ARGS...]: configure DIR for the
# target's static agent (-DET_STATIC=ON) from the target's sysroot; the
# cloud programs only where the target takes them.
et_cross_configure_static() {
  local dir=$1
  shift
  cmake -S "$repo" -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
        -DET_SYSROOT="$sysroot" -DET_BUILD_CLOUD="$cloud" -DET_STATIC=ON "$@" ||
    et_die "configuring $dir failed"
}

# et_cross_check_static AGENT: AGENT is one self-contained file (no program
# interpreter, no shared library) that runs under qemu with nothing to load;
# prints its --version line.
et_cross_check_static() {
  local agent=$1 empty version
  [ -x "$agent" ] || et_die "$agent was not built"
  if "$triple-readelf" -l "$agent" | grep -q 'INTERP'; then
    et_die "$agent has a program interpreter: it is not statically linked"
  fi
  if "$triple-readelf" -d "$agent" 2>/dev/null | grep -q 'NEEDED'; then
    et_die "$agent needs shared libraries: $("$triple-readelf" -d "$agent" | grep NEEDED)"
  fi
  # An empty -L prefix: nothing of the sysroot is there to load.
  empty=$(mktemp -d)
  version=$("${qemu[@]}" -L "$empty" "$agent" --version) || {
    rmdir "$empty"
    et_die "static $agent --version failed under ${qemu[*]}"
  }
  rmdir "$empty"
  printf '%s\n' "$version"
}

# et_cross_check_isa AGENT: for a target with no_v7=1, stop if the
# disassembly of AGENT (unstripped: its symbols name the functions) holds
# an instruction that ARMv6 (arm1176jzf-s) lacks: barriers (dmb, dsb, isb),
# movw/movt, bit-field and divide instructions (ARMv6T2, ARMv7).  Running
# under qemu -cpu arm1176 catches what runs; this catches the paths no test
# takes.  libatomic's libat_*_i1 functions are ARMv7 variants it chooses at
# run time only on a core that has them (an ifunc), so they are allowed.
et_cross_check_isa() {
  local agent=$1 found
  [ "$no_v7" = 1 ] || return 0
  found=$("$triple-objdump" -d --no-show-raw-insn "$agent" | awk '
    /^[0-9a-f]+ <.*>:$/ { fn = $2; next }
    $2 ~ /^(dmb|dsb|isb|movw|movt|ubfx|sbfx|bfi|bfc|rbit|sdiv|udiv|mls)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)?$/ &&
      fn !~ /^<libat_[a-z_0-9]+_i1>:$/ { n[fn " " $2]++ }
    END { for (k in n) print "  " k " (" n[k] "x)" }') ||
    et_die "disassembling $agent with $triple-objdump failed"
  [ -z "$found" ] ||
    et_die "$agent holds instructions an ARMv6 core lacks (function, instruction):
$found"
}

# The processes the smoke test started; stopped on the way out, however the
# calling script ends (it traps EXIT to et_smoke_stop).
et_smoke_pids=()
et_smoke_stop() {
  local p
  for p in "${et_smoke_pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${et_smoke_pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  et_smoke_pids=()
}

# et_smoke_test AGENT DIR: run the board's static agent (under qemu, with
# nothing to load from a sysroot) against a real mosquitto with mutual TLS
# on 127.0.0.1, and wait until one telemetry batch from it reaches a
# subscriber holding the aggregator's certificate.  Unit tests cannot show
# this: the static OpenSSL, Paho's threads and the outbox working together
# on the target's instruction set.  DIR is made anew.  The CA and the
# broker's plugin run on this machine, not the board: edgetelctl and
# edgetel_acl are built for the host in $ET_HOST_BUILD (default build/).
et_smoke_test() {
  local agent=$1 dir=$2 device=smoke-device port=18883 i rc broker_pid sub_pid agent_pid empty
  local host_build=${ET_HOST_BUILD:-$repo/build}
  rm -rf "${dir:?smoke: no directory given}"
  mkdir -p "$dir/data" "$dir/mosquitto" "$dir/empty"
  empty=$dir/empty
  if [[ ! -f "$host_build/CMakeCache.txt" ]]; then
    cmake -S "$repo" -B "$host_build" -DET_BUILD_TESTS=OFF > "$dir/host-build.log" 2>&1 ||
      { cat "$dir/host-build.log" >&2; et_die "smoke: cannot configure the host build"; }
  fi
  cmake --build "$host_build" -j "$jobs" --target edgetelctl edgetel_acl \
      >> "$dir/host-build.log" 2>&1 ||
    { cat "$dir/host-build.log" >&2; et_die "smoke: cannot build edgetelctl for the host"; }
  # shellcheck source=scripts/site.sh
  source "$repo/scripts/site.sh"
  et_site_certs "$host_build/ctl/edgetelctl" "$dir/certs" "$device" > "$dir/certs.log" 2>&1 ||
    { cat "$dir/certs.log" >&2; et_die "smoke: making certificates failed"; }
  # A free port: a connection that succeeds means something listens there.
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
    [ $port -le 18983 ] || et_die "smoke: no free port in 18883..18983 on 127.0.0.1"
  done
  et_site_broker_conf "$dir/certs" "$port" "$dir/mosquitto" \
      "$host_build/broker/edgetel_acl.so" "$dir/mosquitto.conf"
  printf '%s\n' \
    "[agent]" "device_id = $device" "data_dir = $dir/data" "batch_interval = 1s" "" \
    "[mqtt]" "host = 127.0.0.1" "port = $port" "ca = $dir/certs/ca/ca.crt" \
    "cert = $dir/certs/issued/$device.crt" "key = $dir/certs/issued/$device.key" \
    "; certificates made just now by this clock: no NTP wait" "clock_wait = 0s" \
    > "$dir/agent.conf"

  "${qemu[@]}" -L "$empty" "$agent" --check -c "$dir/agent.conf" > "$dir/check.log" 2>&1 ||
    { cat "$dir/check.log" >&2; et_die "smoke: the $name agent refuses the smoke test's config"; }

  mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
  broker_pid=$!
  et_smoke_pids+=("$broker_pid")
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    cat "$dir/mosquitto.log" >&2
    et_smoke_stop
    et_die "smoke: mosquitto did not listen on 127.0.0.1:$port"
  fi
  # The subscriber is an aggregator instance's identity (the broker lets it
  # subscribe to every device's telemetry, as an aggregator does); it exits
  # after one message (-C 1) or after 120 s without one (-W).
  mosquitto_sub -h 127.0.0.1 -p "$port" --cafile "$dir/certs/ca/ca.crt" \
      --cert "$dir/certs/issued/aggregator-1.crt" --key "$dir/certs/issued/aggregator-1.key" \
      -i aggregator-1 -t "edgetel/v1/+/telemetry" -C 1 -W 120 -F '%t %l bytes' \
      > "$dir/sub.out" 2> "$dir/sub.err" &
  sub_pid=$!
  et_smoke_pids+=("$sub_pid")
  "${qemu[@]}" -L "$empty" "$agent" -c "$dir/agent.conf" > "$dir/agent.log" 2>&1 &
  agent_pid=$!
  et_smoke_pids+=("$agent_pid")
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
  et_smoke_stop
  if [ "$rc" != 0 ] || ! [ -s "$dir/sub.out" ]; then
    printf -- '--- agent log\n' >&2; tail -n 30 "$dir/agent.log" >&2
    printf -- '--- mosquitto log\n' >&2; tail -n 30 "$dir/mosquitto.log" >&2
    printf -- '--- subscriber\n' >&2; cat "$dir/sub.err" >&2
    et_die "smoke: no telemetry from the $name agent reached the broker ($rc)"
  fi
  # What shows it: the agent's own lines, and the broker naming the client
  # by its certificate (u'...': use_identity_as_username).
  printf -- '--- the agent under %s (%s)\n' "${qemu[*]}" "$dir/agent.log"
  grep -E 'mutual TLS|connected to' "$dir/agent.log" || true
  printf -- '--- mosquitto (%s)\n' "$dir/mosquitto.log"
  grep -F "as $device " "$dir/mosquitto.log" || true
  et_say "smoke: received $(cat "$dir/sub.out") from the static $name agent over mutual TLS"
}
