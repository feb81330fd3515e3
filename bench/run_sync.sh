#!/usr/bin/env bash
# MosaicFS replication benchmarks with real processes (a `mosaicfs server` hub, agents joined
# with `mosaicfs agent init`, each behind its own loopback proxy), next to their limit: the
# store's own bulk-insert rate of the same documents, in the same run.
#
#   sync.bulk_insert.*   `mosaicfs-bench bulk-insert`: DOCS generated file documents into a fresh
#                        store, the limit a replica cold start is compared with
#   sync.seed_hub.*      the same documents pushed into a hub store (apply_pushed: the hub's path)
#   sync.cold.*          a fresh agent pulls them all from the hub over HTTPS (long-poll feed,
#                        batch + checkpoint per transaction): seconds and docs/s
#   sync.ratio.cold_over_bulk_insert   cold-sync rate over the bulk-insert rate
#   sync.steady.*        three agents, default timers: FILES new files on agent A at RATE/s,
#                        per-file time until agent B's replica lists it (p50/p99/max)
#   sync.idle.*          hub (and agent A) CPU % and RSS while the three agents sit idle
#
# usage: bench/run_sync.sh
# knobs: DOCS=500000 FILES=1000 RATE=100 IDLE_SECS=60 BENCH SHARED_BENCH MOSAICFS_BIN
#        MOSAICFS_BENCH_BIN CARGO_TARGET_DIR (see bench/common.sh)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

DOCS=${DOCS:-500000}
FILES=${FILES:-1000}
RATE=${RATE:-100}
IDLE_SECS=${IDLE_SECS:-60}
DB=$BENCH/sync-source.db
HUB=$BENCH/sync-hub
OUT=$RES/sync-$(date -u +%Y%m%d).txt

build_mosaicfs
build_mosaicfs_bench
export MOSAICFS_BIN=$MOSAICFS

main() {
  machine_block sync
  echo "# docs: $DOCS; steady: $FILES files at $RATE/s; idle: $IDLE_SECS s; mosaicfs: $MOSAICFS"
  context sync

  rm -f "$DB" "$DB-wal" "$DB-shm"
  "$MOSAICFS_BENCH" bulk-insert --db "$DB" --docs "$DOCS" --batch 50000 --runs 1 --keep \
    --name sync.bulk_insert | tee "$RES/sync.bulk_insert.out"
  rm -rf "$HUB"
  mkdir -p "$HUB"
  "$MOSAICFS_BENCH" seed-hub --from "$DB" --hub "$HUB/hub.db" | sed 's/^/sync./'
  "$MOSAICFS_BENCH" sync-cold --hub-data "$HUB" | tee "$RES/sync.cold.out"
  emit sync.ratio.cold_over_bulk_insert \
    "$(div "$(metric "$RES/sync.cold.out" sync.cold.rate)" \
      "$(metric "$RES/sync.bulk_insert.out" sync.bulk_insert.insert.rate.median)")" x

  "$MOSAICFS_BENCH" sync-steady --files "$FILES" --rate "$RATE" --idle-secs "$IDLE_SECS"
  context sync_end
}

main | tee -a "$OUT"
echo "# results appended to $OUT" >&2
