#!/usr/bin/env bash
# MosaicFS watcher latency: time from writing a new file to its document in the index, through
# the real indexing worker (inotify watches, 500 ms debounce). The limit is the debounce itself;
# the target is under 1 s.
# usage: bench/run_watch.sh        knobs: FILES=20 DEBOUNCE_MS=500 BENCH MOSAICFS_BENCH_BIN
# Output: `name: value unit` lines, appended to $BENCH/results/watch-YYYYMMDD.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

FILES=${FILES:-20}
DEBOUNCE_MS=${DEBOUNCE_MS:-500}
OUT=$RES/watch-$(date -u +%Y%m%d).txt
build_mosaicfs_bench

{
  machine_block watch
  "$MOSAICFS_BENCH" watch-latency --dir "$BENCH/watch-latency" --files "$FILES" --debounce-ms "$DEBOUNCE_MS"
} | tee -a "$OUT"
echo "# results appended to $OUT"
