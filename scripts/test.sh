#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. install what is missing (scripts/deps.sh)
#   2. configure and build natively with the tests into build/
#   3. ctest: every label (unit, driver, cloud, integration, fault, slow,
#      chaos)
#   3b. the same again built with ASan and UBSan (build-asan/)
#   4. scripts/cross-test.sh aarch64, armhf and armel (build for the Pi and
#      run the unit tests under qemu-user; armel is the static agent for
#      ARMv6 boards, tested on the Pi Zero's core), when that script is present
# then a summary. Exits non-zero when any step failed.
#
# Environment: BUILD_DIR (default build), JOBS (default: number of CPUs),
# SKIP_CROSS=1 to leave out step 4, SKIP_SANITIZERS=1 to leave out 3b.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
summary=()
failed=0
suite_start=$(date +%s)
# The tests that use a tool deps.sh installs (chromium, promtool) fail
# rather than skip when it is missing from this run.
export ET_REQUIRE_TOOLS=1

# run NAME COMMAND...: run one step, time it, remember the outcome.
run() {
  local name=$1
  shift
  local start rc
  start=$(date +%s)
  echo
  echo "==> $name: $*"
  "$@"
  rc=$?
  local took=$(($(date +%s) - start))
  if ((rc == 0)); then
    summary+=("$(printf 'PASS  %-28s %5ss' "$name" "$took")")
  else
    summary+=("$(printf 'FAIL  %-28s %5ss  (exit %s)' "$name" "$took" "$rc")")
    failed=1
  fi
  return "$rc"
}

skip() {
  summary+=("$(printf 'SKIP  %-28s         %s' "$1" "$2")")
}

# A build directory configured from another checkout cannot be reused.
if [[ -f "$build_dir/CMakeCache.txt" ]]; then
  cached_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt")
  if [[ -n "$cached_src" && "$cached_src" != "$repo" ]]; then
    echo "test: $build_dir was configured for $cached_src; starting it afresh"
    rm -rf "$build_dir"
  fi
fi

if run "dependencies" ./scripts/deps.sh &&
   run "configure" cmake -S . -B "$build_dir" -DET_BUILD_TESTS=ON -DET_BUILD_CLOUD=ON &&
   run "build" cmake --build "$build_dir" -j "$jobs"; then
  # All labels; each test carries its own timeout (tests/CMakeLists.txt).
  run "ctest (all labels)" ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
else
  skip "ctest (all labels)" "(the build did not finish)"
fi

# The same suite built with AddressSanitizer and UndefinedBehaviorSanitizer:
# a leak, an overflow or undefined behaviour anywhere fails it.
asan_dir=${build_dir}-asan
if [[ "${SKIP_SANITIZERS:-0}" == 1 ]]; then
  skip "sanitizers (all labels)" "(SKIP_SANITIZERS=1)"
elif run "sanitizers: configure" cmake -S . -B "$asan_dir" -DET_BUILD_TESTS=ON \
       -DET_BUILD_CLOUD=ON -DET_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug &&
     run "sanitizers: build" cmake --build "$asan_dir" -j "$jobs"; then
  run "sanitizers: ctest" ctest --test-dir "$asan_dir" --output-on-failure -j "$jobs"
else
  skip "sanitizers: ctest" "(the build did not finish)"
fi

if [[ "${SKIP_CROSS:-0}" == 1 ]]; then
  skip "cross aarch64" "(SKIP_CROSS=1)"
  skip "cross armhf" "(SKIP_CROSS=1)"
  skip "cross armel" "(SKIP_CROSS=1)"
elif [[ -x scripts/cross-test.sh ]]; then
  # On a Pi the native run above already was the test for its own architecture.
  host_arch=$(dpkg --print-architecture 2>/dev/null || echo unknown)
  for target in aarch64:arm64 armhf:armhf armel:armel; do
    name=${target%%:*} debian_arch=${target##*:}
    if [[ "$host_arch" == "$debian_arch" ]]; then
      skip "cross $name" "(this machine is $host_arch: the native run covered it)"
    else
      run "cross $name" ./scripts/cross-test.sh "$name"
    fi
  done
else
  skip "cross aarch64" "(scripts/cross-test.sh not present)"
  skip "cross armhf" "(scripts/cross-test.sh not present)"
  skip "cross armel" "(scripts/cross-test.sh not present)"
fi

echo
echo "==> summary ($(($(date +%s) - suite_start))s in all)"
printf '  %s\n' "${summary[@]}"
if ((failed)); then
  echo "test: FAILED"
  exit 1
fi
echo "test: all passed"
