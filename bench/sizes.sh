#!/usr/bin/env bash
# sizes.sh — how big is edgetel-agent on the board?
#
# Builds edgetel-agent for the host, aarch64 and armhf, each dynamically and
# statically linked (ET_STATIC), in MinSizeRel and Release, strips a copy of
# each and prints a table of sizes.  Build directories are build-size-<target>
# [-static]-<type> and are reused: a second run only rebuilds what changed.
# Only the agent is built (no tests, no cloud programs).
#
# The dynamic agent's size leaves out the shared libraries it loads
# (libssl3, libpaho-mqtt1.3, libsqlite3-0, ...), which a board gets from its
# own packages; the static one is the whole program.  The NEEDED column says
# how many shared libraries the dynamic one loads.  text and data (from
# size(1)) show the code itself: on aarch64 the file is padded to 64 KiB
# segment alignment, so two builds can differ in code but not in file size.
#
# Environment:
#   SIZES_TARGETS      which targets (default: "native aarch64 armhf")
#   SIZES_BUILD_TYPES  which CMake build types (default: "MinSizeRel Release")
#   JOBS               parallel build jobs (default: number of CPUs)
# Cross targets need what scripts/cross-test.sh installs (cross gcc,
# protoc-c) and make their sysroot with toolchains/make-sysroot.sh, cached in
# build-<arch>/sysroot and shared with scripts/cross-test.sh.
set -euo pipefail

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
read -r -a targets <<<"${SIZES_TARGETS:-native aarch64 armhf}"
read -r -a types <<<"${SIZES_BUILD_TYPES:-MinSizeRel Release}"
# As in scripts/cross-test.sh: a size measurement does not need the latest
# security index of the mirror.
export ET_SYSROOT_ALLOW_PARTIAL=${ET_SYSROOT_ALLOW_PARTIAL:-1}

rows=()
for target in "${targets[@]}"; do
  toolchain_args=()
  case $target in
    native)  strip=strip readelf=readelf size=size ;;
    aarch64) arch=arm64 triple=aarch64-linux-gnu ;;
    armhf)   arch=armhf triple=arm-linux-gnueabihf ;;
    *) die "target \"$target\": expected native, aarch64 or armhf" ;;
  esac
  if [ "$target" != native ]; then
    strip=$triple-strip readelf=$triple-readelf size=$triple-size
    command -v "$triple-gcc" >/dev/null ||
      die "$triple-gcc not found: install gcc-$triple (scripts/cross-test.sh $target does)"
    sysroot=$repo/build-$target/sysroot
    "$repo/toolchains/make-sysroot.sh" "$arch" "$sysroot" >&2
    toolchain_args=(-DCMAKE_TOOLCHAIN_FILE="$repo/toolchains/$triple.cmake"
                    -DET_SYSROOT="$sysroot")
  fi
  for type in "${types[@]}"; do
    for link in dynamic static; do
      dir=$repo/build-size-$target-$type
      static=OFF
      if [ $link = static ]; then
        dir=$repo/build-size-$target-static-$type
        static=ON
      fi
      printf '%s: building %s %s %s in %s\n' "$prog" "$target" "$link" "$type" "$dir" >&2
      cmake -S "$repo" -B "$dir" "${toolchain_args[@]}" -DCMAKE_BUILD_TYPE="$type" \
            -DET_STATIC=$static -DET_BUILD_TESTS=OFF -DET_BUILD_CLOUD=OFF >/dev/null
      # The static link warns about dlopen/getaddrinfo (cmake/EtStatic.cmake
      # says why); keep the build quiet unless it fails.
      if ! log=$(cmake --build "$dir" -j "$jobs" --target edgetel-agent 2>&1); then
        printf '%s\n' "$log" >&2
        die "building edgetel-agent in $dir failed"
      fi
      agent=$dir/agent/edgetel-agent
      stripped=$dir/edgetel-agent.stripped
      "$strip" -o "$stripped" "$agent"
      full=$(stat -c %s "$agent")
      bytes=$(stat -c %s "$stripped")
      needed=$("$readelf" -d "$stripped" 2>/dev/null | grep -c NEEDED || true)
      read -r text data _ < <("$size" "$stripped" | tail -n1)
      rows+=("$(printf '%-8s %-8s %-11s %10d %9.1f %10d %9d %7s %12d' "$target" "$link" "$type" \
               "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1024 }')" "$text" "$data" \
               "$needed" "$full")")
    done
  done
done

printf '\n%-8s %-8s %-11s %10s %9s %10s %9s %7s %12s\n' \
       target link build stripped KiB text data NEEDED unstripped
printf '%s\n' "${rows[@]}"
