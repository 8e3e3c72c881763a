#!/usr/bin/env bash
# cross-test.sh ARCH — build edgetel for a Raspberry Pi-class board and run
# its tests under qemu-user.
#
#   ARCH  aarch64 (= arm64: 64-bit Raspberry Pi OS / Debian arm64)
#         armhf   (= arm: Debian armhf, ARMv7 hard-float)
#         armel   (= armv6: the static agent for ARMv6 boards, Pi Zero,
#                 Zero W, Pi 1, from Debian armel; its tests and the smoke
#                 test run under qemu-arm -cpu arm1176, the Pi Zero's core)
#
# Steps, each stopping the script with a non-zero exit on failure:
#   1. install the host tools that are missing (cross gcc, qemu-user,
#      protoc-c, cmake, make, pkg-config), through sudo when not root
#   2. make the target sysroot (toolchains/make-sysroot.sh), cached in
#      build-<arch>/sysroot: a second run reuses it
#   3. configure build-<arch> with toolchains/<triple>.cmake, build, and run
#      `ctest --output-on-failure` there: the unit and driver tests run under
#      qemu-<arch> -L <sysroot> (integration and fault tests need a real
#      broker and processes and are not built when cross compiling); not
#      for armel, whose dynamically linked programs no Pi OS can load
#   4. the same for a static agent in build-static-<arch> (-DET_STATIC=ON),
#      then check edgetel-agent is one self-contained file that runs (armel:
#      and that it holds no ARMv7 instruction, scripts/lib/cross.sh says how)
#   5. smoke test: that static agent, under qemu, sends telemetry to a real
#      mosquitto with mutual TLS on 127.0.0.1 (packaging/mosquitto config,
#      certificates from edgetelctl ca; edgetelctl and the broker's
#      edgetel_acl plugin are built for the host, in $ET_HOST_BUILD,
#      default build/)
#
# Environment:
#   JOBS                       parallel build jobs (default: number of CPUs)
#   ET_CROSS_STATIC=0          leave out steps 4 and 5 (not for armel)
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
# shellcheck source=scripts/lib/cross.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cross.sh"   # sets repo and jobs
cd "$repo"

[ $# -eq 1 ] || et_die "usage: $prog $(IFS='|'; echo "${ET_CROSS_TARGETS[*]}")"
et_cross_target "$1"
export ET_SYSROOT_ALLOW_PARTIAL=${ET_SYSROOT_ALLOW_PARTIAL:-1}
# shellcheck disable=SC2206 # splitting the extra arguments is intended
extra_args=(${ET_CROSS_CMAKE_ARGS:-})
# shellcheck disable=SC2206
ctest_args=(${ET_CROSS_CTEST_ARGS:-})
static=${ET_CROSS_STATIC:-1}
smoke=${ET_CROSS_SMOKE:-1}
[ "$dynamic" = 1 ] || static=1   # armel: the static build is the whole test

timings=()
phase_start=0
begin() { et_say "$1"; phase_start=$(date +%s); }
end() { timings+=("$(printf '%-34s %5ss' "$1" $(($(date +%s) - phase_start)))"); }
trap et_smoke_stop EXIT

# ---- 1. host tools -------------------------------------------------------------
if [ "$static" != 0 ] && [ "$smoke" != 0 ]; then
  et_cross_host_tools smoke
else
  et_cross_host_tools
fi
et_cross_fresh "$build" "$build_static"

# ---- 2. sysroot ------------------------------------------------------------------
begin "sysroot for $arch in $sysroot"
et_cross_sysroot
end "sysroot ($arch)"

# ---- 3. dynamic build + tests under qemu ----------------------------------------
if [ "$dynamic" = 1 ]; then
  begin "configure and build $build"
  cmake -S "$repo" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
        -DET_SYSROOT="$sysroot" -DET_BUILD_TESTS=ON -DET_BUILD_CLOUD="$cloud" "${extra_args[@]}"
  cmake --build "$build" -j "$jobs"
  end "configure + build ($name)"

  begin "ctest in $build (under ${qemu[*]} -L $sysroot)"
  ctest --test-dir "$build" --output-on-failure -j "$jobs" "${ctest_args[@]}"
  end "ctest ($name)"
fi

# ---- 4. static agent -------------------------------------------------------------
if [ "$static" != 0 ]; then
  begin "configure and build static $build_static"
  et_cross_configure_static "$build_static" -DET_BUILD_TESTS=ON "${extra_args[@]}"
  cmake --build "$build_static" -j "$jobs"
  end "configure + build (static $name)"

  begin "ctest in $build_static (under ${qemu[*]} -L $sysroot)"
  ctest --test-dir "$build_static" --output-on-failure -j "$jobs" "${ctest_args[@]}"
  end "ctest (static $name)"

  agent=$build_static/agent/edgetel-agent
  version=$(et_cross_check_static "$agent")
  et_cross_check_isa "$agent"
  et_say "static agent runs under ${qemu[*]}: $version ($(stat -c %s "$agent") bytes unstripped)"

  # ---- 5. smoke test -------------------------------------------------------------
  if [ "$smoke" != 0 ]; then
    begin "smoke test: static $name agent under ${qemu[*]} -> mosquitto over mutual TLS"
    et_smoke_test "$agent" "$build_static/smoke"
    end "smoke, mTLS to mosquitto ($name)"
  fi
fi

et_say "summary for $name"
printf '  %s\n' "${timings[@]}"
echo "$prog: $name passed"
