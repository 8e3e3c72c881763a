#!/usr/bin/env bash
# bench/web_page.sh [HOURS]: how fast the device page of a device with a
# day of 1 s data loads. Fills a store with web_fill (one device, three
# metrics every second for HOURS, default 24: 259,200 samples, less an
# offline hour), starts edgetel-aggregator on it with [http] (its MQTT
# side points at a closed port: no broker is needed to serve the view),
# then times
#   - each API call the device page makes (device, then the series of
#     1,000 points over the whole day), median of 20, first call apart;
#   - the page in headless Chromium: the process's wall time, the same for
#     an empty page (Chromium's own start), and the page's own
#     performance.now() at its first plot (data-loaded-ms).
# Needs a build with tests (build/tests/web_fill), python3 and chromium.
# Everything lives in a temporary folder, removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
hours=${1:-24}
work=$(mktemp -d "${TMPDIR:-/tmp}/edgetel-web-bench-XXXXXX")
agg_pid=
cleanup() {
  [[ -n "$agg_pid" ]] && kill "$agg_pid" 2>/dev/null && wait "$agg_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

for f in "$build/tests/web_fill" "$build/aggregator/edgetel-aggregator"; do
  [[ -x "$f" ]] || { echo "web_page: $f missing: build with -DET_BUILD_TESTS=ON" >&2; exit 1; }
done
command -v chromium >/dev/null || { echo "web_page: chromium missing (scripts/deps.sh)" >&2; exit 1; }

start=$(date +%s.%N)
"$build/tests/web_fill" "$work/store.db" "$hours" 1000 3
echo "web_page: store filled in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s," \
  "$(du -h "$work/store.db" | cut -f1)"

cat >"$work/aggregator.conf" <<CONF
[aggregator]
log_level = info
[mqtt]
host = 127.0.0.1
port = 1
insecure = true
[store]
path = $work/store.db
[http]
enabled = true
port = 0
CONF
"$build/aggregator/edgetel-aggregator" --config "$work/aggregator.conf" 2>"$work/agg.log" &
agg_pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's|.*serving the fleet view on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/agg.log")
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "${port:-}" ]] || { echo "web_page: the aggregator did not serve; its log:" >&2; cat "$work/agg.log" >&2; exit 1; }

now=$(date +%s%3N)
from=$((now - hours * 3600000))
base="http://127.0.0.1:$port"
python3 - "$base" "$from" "$((now + 1))" <<'PY'
import statistics, sys, time, urllib.request
base, frm, to = sys.argv[1], sys.argv[2], sys.argv[3]
calls = [
    ("fleet", "/api/v1/fleet"),
    ("device", "/api/v1/device?id=bench-device"),
    ("series m0, 1000 points", f"/api/v1/series?device=bench-device&metric=m0&from={frm}&to={to}&points=1000"),
    ("series m0, 5000 points", f"/api/v1/series?device=bench-device&metric=m0&from={frm}&to={to}&points=5000"),
    ("series m0, CSV", f"/api/v1/series?device=bench-device&metric=m0&from={frm}&to={to}&points=1000&format=csv"),
]
print(f"{'call':28} {'first ms':>9} {'median ms':>10} {'max ms':>8} {'bytes':>8}")
for name, path in calls:
    times, size = [], 0
    for _ in range(21):
        t = time.perf_counter()
        with urllib.request.urlopen(base + path) as r:
            size = len(r.read())
        times.append((time.perf_counter() - t) * 1000)
    print(f"{name:28} {times[0]:9.1f} {statistics.median(times[1:]):10.1f} {max(times[1:]):8.1f} {size:8}")
PY

chrome=(chromium --headless --disable-gpu --no-sandbox --virtual-time-budget=10000
        "--user-data-dir=$work/chromium")
page="$base/device?id=bench-device&metric=m0&range=86400000"
"${chrome[@]}" --dump-dom "$base/static/style.css" >/dev/null 2>&1   # a warm profile
blank=() full=() loaded=()
for _ in 1 2 3 4 5; do
  t=$(date +%s%N)
  "${chrome[@]}" --dump-dom "about:blank" >/dev/null 2>&1
  blank+=($((($(date +%s%N) - t) / 1000000)))
  t=$(date +%s%N)
  "${chrome[@]}" --dump-dom "$page" >"$work/page.html" 2>/dev/null
  full+=($((($(date +%s%N) - t) / 1000000)))
  loaded+=("$(grep -o 'data-loaded-ms="[0-9]*"' "$work/page.html" | grep -o '[0-9]*' || echo '?')")
done
points=$(grep -o 'data-points="[0-9]*"' "$work/page.html" | grep -o '[0-9]*' || echo '?')
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
echo
echo "headless Chromium, device page, $points points plotted (5 runs, median):"
echo "  whole process          $(median "${full[@]}") ms"
echo "  about:blank process    $(median "${blank[@]}") ms   (Chromium's own start and exit)"
echo "  the page's own clock   $(median "${loaded[@]}") ms   (navigation to first plot, performance.now())"
