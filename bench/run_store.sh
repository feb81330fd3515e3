#!/usr/bin/env bash
# MosaicFS store bulk-insert benchmark, next to the naive SQLite ingest peer, in one invocation.
#
#   store.bulk_insert.*      `mosaicfs-bench bulk-insert`: DOCS generated file documents through
#                            Store::put_many, BATCH per call (one transaction each), fresh store
#                            every run; `insert` = the put loop, `insert_close` = + Store::close
#   store.naive_ingest_rs.*  the naive ingest peer (rusqlite, bundled SQLite like ours): DOCS
#                            JSON docs, random UUID keys, 200 per transaction, WAL, NORMAL
#   store.ratio.*            ours over the peer, same-run medians (rates: > 1 means faster)
#
# usage: bench/run_store.sh
# knobs: DOCS=500000 BATCH=50000 STORE_RUNS=3 BENCH SHARED_BENCH MOSAICFS_BENCH_BIN
#        NAIVE_INGEST_BIN CARGO_TARGET_DIR (see bench/common.sh)
# Output: `name: value unit` lines on stdout, appended with a dated machine block to
# $BENCH/results/store-YYYYMMDD.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

DOCS=${DOCS:-500000}
BATCH=${BATCH:-50000}   # bulk loads (restore, replica cold start) write big transactions: see RESULTS.md
STORE_RUNS=${STORE_RUNS:-3}
DB=$BENCH/store-bulk.db
NAIVE_DB=$BENCH/store-naive-ingest.db
OUT=$RES/store-$(date -u +%Y%m%d).txt

# Builds first, so that their output stays out of the results.
build_mosaicfs_bench
build_naive_ingest

main() {
  machine_block store
  echo "# runs: $STORE_RUNS; docs: $DOCS; batch: $BATCH (peer: 200)"
  context store

  "$MOSAICFS_BENCH" bulk-insert --db "$DB" --docs "$DOCS" --batch "$BATCH" \
    --runs "$STORE_RUNS" --name store.bulk_insert >"$RES/store.bulk_insert.out"
  cat "$RES/store.bulk_insert.out"

  "$NAIVE_INGEST" "$NAIVE_DB" --docs "$DOCS" --batch 200 --runs "$STORE_RUNS" --sync NORMAL \
    --name store.naive_ingest_rs >"$RES/store.naive_ingest_rs.out"
  cat "$RES/store.naive_ingest_rs.out"

  local ours=$RES/store.bulk_insert.out peer=$RES/store.naive_ingest_rs.out what
  for what in insert insert_close; do
    emit "store.ratio.$what.rate_over_naive_ingest" \
      "$(div "$(metric "$ours" "store.bulk_insert.$what.rate.median")" \
        "$(metric "$peer" "store.naive_ingest_rs.$what.rate.median")")" x
  done
  emit store.ratio.db_bytes_over_naive_ingest \
    "$(div "$(metric "$ours" store.bulk_insert.db_bytes)" "$(metric "$peer" store.naive_ingest_rs.db_bytes)")" x
  context store_end
}

main | tee -a "$OUT"
echo "# results appended to $OUT" >&2
