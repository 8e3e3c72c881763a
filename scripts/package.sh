#!/usr/bin/env bash
# package.sh [ARCH...] — the Debian packages of edgetel, into build/deb/.
#
#   edgetel-agent   ARCH amd64, arm64, armhf: /usr/bin/edgetel-agent, its
#                   unit (enabled on install), its user, /etc/edgetel/agent.conf
#   edgetel-cloud   ARCH amd64, arm64: edgetel-aggregator, edgetelctl, the
#                   broker's edgetel_acl.so, the aggregator's and the issuer's
#                   units (installed, not enabled: they need certificates
#                   first), their users, /etc/edgetel/{aggregator,issuer}.conf
#
# With no ARCH: amd64 arm64 armhf. The machine's own architecture builds
# natively in build-<arch>/ (no tests); the others cross, in build-aarch64/
# and build-armhf/ against their private sysroot, configured exactly as
# scripts/cross-test.sh configures them (scripts/lib/cross.sh), so the two
# share those directories.
#
# Depends is computed as dpkg-shlibdeps does from shlibs files: each
# binary's NEEDED libraries, the package that ships each for the target
# (the host's dpkg database natively, the sysroot's downloaded .debs when
# crossing) and that package's shlibs line for it. The debs are put together with dpkg-deb from a
# staged tree; no debhelper.
#
# Environment:
#   ET_DEB_VERSION   the packages' version (default: the project's, CMakeLists.txt)
#   ET_DEB_OUT       where the .debs go (default build/deb)
#   ET_DEB_LINTIAN=0 do not run lintian on the result (default: run it when
#                    installed; an error fails the script)
#   JOBS             parallel build jobs
set -euo pipefail
umask 022

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '\n==> %s: %s\n' "$prog" "$*"; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=lib/cross.sh
source "$repo/scripts/lib/cross.sh"

