#!/usr/bin/env bash
# Every benchmark, one after another, each printing its own table:
#   1. outbox append throughput and bytes written (bench/outbox_bench)
#   2. bytes written per sample at the default outbox settings (bench/wear.sh)
#   3. one collection round of the default system set, in instructions (callgrind)
#   4. drain of 1,000,000 backlogged samples over a loopback broker (bench/drain.sh),
#      with the dynamic and the static agent
#   5. agent binary sizes, native and cross, dynamic and static (bench/sizes.sh)
# Numbers belong to the machine they ran on; run it on a quiet one.
#   bench/run.sh [--quick]     (--quick: skip the sizes, which cross-build)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build=${ET_BENCH_BUILD:-$repo/build-bench}
quick=0
[[ ${1:-} == --quick ]] && quick=1

./scripts/deps.sh
# The benches also need valgrind (instruction counts), bc and python3.
if ! command -v valgrind >/dev/null || ! command -v bc >/dev/null || ! command -v python3 >/dev/null; then
  sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get install -y -q valgrind bc python3 >/dev/null
fi
cmake -S . -B "$build" -DET_BUILD_BENCH=ON -DET_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
static_build=$repo/build-bench-static
cmake -S . -B "$static_build" -DET_STATIC=ON -DET_BUILD_TESTS=OFF -DET_BUILD_CLOUD=OFF \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$static_build" -j "$(nproc)" --target edgetel-agent >/dev/null 2>&1

echo "== 1. outbox append and writes (target: >= 1,000,000 samples/s in batches)"
(cd "$build" && ./bench/outbox_bench)

echo
echo "== 2. bytes written per sample at default settings (target: <= 3x encoded)"
ET_BENCH_BUILD=$build ./bench/wear.sh 60 100ms

echo
echo "== 3. one collection round of the default system set (target: <= 2,000 instructions a value"
echo "      for the agent's whole path: collection, batcher, encoding, outbox)"
rounds=100
values=$("$build/bench/collect_bench" "$rounds" | sed -n 's/.*values_per_round \([0-9]*\).*/\1/p')
ir=$(valgrind --tool=callgrind --toggle-collect=bench_round --callgrind-out-file=/dev/null \
       "$build/bench/collect_bench" "$rounds" 2>&1 | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
outbox_dir=$(mktemp -d)
ir_path=$(valgrind --tool=callgrind --toggle-collect=bench_round --callgrind-out-file=/dev/null \
       "$build/bench/collect_bench" "$rounds" --batch "$outbox_dir/o" 2>&1 |
       sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
rm -rf "$outbox_dir"
printf '%-40s %s\n' "values per round" "$values"
printf '%-40s %d\n' "instructions per round (collection)" "$((ir / rounds))"
printf '%-40s %d\n' "instructions per value (collection)" "$((ir / rounds / values))"
printf '%-40s %d\n' "instructions per value (whole path)" "$((ir_path / rounds / values))"
echo "(bench/compare.sh runs the agents beside collectd: bytes, CPU, RSS and PSS per value)"

echo
echo "== 4. drain 1,000,000 backlogged samples (target: <= 10 s, agent RSS <= 8 MB)"
echo "-- dynamic agent"
ET_BENCH_BUILD=$build ./bench/drain.sh 1000000 1000
echo "-- static agent"
ET_BENCH_BUILD=$build ET_BENCH_AGENT=$static_build/agent/edgetel-agent ./bench/drain.sh 1000000 1000
echo "-- dynamic agent, batches of 100 samples"
ET_BENCH_BUILD=$build ./bench/drain.sh 1000000 100

if ((quick == 0)); then
  echo
  echo "== 5. agent sizes, stripped"
  ./bench/sizes.sh
fi
