#!/usr/bin/env bash
# footprint.sh — what did a change cost the agent in size and memory?
#
#   bench/footprint.sh [BEFORE [AFTER]]     (defaults: c8dd1c8^ HEAD)
#
# Builds edgetel-agent (Release, agent only: no tests, no cloud programs) at
# two git revisions, each in a temporary detached worktree, dynamically
# linked and, when the native static link works, statically (ET_STATIC).
# The defaults compare the agent just before it first linked Mbed TLS
# (c8dd1c8, common/sign for signed config pushes) with the current one.
# Revisions are commits: changes not committed are not measured.
#
# Sizes, from a stripped copy: file bytes and size(1)'s text/data/bss.  The
# dynamic agent's shared libraries (ldd) are listed with their text; Mbed
# TLS's share of the dynamic build is the text of the libmbed*.so files it
# loads.  In the static build Mbed TLS's share is the input sections the
# link took from libmbed*.a, read from the linker map (-Wl,-Map).
#
# Memory: every agent runs at once, interleaved, for FOOTPRINT_SECONDS with
# the default system set plus a sim collector, all every 1 s, each into its
# own data dir and without a broker ([mqtt] host unset).  VmRSS, RssAnon
# and VmHWM are read from /proc/PID/status once a second, and the resident
# pages of the libmbed*.so mappings from /proc/PID/smaps; the table gives
# the medians and the last (peak) VmHWM.  AFTER also runs with [agent]
# trusted_keys set to a P-256 public key (made with openssl, the same PEM
# as `edgetelctl keys init` writes): the configuration in which Mbed TLS is
# loaded and used, not only linked.  Ratios are AFTER/BEFORE; the
# trusted_keys rows are divided by plain BEFORE too.
#
# Environment:
#   FOOTPRINT_SECONDS  how long the agents run (default 30)
#   FOOTPRINT_STATIC   0 skips the static builds (default 1)
#   FOOTPRINT_KEEP     1 keeps the temp dir (builds, linker maps, configs,
#                      agent logs) and says where; the worktrees still go
#   JOBS               parallel build jobs (default: number of CPUs)
# Builds, worktrees and data dirs live in one temp dir that is removed on
# exit; nothing touches the network.
set -euo pipefail

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$prog" "$*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
before_rev=${1:-c8dd1c8^}
after_rev=${2:-HEAD}
seconds=${FOOTPRINT_SECONDS:-30}
want_static=${FOOTPRINT_STATIC:-1}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "FOOTPRINT_SECONDS \"$seconds\": expected a whole number of seconds"
for tool in git cmake strip size nm ldd openssl awk; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs the build tools)"
done

before=$(git -C "$repo" rev-parse --verify --quiet "$before_rev^{commit}") ||
  die "BEFORE \"$before_rev\" is not a commit in $repo"
after=$(git -C "$repo" rev-parse --verify --quiet "$after_rev^{commit}") ||
  die "AFTER \"$after_rev\" is not a commit in $repo"

