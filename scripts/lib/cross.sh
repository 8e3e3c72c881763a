# Shared by scripts/cross-test.sh and scripts/package.sh (sourced, not run):
# what a target is called, the host tools a cross build needs, and a cross
# build directory configured against its private sysroot.
#
# The caller sets `prog` (its name, for messages) and `repo` (the checkout),
# and defines die() and say().

# et_cross_target NAME: set arch (Debian), name (build-<name>), triple and
# qemu for aarch64|arm64 or armhf|arm; die on anything else.
et_cross_target() {
  case $1 in
    aarch64|arm64) arch=arm64 name=aarch64 triple=aarch64-linux-gnu qemu=qemu-aarch64 ;;
    armhf|arm)     arch=armhf name=armhf   triple=arm-linux-gnueabihf qemu=qemu-arm ;;
    *) die "architecture \"$1\": expected aarch64 (arm64) or armhf" ;;
  esac
}

# et_install_missing PROGRAM:PACKAGE...: apt-get install the packages whose
# program is not on PATH (through sudo when not root).
et_install_missing() {
  local pair missing=() sudo=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "installing host tools: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      die "missing ${missing[*]} and not root without sudo; as root run: apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# et_cross_host_tools: the cross compiler and binutils, qemu-user and the
# build tools for the target set by et_cross_target.
et_cross_host_tools() {
  et_install_missing "$triple-gcc:gcc-$triple" "$qemu:qemu-user" \
    "protoc-c:protobuf-c-compiler" "cmake:cmake" "make:make" "pkg-config:pkg-config" \
    "dpkg:dpkg"
}

# et_fresh_build_dir DIR...: a build directory configured from another
# checkout cannot be reused (its cache names the other source tree and the
# other sysroot): empty it, keeping a sysroot and its apt state.
et_fresh_build_dir() {
  local d src
  for d in "$@"; do
    [ -n "$d" ] || die "et_fresh_build_dir: empty directory name"
    [ -f "$d/CMakeCache.txt" ] || continue
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$d/CMakeCache.txt")
    if [ -n "$src" ] && [ "$src" != "$repo" ]; then
      say "$d was configured for $src; starting it afresh (the sysroot is kept)"
      find "$d" -mindepth 1 -maxdepth 1 ! -name sysroot ! -name sysroot.apt -exec rm -rf {} +
    fi
  done
}

# et_cross_sysroot SYSROOT: make the target's private sysroot from its
# Debian packages (toolchains/make-sysroot.sh; cached, a second call returns
# at once).
et_cross_sysroot() {
  [ -n "$1" ] || die "et_cross_sysroot: no directory"
  "$repo/toolchains/make-sysroot.sh" "$arch" "$1"
}

# et_cross_configure SYSROOT BUILD_DIR [CMAKE ARGS...]: configure BUILD_DIR
# with the target's toolchain file against SYSROOT.
et_cross_configure() {
  local sysroot=$1 dir=$2
  shift 2
  [ -n "$sysroot" ] && [ -n "$dir" ] || die "et_cross_configure: SYSROOT and BUILD_DIR needed"
  cmake -S "$repo" -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$repo/toolchains/$triple.cmake" \
        -DET_SYSROOT="$sysroot" "$@"
}
