#!/usr/bin/env bash
# make-sysroot.sh ARCH DIR — build a private target sysroot from Debian packages.
#
#   ARCH  Debian architecture of the board: arm64 | armhf | armel
#         (armel, ARMv5TE soft-float, is the one whose libraries run on the
#         ARMv6 boards: Pi Zero, Zero W, Pi 1; only the static agent and its
#         tests are built from it, so it leaves out the cloud's libraries)
#   DIR   where the sysroot goes (created; e.g. build-aarch64/sysroot)
#
# Why a private sysroot and not dpkg multiarch: the cross compiler must link
# against exactly the glibc that qemu-user later loads with -L.  A loader and
# a libc from two different builds hang at the first pthread_create, and
# multiarch installs on the host drag the host's package state into the build.
# So: a private apt state (its own sources, lists, cache and an empty dpkg
# status), `apt-get download` of the target's -dev and runtime packages, and
# `dpkg -x` of each into DIR.  Nothing is installed on the host.
#
# Sources: the host's own configured Debian mirrors (/etc/apt/sources.list,
# sources.list.d/*.list and deb822 *.sources), restricted to the Debian suites
# of the target release and the `main` component, with [arch=ARCH] forced.
# Raspberry Pi OS hosts also list archive.raspberrypi.com / raspbian; those are
# skipped, only their Debian entries are used.  A host without Debian entries
# (e.g. Ubuntu) sets ET_APT_SOURCES to a one-line-format sources file.
#
# Environment:
#   ET_DEBIAN_SUITE   target release codename (default: bookworm, Debian 12)
#   ET_APT_SOURCES    sources.list-format file to use instead of the host's
#   ET_APT_STATE      private apt state dir (default: DIR.apt beside DIR)
#   ET_SYSROOT_EXTRA  more package names to add to the list below
#   ET_SYSROOT_FORCE  1 = rebuild even when the stamp matches
#   ET_SYSROOT_ALLOW_PARTIAL  1 = go on when some index failed to download
#                     (a mirror mid-sync); the sysroot may then lack updates
#
# Idempotent: DIR/.complete records ARCH, the suite and the requested package
# list; when it matches, the script returns at once without touching the
# network.  DIR/.packages lists the resolved package=version set.
set -euo pipefail

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "$prog" "$*" >&2; }

[ $# -eq 2 ] || die "usage: $prog arm64|armhf|armel DIR"
arch=$1
case $arch in
  arm64) triple=aarch64-linux-gnu loader=lib/ld-linux-aarch64.so.1 ;;
  armhf) triple=arm-linux-gnueabihf loader=lib/ld-linux-armhf.so.3 ;;
  armel) triple=arm-linux-gnueabi loader=lib/ld-linux.so.3 ;;
  *) die "architecture \"$arch\": expected arm64, armhf or armel" ;;
esac
mkdir -p "$2"
dir=$(cd "$2" && pwd)
# The tree is emptied and refilled on each build: refuse a directory that
# holds anything but a sysroot this script made, whole or half unpacked (a
# typo must not cost $HOME).
if [ -n "$(ls -A "$dir")" ] && ! [ -f "$dir/.packages" ] && ! [ -f "$dir/.packages.new" ]; then
  die "$dir is not empty and is not a sysroot made by $prog; give a new or empty directory"
fi
state=${ET_APT_STATE:-$dir.apt}
suite=${ET_DEBIAN_SUITE:-bookworm}

# What the project builds and links against on the target.  Runtime libraries
# are listed beside their -dev packages so static and dynamic links both work;
# the Depends closure (libcrypt, libtirpc, ...) is added below.
packages=(
  libc6 libc6-dev linux-libc-dev libgcc-s1
  libssl3 libssl-dev
  libpaho-mqtt1.3 libpaho-mqtt-dev
  libmbedtls14 libmbedx509-1 libmbedcrypto7 libmbedtls-dev
  libprotobuf-c1 libprotobuf-c-dev
  libsqlite3-0 libsqlite3-dev
  libinih1 libinih-dev
  libcmocka0 libcmocka-dev
  # sd_notify for Type=notify units (readiness, watchdog, status)
  libsystemd0 libsystemd-dev
)
# edgetel-aggregator's HTTP server (the web view, /metrics), libpq for its
# PostgreSQL store, and the headers of mosquitto's plugin API for the
# broker's edgetel_acl.so in the target's edgetel-cloud package
# (scripts/package.sh).  armel serves only the static agent for ARMv6
# boards and its unit tests (the cloud side runs on 64-bit machines), so
# its sysroot goes without.
[ "$arch" = armel ] ||
  packages+=(libmicrohttpd12 libmicrohttpd-dev libpq5 libpq-dev mosquitto-dev libmosquitto-dev)
