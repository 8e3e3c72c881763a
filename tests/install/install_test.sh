#!/usr/bin/env bash
# install_test.sh HOST_BUILD — the Debian packages installed into a fresh
# Debian 12 tree, run from their installed files, upgraded, removed, purged.
# CTest runs it (integration_install, labels integration and slow) with
# HOST_BUILD = the native build, whose edgetelctl makes the certificates.
#
#   1. scripts/package.sh amd64 arm64 (lintian must find no error), and the
#      same amd64 tree again as an older version (VERSION~prev)
#   2. a minimal Debian 12 tree from debootstrap, with the packages' Depends
#      and systemd (for systemd-sysusers); cached under build/cache/, keyed
#      on that package list, and copied for each run, so it is always fresh
#   3. dpkg -i of the older packages in a chroot without systemd-sysusers
#      (the useradd fallback): the users, the state directory, the enabled
#      unit, the conffiles; the postinst run twice, with systemd-sysusers
#   4. mosquitto on 127.0.0.1 (mutual TLS, the shipped config, the packaged
#      edgetel_acl.so); the installed aggregator and agent, each started as
#      its unit's User= with its unit's ExecStart= and /etc/edgetel configs
#   5. the aggregator stops, a backlog gathers in the agent's outbox, the
#      agent stops; dpkg -i of the new packages over them: conffiles and
#      outbox kept; the new programs drain the outbox into the store with no
#      value missing or doubled
#   6. dpkg -r keeps data and config; dpkg -P deletes them
#   7. the arm64 packages: their files, an AArch64 agent, the same Depends
#      as amd64, every one of them a package Debian has for arm64
#
# Root only (chroot, debootstrap); otherwise it exits 77 (skipped). Writes
# only under its directory in $TMPDIR and the cache; a failing run keeps its
# directory and prints it. ET_TEST_KEEP=1 keeps a passing one too.
# Environment: SKIP_CROSS=1 leaves out arm64 (7), ET_CACHE_DIR (default REPO/build/cache), ET_DEBIAN_MIRROR
# (default: the host's first Debian mirror in its apt sources).
set -euo pipefail
# A command that fails outside a die() still says where.
trap 'echo "${prog:-install_test}: FAIL: line $LINENO exited $?" >&2' ERR