version=${ET_DEB_VERSION:-$(sed -n 's/^project(edgetel VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)}
[ -n "$version" ] || die "no version: CMakeLists.txt has no project(edgetel VERSION ...)"
out=${ET_DEB_OUT:-$repo/build/deb}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
host_arch=$(dpkg --print-architecture)
maintainer="edgetel developers <edgetel@users.noreply.github.com>"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64 armhf)

# The users each package makes: name, home, description. One table for the
# sysusers.d file and for the useradd fallback of the postinst.
agent_users=("edgetel:/var/lib/edgetel:edgetel telemetry agent")
cloud_users=("edgetel-aggregator:/var/lib/edgetel-aggregator:edgetel telemetry aggregator"
             "edgetel-issuer:/var/lib/edgetel-issuer:edgetel certificate issuer")

# ---- Depends from the binaries ---------------------------------------------------

# lib_owner SONAME NAME: the package of the target's library SONAME (in a
# /<triple>/ library directory, as the dynamic loader finds it): from the
# host's dpkg database natively, else from the file lists of the .debs
# make-sysroot.sh downloaded for the sysroot ($files_index). Prints
# "PACKAGE SHLIBS-SOURCE" (the dpkg info file, or the .deb).
lib_owner() {
  local soname=$1 pkg deb
  if [ "$arch" = "$host_arch" ]; then
    pkg=$(dpkg -S "*/$triple/$soname" 2>/dev/null | awk -F': ' -v s="/$triple/$soname" \
            'substr($2, length($2) - length(s) + 1) == s { print $1; exit }')
    [ -n "$pkg" ] || return 1
    pkg=${pkg%%:*}
    for f in "/var/lib/dpkg/info/$pkg:$arch.shlibs" "/var/lib/dpkg/info/$pkg.shlibs"; do
      [ -f "$f" ] && { echo "$pkg $f"; return 0; }
    done
    echo "$pkg -"
  else
    # More than one package may ship it (libelogind0 also has libsystemd.so.0,
    # and the sysroot's closure holds both): the one named after the
    # library, as Debian names them, wins.
    deb=$(awk -v s="/$triple/$soname" -v n="$2" '
            substr($2, length($2) - length(s) + 1) == s {
              split($1, parts, "/"); base = parts[length(parts)]
              if (index(base, n) == 1) { print $1; found = 1; exit }
              if (first == "") first = $1
            }
            END { if (!found && first != "") print first }' "$files_index")
    [ -n "$deb" ] || return 1
    echo "$(basename "$deb" | cut -d_ -f1) $deb"
  fi
}

# files_index_of SYSROOT OUT: "deb path" for every file of the sysroot's .debs.
files_index_of() {
  local deb
  for deb in "$1.apt"/debs/*_"$arch".deb; do
    dpkg-deb -c "$deb" | awk -v d="$deb" '{ p = $6; sub(/^\./, "", p); print d, p }'
  done > "$2"
}

# depends_of FILE...: the Depends of the files' NEEDED libraries, from the
# shlibs file of the package that ships each (what dpkg-shlibdeps does when
# a library has no symbols file; every library here has a shlibs file).
depends_of() {
  local f soname name ver owner pkg src dep
  for f in "$@"; do
    for soname in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      # libfoo.so.1 -> "libfoo 1"; libfoo-1.2.so -> "libfoo 1.2" (as dpkg-shlibdeps)
      if [[ $soname =~ ^(.*)\.so\.(.*)$ ]]; then
        name=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}
      elif [[ $soname =~ ^(.*)-([0-9][0-9.]*)\.so$ ]]; then
        name=${BASH_REMATCH[1]} ver=${BASH_REMATCH[2]}
      else
        die "$f: NEEDED $soname: not a versioned library name"
      fi
      owner=$(lib_owner "$soname" "$name") || die "$f needs $soname, which no $arch package ships"
      read -r pkg src <<<"$owner"
      case $src in
        -) dep= ;;
        *.deb) dep=$(dpkg-deb -I "$src" shlibs 2>/dev/null | grep -v '^udeb:' |
                       awk -v n="$name" -v v="$ver" '$1 == n && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }') ;;
        *) dep=$(grep -v '^udeb:' "$src" |
                   awk -v n="$name" -v v="$ver" '$1 == n && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }') ;;
      esac
      [ -n "$dep" ] || die "$f needs $soname of $pkg, whose shlibs file does not name it"
      printf '%s\n' "$dep"
    done
  done | sort -u | paste -sd, | sed 's/,/, /g'
}

# ---- the staged tree ---------------------------------------------------------------

# install_file MODE SRC DEST (DEST relative to the stage)
install_file() {
  install -D -m "$1" "$2" "$stage/$3"
}

# strip_into SRC DEST: the binary, stripped as Debian ships them.
strip_into() {
  install -D -m 0755 "$1" "$stage/$2"
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/$2"
}

# doc_files PACKAGE: copyright and changelog, which every .deb carries.
doc_files() {
  local pkg=$1 doc=$stage/usr/share/doc/$1 when
  mkdir -p "$doc"
  {
    printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n'
    printf 'Upstream-Name: edgetel\nSource: https://github.com/edgetel/edgetel\n\n'
    printf 'Files: *\nCopyright: 2026 The edgetel authors\nLicense: Expat\n'
    # The license text, each line indented, blank lines as " ."
    sed -n '3,$p' LICENSE | sed 's/^$/./; s/^/ /'
  } > "$doc/copyright"
  chmod 0644 "$doc/copyright"
  when=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)
  {
    printf 'edgetel (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Built from the edgetel source by scripts/package.sh.\n\n'
    printf ' -- %s  %s\n' "$maintainer" "$(LC_ALL=C date -u -R -d "@$when")"
  } | gzip -9n > "$doc/changelog.gz"
  chmod 0644 "$doc/changelog.gz"
}

# sysusers_file PATH USER...: a sysusers.d file for "name:home:description" users.
sysusers_file() {
  local path=$1 u name home desc
  shift
  mkdir -p "$(dirname "$stage/$path")"
  {
    printf '# The system users of %s (systemd-sysusers; made by scripts/package.sh).\n' "$pkg"
    for u in "$@"; do
      IFS=: read -r name home desc <<<"$u"
      printf 'u %s - "%s" %s /usr/sbin/nologin\n' "$name" "$desc" "$home"
    done
  } > "$stage/$path"
  chmod 0644 "$stage/$path"
}

# maintainer_scripts UNITS ENABLE SYSUSERS PURGE USER...: DEBIAN/postinst,
# prerm and postrm from packaging/debian/*.in. PURGE: the lines postrm
# purge runs; USER: "name:home:description".
maintainer_scripts() {
  local units=$1 enable=$2 sysusers=$3 purge=$4 u name home desc script
  local useradd="" statedirs=""
  shift 4
  for u in "$@"; do
    IFS=: read -r name home desc <<<"$u"
    useradd+="    getent group $name >/dev/null || groupadd --system $name"$'\n'
    useradd+="    getent passwd $name >/dev/null || useradd --system --gid $name --home-dir $home --no-create-home --shell /usr/sbin/nologin --comment \"$desc\" $name"$'\n'
    statedirs+="        [ -d $home ] || install -d -m 0700 -o $name -g $name $home"$'\n'
  done
  for script in postinst prerm postrm; do
    UNITS=$units ENABLE=$enable SYSUSERS=$sysusers PACKAGE=$pkg \
      USERADD=${useradd%$'\n'} STATEDIRS=${statedirs%$'\n'} PURGE=$purge \
      awk '{
        gsub(/@UNITS@/, ENVIRON["UNITS"]); gsub(/@ENABLE@/, ENVIRON["ENABLE"])
        gsub(/@SYSUSERS@/, ENVIRON["SYSUSERS"]); gsub(/@PACKAGE@/, ENVIRON["PACKAGE"])
        if ($0 == "@USERADD@") { print ENVIRON["USERADD"]; next }
        if ($0 == "@STATEDIRS@") { print ENVIRON["STATEDIRS"]; next }
        if ($0 == "@PURGE@") { print ENVIRON["PURGE"]; next }
        print
      }' "$repo/packaging/debian/$script.in" > "$stage/DEBIAN/$script"
    chmod 0755 "$stage/DEBIAN/$script"
  done
}

# build_deb DEPENDS DESCRIPTION [EXTRA CONTROL LINES]: control, conffiles,
# md5sums, then dpkg-deb.
build_deb() {
  local depends=$1 description=$2 extra=${3:-} size deb
  size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
  {
    printf 'Package: %s\nVersion: %s\nArchitecture: %s\n' "$pkg" "$version" "$arch"
    printf 'Maintainer: %s\nInstalled-Size: %s\n' "$maintainer" "$size"
    printf 'Depends: %s\n' "$depends"
    [ -n "$extra" ] && printf '%s\n' "$extra"
    printf 'Section: net\nPriority: optional\n'
    printf 'Homepage: https://github.com/edgetel/edgetel\n'
    printf 'Description: %s\n' "$description"
  } > "$stage/DEBIAN/control"
  (cd "$stage" && find etc -type f 2>/dev/null | sed 's|^|/|' | sort) > "$stage/DEBIAN/conffiles"
  [ -s "$stage/DEBIAN/conffiles" ] || rm -f "$stage/DEBIAN/conffiles"
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
     xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
  chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
  [ -f "$stage/DEBIAN/conffiles" ] && chmod 0644 "$stage/DEBIAN/conffiles"
  find "$stage" -type d -exec chmod 0755 {} +
  deb=$out/${pkg}_${version}_${arch}.deb
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  say "$(basename "$deb"): $(stat -c %s "$deb") bytes; Depends: $depends"
  debs+=("$deb")
}

# hardening_args ARCH: cmake arguments for Debian's hardening flags
# (dpkg-buildflags with hardening=+all: fortify, stack protector, relro,
# bindnow). The cross toolchain files put their sysroot flags in front of a
# CMAKE_C_FLAGS given this way, and cross-test.sh's later configure of the
# same directory keeps them (they are in its cache).
hardening_args() {
  local cflags ldflags
  flags() { DEB_BUILD_MAINT_OPTIONS=hardening=+all DEB_HOST_ARCH=$1 dpkg-buildflags --get "$2"; }
  cflags="$(flags "$1" CPPFLAGS) $(flags "$1" CFLAGS)"
  ldflags=$(flags "$1" LDFLAGS)
  printf '%s\n' "-DCMAKE_C_FLAGS=$cflags" "-DCMAKE_EXE_LINKER_FLAGS=$ldflags" \
    "-DCMAKE_SHARED_LINKER_FLAGS=$ldflags" "-DCMAKE_MODULE_LINKER_FLAGS=$ldflags"
}

# new_stage: an empty staging tree for $pkg/$arch.
new_stage() {
  stage=$out/stage/${pkg}_$arch
  [ -n "$out" ] && [ -n "$pkg" ] && [ -n "$arch" ] || die "new_stage: unset name"
  rm -rf "${stage:?}"
  mkdir -p "$stage/DEBIAN"
}

# ---- per architecture ----------------------------------------------------------------

debs=()
mkdir -p "$out"
et_install_missing "dpkg-deb:dpkg" "readelf:binutils" "md5sum:coreutils"

for want in "${archs[@]}"; do
  case $want in
    amd64|arm64|armhf) ;;
    aarch64) want=arm64 ;;
    *) die "architecture \"$want\": expected amd64, arm64 or armhf" ;;
  esac
  with_cloud=yes
  [ "$want" = armhf ] && with_cloud=no   # the cloud side runs on 64-bit hosts

  if [ "$want" = "$host_arch" ]; then
    arch=$want
    triple=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    build=$repo/build-$arch
    sysroot=/
    strip="strip"
    say "$arch: native build in $build"
    et_cross_fresh "$build"
    mapfile -t hardening < <(hardening_args "$arch")
    cmake -S "$repo" -B "$build" -DET_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      "${hardening[@]}" >/dev/null
  else
    et_cross_target "$want"
    strip=$triple-strip   # et_cross_target set build and sysroot
    say "$arch: cross build in $build"
    et_cross_host_tools
    et_cross_fresh "$build"
    et_cross_sysroot
    # The same configuration as scripts/cross-test.sh (the two share the
    # directory), with Debian's hardening flags.
    mapfile -t hardening < <(hardening_args "$arch")
    et_cross_configure "$build" -DET_BUILD_TESTS=ON "${hardening[@]}" >/dev/null
  fi
  targets=(edgetel-agent)
  [ $with_cloud = yes ] && targets+=(edgetel-aggregator edgetelctl edgetel_acl)
  cmake --build "$build" -j "$jobs" --target "${targets[@]}"
  [ -f "$build/broker/edgetel_acl.so" ] || [ $with_cloud = no ] ||
    die "$build/broker/edgetel_acl.so was not built: mosquitto-dev missing from the sysroot?"

  mkdir -p "$out/stage"
  files_index=$out/stage/files.$arch
  [ "$arch" = "$host_arch" ] || files_index_of "$sysroot" "$files_index"

  # -- edgetel-agent
  pkg=edgetel-agent
  new_stage
  strip_into "$build/agent/edgetel-agent" usr/bin/edgetel-agent
  install_file 0644 packaging/systemd/edgetel-agent.service lib/systemd/system/edgetel-agent.service
  install_file 0644 packaging/agent.conf.example etc/edgetel/agent.conf
  install_file 0644 packaging/systemd/sensors/sensors.conf \
    usr/share/doc/edgetel-agent/examples/sensors.conf
  sysusers_file usr/lib/sysusers.d/edgetel.conf "${agent_users[@]}"
  doc_files "$pkg"
  # purge: the outbox and the agent's identity, and what --import-boot put
  # beside the conffile (dpkg deletes agent.conf itself).
  maintainer_scripts edgetel-agent.service yes /usr/lib/sysusers.d/edgetel.conf \
    '        rm -rf /var/lib/edgetel
        rm -f /etc/edgetel/ca.crt /etc/edgetel/operator.pub
        rmdir --ignore-fail-on-non-empty /etc/edgetel 2>/dev/null || true' \
    "${agent_users[@]}"
  depends=$(depends_of "$stage/usr/bin/edgetel-agent")
  build_deb "$depends" \
    "telemetry agent for fleets of Raspberry Pi-class boards
 edgetel-agent collects system and sensor metrics on the board, keeps them
 in an SQLite outbox while the link is down and delivers them over MQTT
 with mutual TLS to edgetel-aggregator, deleting a batch only once the
 aggregator has stored it. It takes signed configuration pushed from the
 cloud and renews its own certificate.
 .
 The service runs as the unprivileged user edgetel under systemd's
 sandboxing; /usr/share/doc/edgetel-agent/examples/sensors.conf gives it
 the i2c and gpio groups where a board's collectors read those buses."

  # -- edgetel-cloud
  if [ $with_cloud = yes ]; then
    pkg=edgetel-cloud
    new_stage
    strip_into "$build/aggregator/edgetel-aggregator" usr/bin/edgetel-aggregator
    strip_into "$build/ctl/edgetelctl" usr/bin/edgetelctl
    strip_into "$build/broker/edgetel_acl.so" "usr/lib/$triple/edgetel/edgetel_acl.so"
    chmod 0644 "$stage/usr/lib/$triple/edgetel/edgetel_acl.so"
    for u in edgetel-aggregator edgetel-issuer; do
      install_file 0644 "packaging/systemd/$u.service" "lib/systemd/system/$u.service"
    done
    install_file 0644 packaging/aggregator.conf.example etc/edgetel/aggregator.conf
    install_file 0644 packaging/issuer.conf.example etc/edgetel/issuer.conf
    install_file 0644 packaging/mosquitto/edgetel.conf.in \
      usr/share/doc/edgetel-cloud/examples/mosquitto-edgetel.conf.in
    sysusers_file usr/lib/sysusers.d/edgetel-cloud.conf "${cloud_users[@]}"
    doc_files "$pkg"
    # purge: the aggregator's store and certificates. The fleet CA
    # (/var/lib/edgetel-issuer/ca) is kept and said: losing it means
    # provisioning every board again.
    maintainer_scripts "edgetel-aggregator.service edgetel-issuer.service" no \
      /usr/lib/sysusers.d/edgetel-cloud.conf \
      '        rm -rf /var/lib/edgetel-aggregator /etc/edgetel/aggregator
        if [ -d /var/lib/edgetel-issuer/ca ]; then
            echo "edgetel-cloud: keeping the fleet CA in /var/lib/edgetel-issuer/ca; delete it by hand if it is no longer wanted" >&2
        else
            rm -rf /var/lib/edgetel-issuer
        fi
        rmdir --ignore-fail-on-non-empty /etc/edgetel 2>/dev/null || true' \
      "${cloud_users[@]}"
    depends=$(depends_of "$stage/usr/bin/edgetel-aggregator" "$stage/usr/bin/edgetelctl" \
                "$stage/usr/lib/$triple/edgetel/edgetel_acl.so")
    build_deb "$depends" \
      "cloud side of edgetel: aggregator, operator tool, broker plugin
 edgetel-aggregator ingests the boards' telemetry from an MQTT 5 broker,
 stores every batch exactly once (SQLite) and acknowledges it, relays
 signed configuration to the boards and serves the fleet's web view and
 Prometheus metrics. edgetelctl is the operator's tool: the fleet's data,
 signed configuration, the fleet CA and its issuer (edgetelctl ca serve).
 edgetel_acl.so is the mosquitto plugin that holds each client to its own
 topics by its certificate's name.
 .
 The units edgetel-aggregator and edgetel-issuer are installed but not
 enabled: they need the fleet's certificates first." \
      "Recommends: libjs-dygraphs
Suggests: mosquitto"
  fi
done

if [ "${ET_DEB_LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null 2>&1; then
  say "lintian ${debs[*]##*/}"
  # Errors fail; warnings and notes are shown.
  lintian --tag-display-limit 0 "${debs[@]}" || die "lintian found errors (above)"
fi
say "packages in $out:"
ls -l "${debs[@]}"