work=$(mktemp -d "${TMPDIR:-/tmp}/edgetel-footprint-XXXXXX")
worktrees=()
pids=()
cleanup() {
  local p w
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for w in "${worktrees[@]}"; do
    git -C "$repo" worktree remove --force "$w" 2>/dev/null || rm -rf "$w"
  done
  ((${#worktrees[@]} == 0)) || git -C "$repo" worktree prune 2>/dev/null || true
  if [[ ${FOOTPRINT_KEEP:-0} == 1 ]]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# build SIDE REV LINK: builds edgetel-agent at REV into $work/build-SIDE-LINK;
# fails (status 1, log kept in $work) if it does not build.
build() {
  local side=$1 rev=$2 link=$3 src=$work/src-$1 dir=$work/build-$1-$3
  local args=(-DCMAKE_BUILD_TYPE=Release -DET_BUILD_TESTS=OFF -DET_BUILD_CLOUD=OFF)
  if [[ ! -d $src ]]; then
    git -C "$repo" worktree add --quiet --detach "$src" "$rev" >/dev/null
    worktrees+=("$src")
  fi
  if [[ $link == static ]]; then
    args+=(-DET_STATIC=ON -DCMAKE_EXE_LINKER_FLAGS="-Wl,-Map=$dir/edgetel-agent.map")
  fi
  say "building $side ($(git -C "$repo" log -1 --format=%h "$rev")) $link"
  # The static link warns about dlopen/getaddrinfo (cmake/EtStatic.cmake
  # says why): the log is shown only when the build fails.
  cmake -S "$src" -B "$dir" "${args[@]}" >"$work/build-$side-$link.log" 2>&1 &&
    cmake --build "$dir" -j "$jobs" --target edgetel-agent >>"$work/build-$side-$link.log" 2>&1
}

# text of a file as size(1) counts it
text_of() { size "$1" | awk 'NR == 2 { print $1 }'; }

# measure KEY BINARY: sizes of one agent into the m[] table.
declare -A m
measure() {
  local key=$1 bin=$2 stripped=$work/$1.stripped text data bss
  strip -o "$stripped" "$bin"
  m[$key.file]=$(stat -c %s "$stripped")
  read -r text data bss _ < <(size "$stripped" | tail -n1)
  m[$key.text]=$text m[$key.data]=$data m[$key.bss]=$bss
}

# measure_libs KEY BINARY: the shared libraries it loads, their text, and
# Mbed TLS's part of it.
measure_libs() {
  local key=$1 bin=$2 lib real t n=0 all=0 mbed=0 mbed_file=0 names=()
  while read -r lib; do
    real=$(readlink -f "$lib")
    t=$(text_of "$real")
    n=$((n + 1)) all=$((all + t))
    if [[ ${lib##*/} == libmbed* ]]; then
      mbed=$((mbed + t)) mbed_file=$((mbed_file + $(stat -c %s "$real")))
      names+=("${lib##*/}")
    fi
    printf '%s %s\n' "$t" "$real" >>"$work/$key.libs"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  m[$key.nlibs]=$n m[$key.libtext]=$all m[$key.mbedtext]=$mbed m[$key.mbedfile]=$mbed_file
  m[$key.mbednames]=${names[*]:-none}
}

# hex(s): the value of a hex string with or without 0x (POSIX awk, e.g. mawk,
# has no strtonum).
hexfn='function hex(s,  i, v) { sub(/^0x/, "", s); s = tolower(s); v = 0
  for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
  return v }'

# mbed_from_map MAP: bytes of code+rodata, data, bss the link took from
# libmbed*.a, from the memory map part of a GNU ld map (a section name too
# long for its column puts the address and size on the next line).
mbed_from_map() {
  awk "$hexfn"'
    /^Linker script and memory map/ { on = 1; next }
    !on { next }
    function take(name, size, file) {
      if (file !~ /libmbed(crypto|x509|tls)\.a\(/) return
      if (name ~ /^\.(bss|tbss)/ || name == "COMMON") bss += hex(size)
      else if (name ~ /^\.(data|tdata|init_array|fini_array)/) data += hex(size)
      else if (name ~ /^\.(text|rodata|eh_frame|gcc_except_table)/) text += hex(size)
    }
    /^ [.A-Z][^ ]*$/ { pending = $1; next }
    pending != "" && /^ +0x[0-9a-f]+ +0x[0-9a-f]+ / { take(pending, $2, $3); pending = ""; next }
    /^ [.A-Z][^ ]* +0x[0-9a-f]+ +0x[0-9a-f]+ / { take($1, $3, $4) }
    { pending = "" }
    END { printf "%d %d %d\n", text, data, bss }
  ' "$1"
}

# ---- build -----------------------------------------------------------------
links=(dynamic)
[[ $want_static == 0 ]] || links+=(static)
for side in before after; do
  rev=$before
  [[ $side == after ]] && rev=$after
  for link in "${links[@]}"; do
    if build "$side" "$rev" "$link"; then
      m[$side-$link.built]=1
    else
      tail -n 20 "$work/build-$side-$link.log" >&2
      [[ $link == dynamic ]] && die "the $side agent ($rev) does not build"
      say "the static $side agent does not build here: static rows left out"
    fi
  done
done
built_links=(dynamic)
[[ ${m[before-static.built]:-} && ${m[after-static.built]:-} ]] && built_links+=(static)

for side in before after; do
  for link in "${built_links[@]}"; do
    measure "$side-$link" "$work/build-$side-$link/agent/edgetel-agent"
  done
  measure_libs "$side-dynamic" "$work/build-$side-dynamic/agent/edgetel-agent"
  if [[ " ${built_links[*]} " == *" static "* ]]; then
    read -r "m[$side-static.mbedtext]" "m[$side-static.mbeddata]" "m[$side-static.mbedbss]" \
      < <(mbed_from_map "$work/build-$side-static/edgetel-agent.map")
    # Cross-check: the sizes nm gives the mbedtls_* symbols (public
    # functions and tables only; static helpers are not named mbedtls_).
    m[$side-static.mbedsyms]=$(nm --size-sort -S "$work/build-$side-static/agent/edgetel-agent" |
      awk "$hexfn"'$4 ~ /^mbedtls_/ { s += hex($2) } END { printf "%d\n", s }')
  fi
done

# ---- run -------------------------------------------------------------------
# One P-256 operator key, in the PEM form edgetelctl keys init writes.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/operator.key" 2>/dev/null
openssl ec -in "$work/operator.key" -pubout -out "$work/operator.pub" 2>/dev/null

# conf NAME AGENT_LINES BINARY: $work/NAME.conf, data dir $work/NAME.data,
# checked with BINARY --check.  The system set is named collector by
# collector (any [collector] section turns the implicit one off), as far as
# BINARY has the drivers, as the agent itself does for the implicit set.
conf() {
  local name=$1 extra=$2 bin=$3 drivers c
  mkdir -p "$work/$name.data"
  drivers=$("$bin" --list-drivers 2>/dev/null | awk -F: '/^[a-z0-9_]+: / { print $1 }')
  {
    printf '[agent]\ndevice_id = footprint-%s\ndata_dir = %s\nlog_level = warn\n%s\n' \
      "$name" "$work/$name.data" "$extra"
    for c in cpu memory disk diskio net load uptime procs thermal throttle self; do
      if grep -qx "$c" <<<"$drivers"; then
        printf '[collector %s]\ntype = %s\ninterval = 1s\n' "$c" "$c"
      fi
    done
    printf '[collector sim]\ntype = sim\ninterval = 1s\n'
  } >"$work/$name.conf"
  "$bin" --config "$work/$name.conf" --check >"$work/$name.check" 2>&1 ||
    die "$name: the agent refuses its config: $(tail -n 3 "$work/$name.check")"
}

runs=()
for link in "${built_links[@]}"; do
  runs+=("before-$link" "after-$link" "after-$link-keys")
done
declare -A pid_of
for run in "${runs[@]}"; do
  side=${run%%-*} link=${run#*-} link=${link%-keys} extra=
  [[ $run == *-keys ]] && extra="trusted_keys = $work/operator.pub"
  bin=$work/build-$side-$link/agent/edgetel-agent
  conf "$run" "$extra" "$bin"
done
say "running ${#runs[@]} agents together for $seconds s"
for run in "${runs[@]}"; do
  side=${run%%-*} link=${run#*-} link=${link%-keys}
  "$work/build-$side-$link/agent/edgetel-agent" --config "$work/$run.conf" 2>"$work/$run.log" &
  pid_of[$run]=$!
  pids+=($!)
done

# Bounded: one sample a second for $seconds seconds.  Each round reads every
# agent, in turn, so whatever else the machine does hits them alike.
for ((i = 0; i < seconds; i++)); do
  sleep 1
  for run in "${runs[@]}"; do
    # VmRSS, RssAnon, VmHWM, and the resident pages of libmbed*.so mappings
    # (smaps: file pages and the copy-on-write ones of their data)
    awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^VmHWM:/ { h = $2 }
         /^[0-9a-f]+-[0-9a-f]+ / { in_mbed = ($6 ~ /\/libmbed[^\/]*$/) }
         in_mbed && /^Rss:/ { mb += $2 }
         END { if (r) print r, a, h, mb + 0 }' \
      "/proc/${pid_of[$run]}/status" "/proc/${pid_of[$run]}/smaps" 2>/dev/null >>"$work/$run.rss" || true
  done
done
for run in "${runs[@]}"; do
  kill -0 "${pid_of[$run]}" 2>/dev/null ||
    die "the $run agent stopped early: $(tail -n 5 "$work/$run.log")"
done
for run in "${runs[@]}"; do kill "${pid_of[$run]}"; done
for run in "${runs[@]}"; do wait "${pid_of[$run]}" 2>/dev/null || true; done
pids=()
median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) : 0 }'; }
for run in "${runs[@]}"; do
  m[$run.rss]=$(awk '{ print $1 }' "$work/$run.rss" | median)
  m[$run.anon]=$(awk '{ print $2 }' "$work/$run.rss" | median)
  m[$run.hwm]=$(awk '{ h = $3 } END { print h + 0 }' "$work/$run.rss")
  m[$run.mbedrss]=$(awk '{ print $4 }' "$work/$run.rss" | median)
  m[$run.samples]=$(wc -l <"$work/$run.rss")
  # The outbox grew, so the agents did collect (sealed batches are
  # committed within the durability window, 10 s by default).
  m[$run.outbox]=$(du -sk "$work/$run.data" | awk '{ print $1 }')
done

# ---- table -----------------------------------------------------------------
bh=$(git -C "$repo" log -1 --format=%h "$before")
ah=$(git -C "$repo" log -1 --format=%h "$after")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
row() { printf '%-40s %14s %14s %8s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"; }

printf '\nedgetel-agent footprint, Release, %s; BEFORE %s (%s), AFTER %s (%s)\n' \
  "$(uname -m)" "$bh" "$before_rev" "$ah" "$after_rev"
printf 'RSS: %s agents together for %d s, system set + sim every 1 s, no broker\n' \
  "${#runs[@]}" "$seconds"
printf '\n%-40s %14s %14s %8s\n' "" BEFORE AFTER ratio
for link in "${built_links[@]}"; do
  b=before-$link a=after-$link
  printf -- '-- %s agent\n' "$link"
  row "stripped file (bytes)" "${m[$b.file]}" "${m[$a.file]}"
  row "text (bytes)" "${m[$b.text]}" "${m[$a.text]}"
  row "data (bytes)" "${m[$b.data]}" "${m[$a.data]}"
  row "bss (bytes)" "${m[$b.bss]}" "${m[$a.bss]}"
  if [[ $link == dynamic ]]; then
    row "shared libraries loaded (ldd)" "${m[$b.nlibs]}" "${m[$a.nlibs]}"
    row "text of those libraries (bytes)" "${m[$b.libtext]}" "${m[$a.libtext]}"
    row "  of it Mbed TLS .so text (bytes)" "${m[$b.mbedtext]}" "${m[$a.mbedtext]}"
    row "  Mbed TLS .so files (bytes)" "${m[$b.mbedfile]}" "${m[$a.mbedfile]}"
  else
    row "  of it Mbed TLS code+rodata (map)" "${m[$b.mbedtext]}" "${m[$a.mbedtext]}"
    row "  of it Mbed TLS data+bss (map)" "$((m[$b.mbeddata] + m[$b.mbedbss]))" \
      "$((m[$a.mbeddata] + m[$a.mbedbss]))"
    row "  mbedtls_* symbols (nm, bytes)" "${m[$b.mbedsyms]}" "${m[$a.mbedsyms]}"
  fi
  row "VmRSS median (KiB)" "${m[$b.rss]}" "${m[$a.rss]}"
  row "RssAnon median (KiB)" "${m[$b.anon]}" "${m[$a.anon]}"
  row "VmHWM peak (KiB)" "${m[$b.hwm]}" "${m[$a.hwm]}"
  row "with trusted_keys: VmRSS median (KiB)" "${m[$b.rss]}" "${m[$a-keys.rss]}"
  row "with trusted_keys: RssAnon median (KiB)" "${m[$b.anon]}" "${m[$a-keys.anon]}"
  row "with trusted_keys: VmHWM peak (KiB)" "${m[$b.hwm]}" "${m[$a-keys.hwm]}"
  if [[ $link == dynamic ]]; then
    row "Mbed TLS .so resident (smaps, KiB)" "${m[$b.mbedrss]}" "${m[$a.mbedrss]}"
    row "  with trusted_keys (KiB)" "${m[$b.mbedrss]}" "${m[$a-keys.mbedrss]}"
  fi
done
printf '\nMbed TLS libraries the AFTER dynamic agent loads: %s\n' "${m[after-dynamic.mbednames]}"
for run in "${runs[@]}"; do
  printf '%-22s %3d samples, data dir %5d KiB\n' "$run" "${m[$run.samples]}" "${m[$run.outbox]}"
done