prog=install_test
die() { printf '%s: FAIL: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$prog" "$*"; }

[ $# -eq 1 ] || die "usage: $0 HOST_BUILD_DIR"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
host_build=$(cd "$1" && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "$prog: SKIPPED: needs root (debootstrap, chroot)"
  exit 77
fi
for tool in debootstrap mosquitto sqlite3 dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not installed (scripts/deps.sh installs it)"
done
host_arch=$(dpkg --print-architecture)
[ "$host_arch" = amd64 ] || { echo "$prog: SKIPPED: the install test runs on amd64"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/edgetel-install-XXXXXX")
root=$work/root
pids=()
mounted=()
passed=0
t0=$(date +%s)
timings=()
lap_start=$t0
lap() { timings+=("$(printf '%-44s %4ss' "$1" $(($(date +%s) - lap_start)))"); lap_start=$(date +%s); }

cleanup() {
  local p m
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if [ $passed = 1 ] && [ -z "${ET_TEST_KEEP:-}" ]; then
    # Nothing may stay mounted below what is deleted.
    if ! grep -q " ${work:?}/" /proc/mounts; then
      rm -rf "${work:?}"
    fi
  else
    for f in "$work"/*.log; do
      [ -f "$f" ] || continue
      printf -- '---- %s\n' "$f" >&2
      tail -n 25 "$f" >&2
    done
    echo "$prog: kept $work" >&2
  fi
}
trap cleanup EXIT

in_root() { chroot "$root" "$@"; }

# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds, or fail.
wait_for() {
  local secs=$1 what=$2 end
  shift 2
  end=$(($(date +%s) + secs))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || die "$what: not within ${secs}s"
    sleep 0.5
  done
}

# ---- 1. the packages -------------------------------------------------------------
version=$(sed -n 's/^project(edgetel VERSION \([0-9][0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
# SKIP_CROSS=1 (scripts/test.sh): no cross build, so no arm64 package.
archs=(amd64 arm64)
[ "${SKIP_CROSS:-0}" != 1 ] || archs=(amd64)
say "building the packages (scripts/package.sh ${archs[*]})"
ET_DEB_OUT=$work/debs "$repo/scripts/package.sh" "${archs[@]}" > "$work/package.log" 2>&1 ||
  die "scripts/package.sh failed (its log: $work/package.log)"
ET_DEB_OUT=$work/prev ET_DEB_VERSION="$version~prev" ET_DEB_LINTIAN=0 \
  "$repo/scripts/package.sh" amd64 > "$work/package-prev.log" 2>&1 ||
  die "scripts/package.sh for the previous version failed"
new_agent=$work/debs/edgetel-agent_${version}_amd64.deb
new_cloud=$work/debs/edgetel-cloud_${version}_amd64.deb
old_agent=$work/prev/edgetel-agent_${version}~prev_amd64.deb
old_cloud=$work/prev/edgetel-cloud_${version}~prev_amd64.deb
for f in "$new_agent" "$new_cloud" "$old_agent" "$old_cloud"; do
  [ -f "$f" ] || die "$f was not made"
done
grep -E '^E: ' "$work/package.log" && die "lintian reports errors"
lap "packages (amd64, arm64, previous amd64)"

# ---- 2. the Debian 12 tree ---------------------------------------------------------
# Its packages: what the two debs depend on, and systemd for systemd-sysusers
# and deb-systemd-helper (init-system-helpers).
deps=$( { dpkg-deb -f "$new_agent" Depends; echo ","; dpkg-deb -f "$new_cloud" Depends; } |
        tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | grep . | sort -u)
include=$(printf '%s\n' $deps systemd init-system-helpers | sort -u | paste -sd,)
key=$(printf 'bookworm minbase %s\n' "$include" | sha256sum | cut -c1-16)
cache=${ET_CACHE_DIR:-$repo/build/cache}
tree=$cache/debian12-$key
if [ ! -f "$tree/.complete" ]; then
  mirror=${ET_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    # This machine's own mirror, from whichever apt sources files it has (a
    # Debian 12 image may hold only sources.list.d/debian.sources).
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                 /etc/apt/sources.list.d/*.sources 2>/dev/null |
               grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  say "debootstrap bookworm from $mirror into $tree (once; cached)"
  mkdir -p "$cache"
  rm -rf "${tree:?}.new"
  debootstrap --variant=minbase --include="$include" bookworm "$tree.new" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || die "debootstrap failed (log: $work/debootstrap.log)"
  rm -rf "$tree.new/var/cache/apt/archives/"*.deb
  touch "$tree.new/.complete"
  mv "$tree.new" "$tree"
fi
cp -a "$tree" "$root"
rm -f "$root/.complete"
mkdir -p "$root/tmp/debs"
cp "$new_agent" "$new_cloud" "$old_agent" "$old_cloud" "$root/tmp/debs/"
mount -t proc proc "$root/proc"
mounted+=("$root/proc")
lap "Debian 12 tree (debootstrap, cached)"

# ---- 3. install the previous version ---------------------------------------------
# As on a system without systemd: no systemd-sysusers, so the postinst makes
# the users with useradd. The upgrade later runs with it, over those users.
mv "$root/usr/bin/systemd-sysusers" "$root/usr/bin/systemd-sysusers.away"
in_root dpkg -i "/tmp/debs/${old_agent##*/}" "/tmp/debs/${old_cloud##*/}" > "$work/install-prev.log" 2>&1 ||
  die "dpkg -i of the previous packages failed"
grep -q 'Creating user' "$work/install-prev.log" && die "systemd-sysusers ran though it was away"
mv "$root/usr/bin/systemd-sysusers.away" "$root/usr/bin/systemd-sysusers"
for u in edgetel edgetel-aggregator edgetel-issuer; do
  in_root getent passwd "$u" >/dev/null || die "no user $u after install"
done
# (user names as the tree's own /etc/passwd has them, not the host's)
[ "$(in_root stat -c '%U %a' /var/lib/edgetel)" = "edgetel 700" ] ||
  die "/var/lib/edgetel: $(in_root stat -c '%U %a' /var/lib/edgetel), expected edgetel 700"
[ -L "$root/etc/systemd/system/multi-user.target.wants/edgetel-agent.service" ] ||
  die "edgetel-agent.service is not enabled after install"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/edgetel-aggregator.service" ] ||
  die "edgetel-aggregator.service was enabled: it must wait for its certificates"
for f in agent.conf aggregator.conf issuer.conf; do
  [ -f "$root/etc/edgetel/$f" ] || die "/etc/edgetel/$f missing"
done
[ "$(in_root dpkg-query -W -f='${Conffiles}' edgetel-agent | awk 'NF {print $1}')" = /etc/edgetel/agent.conf ] ||
  die "edgetel-agent's conffiles are not /etc/edgetel/agent.conf"
# Run twice, the maintainer scripts change nothing and do not fail.
before=$(cd "$root" && md5sum etc/passwd etc/group etc/shadow && ls -la etc/systemd/system/multi-user.target.wants)
# (in dpkg's environment: deb-systemd-helper does nothing without it)
for p in edgetel-agent edgetel-cloud; do
  in_root env DPKG_MAINTSCRIPT_PACKAGE=$p DPKG_MAINTSCRIPT_NAME=postinst \
    "/var/lib/dpkg/info/$p.postinst" configure "$version~prev" >> "$work/postinst-twice.log" 2>&1 ||
    die "the postinst of $p failed when run again"
done
grep -q 'not called from dpkg' "$work/postinst-twice.log" && die "the second postinst ran outside dpkg's environment"
after=$(cd "$root" && md5sum etc/passwd etc/group etc/shadow && ls -la etc/systemd/system/multi-user.target.wants)
[ "$before" = "$after" ] || die "running the postinst again changed users or enabled units"
in_root edgetelctl --version > /dev/null || die "the installed edgetelctl does not run"
lap "install the previous version, postinst twice"

# ---- 4. broker; the installed programs --------------------------------------------------
# shellcheck source=../../scripts/site.sh
source "$repo/scripts/site.sh"
device=install-dev
certs=$work/certs
et_site_certs "$host_build/ctl/edgetelctl" "$certs" "$device" > "$work/certs.log" 2>&1 ||
  die "making the certificates failed"
port=18900
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  port=$((port + 1))
  [ $port -le 19000 ] || die "no free port in 18900..19000 on 127.0.0.1"
done
mkdir -p "$work/mosquitto"
plugin=$(find "$root/usr/lib" -name edgetel_acl.so | head -n1)
[ -n "$plugin" ] || die "edgetel_acl.so is not in the installed edgetel-cloud"
et_site_broker_conf "$certs" "$port" "$work/mosquitto" "$plugin" "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
pids+=($!)
wait_for 20 "mosquitto listening on 127.0.0.1:$port" \
  bash -c "(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"

# The certificates where an operator puts them, owned by each program's
# user (by number: the names are the tree's, not this machine's).
agent_uid=$(in_root id -u edgetel)
agg_uid=$(in_root id -u edgetel-aggregator)
install -d -m 0700 -o "$agg_uid" "$root/etc/edgetel/aggregator"
install -m 0644 "$certs/ca/ca.crt" "$root/etc/edgetel/aggregator/ca.crt"
install -m 0600 -o "$agg_uid" "$certs/issued/aggregator-1.crt" "$certs/issued/aggregator-1.key" \
  "$root/etc/edgetel/aggregator/"
install -m 0644 "$certs/ca/ca.crt" "$root/etc/edgetel/ca.crt"
install -m 0600 -o "$agent_uid" "$certs/issued/$device.crt" "$certs/issued/$device.key" "$root/var/lib/edgetel/"
sed -i -e "s|^host = .*|host = 127.0.0.1\nport = $port|" "$root/etc/edgetel/aggregator.conf"

# agent.conf START: the operator's edit of the conffile; the sim counter
# starts at START so two runs' values never meet.
write_agent_conf() {
  printf '%s\n' "[agent]" "device_id = $device" "batch_interval = 1s" "" \
    "[outbox]" "reserve = 0" "durability_window = 1s" "" \
    "[mqtt]" "host = 127.0.0.1" "port = $port" "ca = /etc/edgetel/ca.crt" \
    "cert = /var/lib/edgetel/$device.crt" "key = /var/lib/edgetel/$device.key" "clock_wait = 0s" "" \
    "[collector sim]" "type = sim" "interval = 200ms" "start = $1" > "$root/etc/edgetel/agent.conf"
}
write_agent_conf 0

# unit_value UNIT KEY: a line of the installed unit, as systemd would run it.
unit_value() {
  sed -n "s/^$2=//p" "$root/lib/systemd/system/$1" | tail -n1
}
agent_pid=
agg_pid=
start_aggregator() {
  local cmd
  cmd=$(unit_value edgetel-aggregator.service ExecStart)
  [ "$(unit_value edgetel-aggregator.service User)" = edgetel-aggregator ] || die "aggregator unit: User="
  # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
  chroot --userspec=edgetel-aggregator:edgetel-aggregator "$root" $cmd >> "$work/aggregator.log" 2>&1 &
  agg_pid=$!
  pids+=("$agg_pid")
}
start_agent() {
  local cmd
  cmd=$(unit_value edgetel-agent.service ExecStart)
  [ "$(unit_value edgetel-agent.service User)" = edgetel ] || die "agent unit: User="
  # shellcheck disable=SC2086
  chroot --userspec=edgetel:edgetel "$root" $cmd >> "$work/agent.log" 2>&1 &
  agent_pid=$!
  pids+=("$agent_pid")
}
stop() {  # stop PID NAME: SIGTERM and a clean exit
  kill -TERM "$1"
  wait "$1" || die "$2 exited with status $? on SIGTERM"
}

store=$root/var/lib/edgetel-aggregator/aggregator.db
outbox=$root/var/lib/edgetel/outbox.db
q_store() { sqlite3 -readonly "$store" "$1" 2>/dev/null; }
counter_sql="SELECT COUNT(*) || ' ' || COUNT(DISTINCT s.v_i64) || ' ' || COALESCE(MAX(s.v_i64), -1)
  FROM samples s JOIN metrics m ON m.id = s.metric_id
  WHERE m.device = '$device' AND m.name = 'sim.counter' AND s.v_i64 < 1000000"
stored_values() { local r; r=$(q_store "$counter_sql") || return 1; set -- $r; [ "${2:-0}" -ge "$1" ] && [ "$2" -ge 10 ]; }
outbox_batches() { sqlite3 -readonly "$outbox" "SELECT COUNT(*) FROM batch" 2>/dev/null; }
backlog_at_least() { local n; n=$(outbox_batches) && [ "${n:-0}" -ge "$1" ]; }
outbox_empty() { local n; n=$(outbox_batches) && [ "$n" = 0 ]; }
agent_alive() { kill -0 "$agent_pid" 2>/dev/null || die "the agent exited (log: $work/agent.log)"; }

start_aggregator
start_agent
wait_for 60 "values of the installed agent in the installed aggregator's store" stored_values
agent_alive
lap "installed agent -> broker -> installed aggregator"

# ---- 5. a backlog, then the upgrade over it ------------------------------------------------
stop "$agg_pid" aggregator
stored_before=$(q_store "$counter_sql")
wait_for 60 "a backlog of 5 batches in the outbox" backlog_at_least 5
agent_alive
stop "$agent_pid" agent
backlog=$(outbox_batches)
say "before the upgrade: store (rows distinct max) $stored_before; outbox $backlog batches"
conf_sum=$(md5sum < "$root/etc/edgetel/agent.conf")

in_root dpkg -i "/tmp/debs/${new_agent##*/}" "/tmp/debs/${new_cloud##*/}" > "$work/upgrade.log" 2>&1 ||
  die "dpkg -i of the new packages over the old failed"
[ "$(in_root dpkg-query -W -f='${Version}' edgetel-agent)" = "$version" ] || die "not upgraded"
[ "$(md5sum < "$root/etc/edgetel/agent.conf")" = "$conf_sum" ] || die "the upgrade changed the edited agent.conf"
[ "$(outbox_batches)" = "$backlog" ] || die "the upgrade changed the outbox: $(outbox_batches) batches, was $backlog"
lap "upgrade with a backlog"

write_agent_conf 1000000
start_aggregator
start_agent
wait_for 120 "the backlog drained into the store after the upgrade" outbox_empty
read -r rows distinct max <<<"$(q_store "$counter_sql")"
read -r _ _ max_before <<<"$stored_before"
say "after the upgrade: $rows rows, $distinct distinct values, 0..$max (stored before: up to $max_before)"
[ "$rows" = "$distinct" ] || die "values stored twice: $rows rows, $distinct distinct"
[ "$distinct" = $((max + 1)) ] || die "values missing: $distinct distinct in 0..$max"
[ "$max" -gt "$max_before" ] || die "the backlog's values never reached the store"
wait_for 30 "the new run's values" bash -c \
  "[ \"\$(sqlite3 -readonly '$store' \"SELECT COUNT(*) FROM samples s JOIN metrics m ON m.id = s.metric_id WHERE m.name = 'sim.counter' AND s.v_i64 >= 1000000\")\" -gt 0 ]"
stop "$agent_pid" agent
stop "$agg_pid" aggregator
lap "drain after the upgrade, checked"

# ---- 6. remove, purge ------------------------------------------------------------------------
in_root dpkg -r edgetel-agent edgetel-cloud > "$work/remove.log" 2>&1 || die "dpkg -r failed"
[ ! -e "$root/usr/bin/edgetel-agent" ] || die "dpkg -r left /usr/bin/edgetel-agent"
[ -f "$root/etc/edgetel/agent.conf" ] || die "dpkg -r deleted agent.conf"
[ -f "$outbox" ] || die "dpkg -r deleted the outbox"
[ -f "$store" ] || die "dpkg -r deleted the store"
in_root dpkg -P edgetel-agent edgetel-cloud > "$work/purge.log" 2>&1 || die "dpkg -P failed"
for gone in /etc/edgetel /var/lib/edgetel /var/lib/edgetel-aggregator \
            /etc/systemd/system/multi-user.target.wants/edgetel-agent.service \
            /usr/lib/sysusers.d/edgetel.conf; do
  [ ! -e "$root$gone" ] && [ ! -L "$root$gone" ] || die "dpkg -P left $gone"
done
in_root dpkg -s edgetel-agent > /dev/null 2>&1 && die "dpkg still knows edgetel-agent after purge"
lap "remove (kept), purge (gone)"

# ---- 7. arm64: contents and Depends ----------------------------------------------------------
if [ "${SKIP_CROSS:-0}" = 1 ]; then
  passed=1
  say "arm64 left out (SKIP_CROSS=1); timings:"
  printf '  %s\n' "${timings[@]}"
  say "PASS in $(($(date +%s) - t0))s"
  exit 0
fi
arm_agent=$work/debs/edgetel-agent_${version}_arm64.deb
arm_cloud=$work/debs/edgetel-cloud_${version}_arm64.deb
for deb in "$arm_agent" "$arm_cloud"; do
  [ -f "$deb" ] || die "$deb was not made"
  [ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || die "$deb: not Architecture: arm64"
done
dpkg-deb -c "$arm_agent" | awk '{print $6}' | sed 's|^\./|/|' > "$work/arm-agent.files"
for f in /usr/bin/edgetel-agent /lib/systemd/system/edgetel-agent.service /etc/edgetel/agent.conf \
         /usr/lib/sysusers.d/edgetel.conf /usr/share/doc/edgetel-agent/copyright; do
  grep -qx "$f" "$work/arm-agent.files" || die "arm64 edgetel-agent lacks $f"
done
dpkg-deb -c "$arm_cloud" | awk '{print $6}' | sed 's|^\./|/|' > "$work/arm-cloud.files"
for f in /usr/bin/edgetel-aggregator /usr/bin/edgetelctl \
         /usr/lib/aarch64-linux-gnu/edgetel/edgetel_acl.so /lib/systemd/system/edgetel-aggregator.service; do
  grep -qx "$f" "$work/arm-cloud.files" || die "arm64 edgetel-cloud lacks $f"
done
mkdir -p "$work/arm"
dpkg-deb -x "$arm_agent" "$work/arm"
readelf -h "$work/arm/usr/bin/edgetel-agent" | grep -q 'Machine:.*AArch64' || die "the arm64 agent is not AArch64"
readelf -l "$work/arm/usr/bin/edgetel-agent" | grep -q '/lib/ld-linux-aarch64.so.1' ||
  die "the arm64 agent does not load with /lib/ld-linux-aarch64.so.1"
names() { dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/(.*)//; s/[[:space:]]//g' | sort; }
[ "$(names "$arm_agent")" = "$(names "$new_agent")" ] ||
  die "arm64 and amd64 agents depend on different packages: $(names "$arm_agent" | paste -sd' ') / $(names "$new_agent" | paste -sd' ')"
[ "$(names "$arm_cloud")" = "$(names "$new_cloud")" ] || die "arm64 and amd64 cloud depend on different packages"
for p in $(names "$arm_agent") $(names "$arm_cloud"); do
  ls "$repo"/build-aarch64/sysroot.apt/debs/"${p}"_*_arm64.deb >/dev/null 2>&1 ||
    die "arm64 Depends names $p, which is not among Debian's arm64 packages of the sysroot"
done
cmp <(dpkg-deb --ctrl-tarfile "$arm_agent" | tar -xO ./postinst) \
    <(dpkg-deb --ctrl-tarfile "$new_agent" | tar -xO ./postinst) ||
  die "the arm64 and amd64 agents' postinst differ"
lap "arm64: contents and Depends"

passed=1
say "timings:"
printf '  %s\n' "${timings[@]}"
say "PASS in $(($(date +%s) - t0))s"
