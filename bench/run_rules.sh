#!/usr/bin/env bash
# MosaicFS rule-engine benchmarks (issue 5), in one invocation:
#
#   readdir.*     `mosaicfs-bench readdir`: a virtual directory with 10 mount sources (8
#                 prefix_replace with glob + size steps, 2 flatten with a glob, an enforced parent
#                 exclusion) listed through agent_core::vtree over DOCS generated file documents:
#                 p50/p99 uncached (RUNS_READDIR listings) and from the readdir cache
#   criterion     `cargo bench --bench rules`: label lookup and effective label set per file
#                 (100,000 assignments, 1,000 rules), one file through a pipeline (glob, regex,
#                 six steps), LabelCache::build from a store with 100,000 assignments and 1,000 rules
#
# Peer: none is run here; TMSU users report ~35 s per `ls` of a tag query at 22K files (published).
# usage: bench/run_rules.sh
# knobs: DOCS=500000 RUNS_READDIR=200 BENCH SHARED_BENCH MOSAICFS_BENCH_BIN CARGO_TARGET_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

DOCS=${DOCS:-500000}
RUNS_READDIR=${RUNS_READDIR:-200}
DB=$BENCH/rules-source-${DOCS}.db
OUT=$RES/rules-$(date -u +%Y%m%d).txt

build_mosaicfs_bench

main() {
  machine_block rules
  echo "# docs: $DOCS; readdir runs: $RUNS_READDIR"
  context rules
  if [ ! -f "$DB.ok" ]; then
    rm -f "$DB" "$DB-wal" "$DB-shm"
    "$MOSAICFS_BENCH" bulk-insert --db "$DB" --docs "$DOCS" --batch 50000 --runs 1 --keep \
      --name rules.source >/dev/null 2>&1
    touch "$DB.ok"
  fi
  "$MOSAICFS_BENCH" readdir --db "$DB" --runs "$RUNS_READDIR"
  (cd "$REPO" && CARGO_TARGET_DIR=$OUR_TARGET cargo bench -q -p mosaicfs-bench --bench rules 2>/dev/null) |
    awk '/time:/ { n = ($1 == "time:") ? prev : $1; match($0, /\[[^]]*\]/);
                   split(substr($0, RSTART + 1, RLENGTH - 2), a, " ");
                   print "criterion." n ": " a[3] " " a[4]; next }
         { prev = $1 }'
  context rules_end
}

main | tee -a "$OUT"
echo "# results appended to $OUT" >&2