# shellcheck disable=SC2206 # word splitting of the extra list is intended
[ -n "${ET_SYSROOT_EXTRA:-}" ] && packages+=(${ET_SYSROOT_EXTRA})

stamp_text() {
  printf 'make-sysroot 2\narch %s\nsuite %s\n' "$arch" "$suite"
  printf '%s\n' "${packages[@]}" | sort -u
}
# A sysroot built from partial indexes carries a "partial" line, so it is
# reused only while partial builds are allowed and is redone otherwise.
if [ "${ET_SYSROOT_FORCE:-0}" != 1 ] && [ -f "$dir/.complete" ]; then
  have=$(cat "$dir/.complete")
  if [ "$have" = "$(stamp_text)" ] ||
     { [ "${ET_SYSROOT_ALLOW_PARTIAL:-0}" = 1 ] &&
       [ "$have" = "$(stamp_text; echo partial)" ]; }; then
    note "$dir is up to date for $arch (remove $dir/.complete to rebuild)"
    exit 0
  fi
fi

command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian-family host"
command -v dpkg >/dev/null || die "dpkg not found: needed to unpack the .deb files"

# ---- the private apt state -------------------------------------------------
mkdir -p "$state"/etc/sources.list.d "$state"/etc/preferences.d \
         "$state"/lists/partial "$state"/cache/archives/partial "$state"/debs
: > "$state"/status
: > "$state"/etc/sources.list
: > "$state"/etc/preferences
sources_out=$state/etc/sources.list.d/target.list
: > "$sources_out.new"

# Keep an entry only if it is a Debian suite of the target release with the
# main component, on a mirror that is not Raspberry Pi's own archive.  A host
# on another Debian release (say trixie) still names its Debian mirrors: an
# entry whose URI is a .../debian or .../debian-security archive is kept with
# its codename swapped for the target's (trixie-security -> bookworm-security).
suite_re="^${suite}(-updates|-security|-backports|/updates)?\$"
emit() {  # emit URI SUITE SIGNED_BY
  local uri=$1 s=$2 signed=$3 opts
  case $uri in *raspberrypi*|*raspbian*) return 0 ;; esac
  if ! [[ $s =~ $suite_re ]]; then
    [[ ${uri%/} =~ /debian(-security)?$ && $s =~ ^[a-z]+(-updates|-security|/updates)?$ ]] ||
      return 0
    s=$suite${BASH_REMATCH[1]}
  fi
  opts="arch=$arch"
  [ -n "$signed" ] && opts="$opts signed-by=$signed"
  printf 'deb [%s] %s %s main\n' "$opts" "$uri" "$s" >> "$sources_out.new"
}

