#!/usr/bin/env bash
# static.sh [TARGET...] — release tarballs of the static single-file agent.
#
#   TARGET  aarch64 | armhf | armel (default: all three)
#             aarch64  Raspberry Pi 3, 4, 5, Zero 2 W with a 64-bit OS
#             armhf    ARMv7 and later with a 32-bit OS (Pi 2 onwards)
#             armel    ARMv6: Pi Zero, Zero W, Pi 1 (and every 32-bit Pi)
#
# For each target: install the host tools that are missing, make (or
# reuse) its sysroot from Debian packages (toolchains/make-sysroot.sh),
# build edgetel-agent statically (-DET_STATIC=ON) in build-release-<target>,
# check that it is one file that runs under qemu-user (armel: on the Pi
# Zero's core, -cpu arm1176) and prints the version the tarball is named
# after, strip it, and write
#
#   dist/edgetel-agent-<version>-<target>.tar.gz
#       edgetel-agent-<version>-<target>/edgetel-agent        (stripped)
#                                        agent.conf.example
#                                        edgetel-agent.service
#                                        LICENSE
#                                        INSTALL
#   dist/SHA256SUMS       every dist/edgetel-agent-<version>-*.tar.gz;
#                         `cd dist && sha256sum -c SHA256SUMS` checks them
#
# <version> is the CMake project VERSION (project(edgetel VERSION ...) in
# CMakeLists.txt), which is also what `edgetel-agent --version` prints; the
# script stops if the two differ.  INSTALL names the git commit it was
# built from.  The archives are reproducible: no build path in the
# program, sorted names, owner root, every time stamp the commit's time
# (SOURCE_DATE_EPOCH), gzip without a name or time: the same commit and
# sysroot give the same bytes, in any checkout.
#
# Re-runnable: build trees and sysroots are reused, a target's tarball is
# written anew, SHA256SUMS is made again from what dist/ holds.
#
# Environment:
#   JOBS                      parallel build jobs (default: number of CPUs)
#   ET_SYSROOT_ALLOW_PARTIAL  default 0 here: a release is built only from a
#                             sysroot made from complete apt indexes (with
#                             the security updates); 1 allows partial ones
#   ET_STATIC_SMOKE=1         also run the stripped file through
#                             cross-test.sh's smoke test (mutual TLS to a
#                             local mosquitto under qemu) before packing it
#   ET_DIST                   where the tarballs go (default: dist/)
set -euo pipefail

prog=${0##*/}
# shellcheck source=scripts/lib/cross.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cross.sh"   # sets repo and jobs
cd "$repo"

export ET_SYSROOT_ALLOW_PARTIAL=${ET_SYSROOT_ALLOW_PARTIAL:-0}
dist=${ET_DIST:-$repo/dist}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ET_CROSS_TARGETS[@]}")
for t in "${targets[@]}"; do
  et_cross_target "$t"   # stops on an unknown name before anything is built
done

for tool in tar gzip sha256sum; do
  command -v "$tool" >/dev/null || et_die "needs $tool (Debian's tar, gzip, coreutils)"
done
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}

trap et_smoke_stop EXIT
mkdir -p "$dist"
rows=()
version=
for t in "${targets[@]}"; do
  et_cross_target "$t"
  release=$repo/build-release-$name
  et_say "$name: the static agent for $boards"
  if [ "${ET_STATIC_SMOKE:-0}" = 1 ]; then
    et_cross_host_tools smoke
  else
    et_cross_host_tools
  fi
  et_cross_fresh "$build" "$release"
  et_cross_sysroot
  mkdir -p "$release"
  # -ffile-prefix-map: the debug information names source files relative
  # to the checkout, so the build id, a hash over the unstripped file, and
  # with it the stripped file do not depend on where the checkout is.
  et_cross_configure_static "$release" -DET_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-ffile-prefix-map=$repo/=" > "$release/configure.log" 2>&1 ||
    { cat "$release/configure.log" >&2; et_die "configuring $release failed"; }
  # The static link warns about dlopen and getaddrinfo (cmake/EtStatic.cmake
  # says why); keep the log, show it when the build fails.
  cmake --build "$release" -j "$jobs" --target edgetel-agent > "$release/build.log" 2>&1 ||
    { tail -n 60 "$release/build.log" >&2; et_die "building the $name agent failed (log: $release/build.log)"; }

  project_version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$release/CMakeCache.txt")
  [ -n "$project_version" ] || et_die "$release/CMakeCache.txt names no CMAKE_PROJECT_VERSION"
  [ -z "$version" ] || [ "$version" = "$project_version" ] ||
    et_die "$name is version $project_version, an earlier target $version"
  version=$project_version

  stage=$release/stage/edgetel-agent-$version-$name
  rm -rf "${release:?}/stage"
  mkdir -p "$stage"
  "$triple-strip" -o "$stage/edgetel-agent" "$release/agent/edgetel-agent"
  said=$(et_cross_check_static "$stage/edgetel-agent")
  et_cross_check_isa "$release/agent/edgetel-agent"
  [ "$said" = "edgetel-agent $version" ] ||
    et_die "the stripped $name agent says \"$said\", expected \"edgetel-agent $version\""
  if [ "${ET_STATIC_SMOKE:-0}" = 1 ]; then
    et_smoke_test "$stage/edgetel-agent" "$release/smoke"
  fi

  install -m 0644 "$repo/packaging/agent.conf.example" "$stage/agent.conf.example"
  install -m 0644 "$repo/packaging/systemd/edgetel-agent.service" "$stage/edgetel-agent.service"
  install -m 0644 "$repo/LICENSE" "$stage/LICENSE"
  sed -e "s|@VERSION@|$version|g" -e "s|@TARGET@|$name|g" \
      -e "s|@BOARDS@|$boards|g" -e "s|@COMMIT@|$commit|g" \
      "$repo/packaging/static/INSTALL.in" > "$stage/INSTALL"
  chmod 0644 "$stage/INSTALL"

  tarball=$dist/edgetel-agent-$version-$name.tar.gz
  tar -C "$release/stage" --sort=name --owner=0 --group=0 --numeric-owner \
      --mtime="@$SOURCE_DATE_EPOCH" --format=gnu -cf - "edgetel-agent-$version-$name" |
    gzip -9n > "$tarball.new"
  mv "$tarball.new" "$tarball"
  rows+=("$(printf '%-8s %12d %12d %12d  %s' "$name" \
    "$(stat -c %s "$release/agent/edgetel-agent")" "$(stat -c %s "$stage/edgetel-agent")" \
    "$(stat -c %s "$tarball")" "${tarball#"$repo"/}")")
done

# Every tarball of this version in dist/, including targets built by an
# earlier run, so building one target again keeps the file whole.
(
  cd "$dist"
  shopt -s nullglob
  sums=(edgetel-agent-"$version"-*.tar.gz)
  sha256sum "${sums[@]}" > SHA256SUMS.new
  mv SHA256SUMS.new SHA256SUMS
  sha256sum --quiet -c SHA256SUMS
) || et_die "writing or checking $dist/SHA256SUMS failed"

et_say "edgetel-agent $version, static, built from $commit"
printf '  %-8s %12s %12s %12s  %s\n' target unstripped stripped tarball file
printf '  %s\n' "${rows[@]}"
printf '  %s\n' "${dist#"$repo"/}/SHA256SUMS:"
sed 's/^/    /' "$dist/SHA256SUMS"