# One-line format: deb [opts] URI SUITE COMPONENT...
parse_list() {
  local line type opts uri s comps signed
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    read -r type rest <<<"$line" || true
    [ "${type:-}" = deb ] || continue
    opts=
    if [[ $rest == \[* ]]; then
      opts=${rest%%]*}; opts=${opts#[}
      rest=${rest#*]}
    fi
    read -r uri s comps <<<"$rest"
    [[ " $comps " == *" main "* ]] || continue
    signed=
    if [[ " $opts " =~ [[:space:]]signed-by=([^[:space:]]+) ]]; then
      signed=${BASH_REMATCH[1]}
    fi
    emit "$uri" "$s" "$signed"
  done < "$1"
}

# deb822 format: paragraphs of Field: value, separated by blank lines.
parse_sources() {
  awk '
    function flush(   n, i, j, nu, ns, u, s) {
      if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" &&
          (" " comps " ") ~ /[ \t]main[ \t]/) {
        nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
          if (u[i] != "" && s[j] != "") print u[i] "\t" s[j] "\t" signed
      }
      types = uris = suites = comps = signed = enabled = ""; field = ""
    }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { if (field == "uris") uris = uris " " $0; next }   # continuation
    {
      field = tolower(substr($0, 1, index($0, ":") - 1))
      val = substr($0, index($0, ":") + 1); gsub(/^[ \t]+|[ \t]+$/, "", val)
      if (field == "types") types = val
      else if (field == "uris") uris = val
      else if (field == "suites") suites = val
      else if (field == "components") comps = val
      else if (field == "enabled") enabled = tolower(val)
      else if (field == "signed-by" && val ~ /^\//) signed = val  # a path, not an inline key
    }
    END { flush() }
  ' "$1" | while IFS=$'\t' read -r uri s signed; do emit "$uri" "$s" "$signed"; done
}

if [ -n "${ET_APT_SOURCES:-}" ]; then
  [ -r "$ET_APT_SOURCES" ] || die "ET_APT_SOURCES=$ET_APT_SOURCES: not readable"
  parse_list "$ET_APT_SOURCES"
else
  shopt -s nullglob
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] && parse_list "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && parse_sources "$f"
  done
  shopt -u nullglob
fi
sort -u "$sources_out.new" > "$sources_out"
rm -f "$sources_out.new"
[ -s "$sources_out" ] || die "no Debian $suite entry with component main in the host's apt sources; set ET_APT_SOURCES to a sources.list-format file naming a Debian mirror"
note "apt sources for $arch:"
sed 's/^/  /' "$sources_out" >&2

apt_opts=(
  -o "Dir::State=$state"
  -o "Dir::State::Lists=$state/lists"
  -o "Dir::State::status=$state/status"
  -o "Dir::Cache=$state/cache"
  # Container images often turn the binary cache off (docker-clean); without
  # it every apt-cache call below re-parses all the lists, about a second each.
  -o "Dir::Cache::pkgcache=pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
  -o "Dir::Etc::SourceList=$state/etc/sources.list"
  -o "Dir::Etc::SourceParts=$state/etc/sources.list.d"
  -o "Dir::Etc::Preferences=$state/etc/preferences"
  -o "Dir::Etc::PreferencesParts=$state/etc/preferences.d"
  -o "APT::Architecture=$arch"
  -o "APT::Architectures=$arch"
  -o "APT::Get::List-Cleanup=0"
  -o "Acquire::Languages=none"
  -o "Debug::NoLocking=1"
)
# As root apt drops to the _apt user for downloads, which cannot write into a
# build directory owned by root; the state here is private, so stay root.
[ "$(id -u)" = 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")

# A mirror in the middle of a sync (or a stale proxy in front of it) serves
# an index that does not match its Release file; that clears up by itself,
# so try a few times before giving up.
update_ok=0
for attempt in 1 2 3; do
  note "apt-get update ($arch), attempt $attempt"
  # apt-get update exits 0 when an index could not be fetched (no network,
  # no DNS): it only warns "Failed to fetch". Count that as a failure too.
  if apt-get "${apt_opts[@]}" -q update > "$state/update.log" 2>&1 &&
     ! grep -q '^W: Failed to fetch' "$state/update.log"; then
    update_ok=1; break
  fi
  [ "$attempt" -lt 3 ] && sleep $((attempt * 10))
done
if [ $update_ok = 0 ]; then
  grep -E '^(E|W):' "$state/update.log" >&2 || cat "$state/update.log" >&2
  # Going on without an index (say bookworm-security) would quietly build
  # against older, unpatched libraries, and a static agent would carry them.
  [ "${ET_SYSROOT_ALLOW_PARTIAL:-0}" = 1 ] ||
    die "apt-get update in the private state $state failed (log: $state/update.log); set ET_SYSROOT_ALLOW_PARTIAL=1 to build from the indexes that did download"
  note "WARNING: ET_SYSROOT_ALLOW_PARTIAL=1: going on without the indexes above; the sysroot may lack security updates"
fi

# ---- resolve the package set -------------------------------------------------
# The requested packages plus their Depends/Pre-Depends closure, as the target
# itself would resolve them.  Only libraries and headers are wanted (and
# mosquitto-dev, headers without the lib prefix): the
# closure's tools (libc-dev-bin, rpcsvc-proto) are target executables nobody
# here runs, and virtual packages (<libc-dev>) have no file to download.
# The closure lists every alternative of a dependency: libelogind0 (the
# other libsystemd0) is left out, as its /lib/<triple>/libsystemd.so.0 would
# be the one qemu -L loads instead of systemd's in /usr/lib.
for p in "${packages[@]}"; do
  apt-cache "${apt_opts[@]}" show "$p" >/dev/null 2>&1 ||
    die "package \"$p\" not found for $arch in $sources_out"
done
mapfile -t resolved < <(
  apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
      --no-conflicts --no-breaks --no-replaces --no-enhances "${packages[@]}" |
    grep -v '^[ <]' | sed 's/:.*//' | sort -u |
    grep -E '^(lib|linux-libc-dev$|mosquitto-dev$)' | grep -vx -e 'libc-dev-bin' -e 'libelogind0')
[ ${#resolved[@]} -gt 0 ] || die "resolving the package list for $arch gave nothing"

# ---- download and unpack -------------------------------------------------------
note "downloading ${#resolved[@]} packages for $arch"
(cd "$state/debs" && apt-get "${apt_opts[@]}" -q download "${resolved[@]}" >&2) ||
  die "apt-get download for $arch failed (packages: ${resolved[*]})"

# A fresh tree, so a package dropped from the list does not linger.
find "$dir" -mindepth 1 -delete
: > "$dir/.packages.new"
for p in "${resolved[@]}"; do
  ver=$(apt-cache "${apt_opts[@]}" policy "$p" | awk '/Candidate:/ { print $2 }')
  # apt-get download names files pkg_version-with-%3a_arch.deb
  deb=
  for a in "$arch" all; do
    f=$state/debs/${p}_${ver/:/%3a}_$a.deb
    [ -f "$f" ] && { deb=$f; break; }
  done
  [ -n "$deb" ] || die "downloaded file for $p $ver not found in $state/debs"
  dpkg -x "$deb" "$dir"
  printf '%s=%s\n' "$p" "$ver" >> "$dir/.packages.new"
done
mv "$dir/.packages.new" "$dir/.packages"
# Drop .deb files of earlier runs that this package set no longer uses.
for f in "$state"/debs/*.deb; do
  base=${f##*/}
  grep -qxF "${base%%_*}=$(printf '%s' "$base" | cut -d_ -f2 | sed 's/%3a/:/')" "$dir/.packages" ||
    rm -f "$f"
done

# ---- make every symlink point inside the sysroot -------------------------------
# Debian's -dev links are absolute (usr/lib/<triple>/libssl.so ->
# /lib/<triple>/libssl.so.3 in some packages); from the sysroot they would
# resolve on the build machine.  Rewrite them relative to their own directory.
fixed=0
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  case $target in /*) ;; *) continue ;; esac
  rel=$(realpath -m -s --relative-to="$(dirname "$link")" "$dir$target")
  ln -sfn "$rel" "$link"
  fixed=$((fixed + 1))
done < <(find "$dir" -type l -print0)
note "rewrote $fixed absolute symlinks as relative"

# Sanity: the pieces the toolchain files and qemu -L rely on.
for f in "$loader" "usr/lib/$triple/libc.so" "usr/include/stdio.h" \
         "usr/lib/$triple/cmake/eclipse-paho-mqtt-c/eclipse-paho-mqtt-cConfig.cmake"; do
  [ -e "$dir/$f" ] || die "$dir/$f missing after unpacking: the sysroot is incomplete"
done

{ stamp_text; [ $update_ok = 1 ] || echo partial; } > "$dir/.complete"
note "sysroot for $arch ready in $dir ($(du -sh "$dir" | cut -f1))"
