#!/usr/bin/env bash
# MosaicFS crawl benchmark, next to its limit and its peers, in one invocation.
#
# Tree: $SHARED_BENCH/gen_tree.py N (default 100,000 files, ~1,000 dirs), generated once as
# $BENCH/tree$N and shared with the anchor benchmarks. Warm caches throughout (no cache drop).
#   crawl.find_stat.warm          find -printf '%s %T@ %p\n': readdir + stat, the crawler's limit
#   crawl.updatedb_full.warm      plocate updatedb, fresh database: the indexer peer
#   crawl.updatedb_nochange.warm  plocate updatedb over its own database, unchanged tree
#   crawl.naive_ingest_rs.*       the naive SQLite ingest peer (rusqlite, bundled SQLite),
#                                 N JSON docs, 200 per transaction (its own output lines)
#   crawl.mosaicfs.first.warm     `mosaicfs index --db DB crawl TREE` into a fresh store
#   crawl.mosaicfs.first.peak_rss peak RSS of one first crawl (/usr/bin/time %M)
#   crawl.mosaicfs.recrawl.warm   the same command again over the unchanged tree (same store);
#                                 checked once with --json to report 0 added/changed/deleted
#   crawl.ratio.*                 ratios of same-run medians (see bench/README.md)
#
# usage: bench/run_crawl.sh
# knobs: N=100000 RUNS=5 BENCH=${TMPDIR:-/tmp}/mosaicfs-bench SHARED_BENCH MOSAICFS_BIN
#        NAIVE_INGEST_BIN CARGO_TARGET_DIR (see bench/common.sh)
# Output: `name: value unit` lines on stdout, appended with a dated machine block to
# $BENCH/results/crawl-YYYYMMDD.txt; hyperfine JSON and logs in $BENCH/results/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

need hyperfine
need updatedb.plocate plocate
need python3
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time: apt-get install -y time" >&2; exit 2; }

N=${N:-100000}
TREE=$BENCH/tree$N
DB=$BENCH/crawl-mosaicfs.db
PDB=$BENCH/crawl-plocate.db
NAIVE_DB=$BENCH/crawl-naive-ingest.db
OUT=$RES/crawl-$(date -u +%Y%m%d).txt

if [ ! -f "$TREE.ok" ]; then
  echo "generating $N files in $TREE" >&2
  rm -rf "$TREE"
  python3 "$SHARED_BENCH/gen_tree.py" "$N" "$TREE" >"$TREE.ok.tmp"
  mv "$TREE.ok.tmp" "$TREE.ok"
fi
ENTRIES=$(find "$TREE" | wc -l)          # files + directories (incl. the root), as find counts
FILES=$(find "$TREE" -type f | wc -l)

# Builds first, so that their output stays out of the results.
build_mosaicfs
build_naive_ingest

T=$(q "$TREE")
FIND="find $T -printf '%s %T@ %p\n'"
UPD="updatedb.plocate -U $T -o $(q "$PDB") --prunepaths '' --prunefs '' --prune-bind-mounts no"
CRAWL="$(q "$MOSAICFS") index --db $(q "$DB") crawl $T"
RMDB="rm -f $(q "$DB") $(q "$DB-wal") $(q "$DB-shm")"

main() {
  machine_block crawl
  echo "# runs: $RUNS; tree: $TREE; mosaicfs: $MOSAICFS"
  emit crawl.tree.files "$FILES" files
  emit crawl.tree.entries "$ENTRIES" entries
  context crawl

  # (a) the walk's limit
  hf crawl.find_stat.warm --count "$ENTRIES" --unit entries/s -- \
    --runs "$RUNS" --warmup 1 "$FIND"

  # (b) the indexer peer
  hf crawl.updatedb_full.warm --count "$ENTRIES" --unit entries/s -- \
    --runs "$RUNS" --warmup 1 --prepare "rm -f $(q "$PDB")" "$UPD"
  hf crawl.updatedb_nochange.warm --count "$ENTRIES" --unit entries/s -- \
    --runs "$RUNS" --warmup 1 "$UPD"

  # (c) the naive SQLite write path, as many documents as the tree has files
  "$NAIVE_INGEST" "$NAIVE_DB" --docs "$N" --batch 200 --runs "$RUNS" --sync NORMAL \
    --name crawl.naive_ingest_rs >"$RES/crawl.naive_ingest_rs.out"
  cat "$RES/crawl.naive_ingest_rs.out"

  # (d) our first crawl, fresh store every run
  hf crawl.mosaicfs.first.warm --count "$ENTRIES" --unit entries/s -- \
    --runs "$RUNS" --warmup 1 --prepare "$RMDB" "$CRAWL"
  emit crawl.mosaicfs.first.files_rate.median \
    "$(div "$FILES" "$(med crawl.mosaicfs.first.warm)" %.0f)" files/s

  # (f) peak RSS of one first crawl; its summary must account for every file
  sh -c "$RMDB"
  if ! /usr/bin/time -f %M -o "$RES/crawl.mosaicfs.first.rss" \
    "$MOSAICFS" index --db "$DB" --json crawl "$TREE" \
    >"$RES/crawl.mosaicfs.first.summary.json" 2>"$RES/crawl.mosaicfs.first.log"; then
    cat "$RES/crawl.mosaicfs.first.log" >&2
    return 1
  fi
  check_json "$RES/crawl.mosaicfs.first.summary.json" added="$FILES" errors=0
  emit crawl.mosaicfs.first.peak_rss \
    "$(tail -n 1 "$RES/crawl.mosaicfs.first.rss" | awk '{printf "%.1f", $1 * 1024 / 1e6}')" MB

  # (e) re-crawl of the unchanged tree into the same store: nothing may change
  if ! "$MOSAICFS" index --db "$DB" --json crawl "$TREE" \
    >"$RES/crawl.mosaicfs.recrawl.summary.json" 2>"$RES/crawl.mosaicfs.recrawl.log"; then
    cat "$RES/crawl.mosaicfs.recrawl.log" >&2
    return 1
  fi
  check_json "$RES/crawl.mosaicfs.recrawl.summary.json" added=0 changed=0 deleted=0 errors=0
  hf crawl.mosaicfs.recrawl.warm --count "$ENTRIES" --unit entries/s -- \
    --runs "$RUNS" --warmup 1 "$CRAWL"
  emit crawl.mosaicfs.db_bytes "$(stat -c %s "$DB")" bytes
  emit crawl.plocate_db.bytes "$(stat -c %s "$PDB")" bytes

  # (g) ratios of same-run medians
  local ours naive
  ours=$(div "$FILES" "$(med crawl.mosaicfs.first.warm)")
  naive=$(metric "$RES/crawl.naive_ingest_rs.out" crawl.naive_ingest_rs.insert.rate.median)
  emit crawl.ratio.first_files_per_s_over_naive_ingest "$(div "$ours" "$naive")" x
  ratio crawl.ratio.recrawl_time_over_find_stat crawl.mosaicfs.recrawl.warm crawl.find_stat.warm
  ratio crawl.ratio.first_time_over_updatedb_full crawl.mosaicfs.first.warm crawl.updatedb_full.warm
  ratio crawl.ratio.recrawl_time_over_updatedb_nochange crawl.mosaicfs.recrawl.warm crawl.updatedb_nochange.warm
  context crawl_end
}

main | tee -a "$OUT"
rm -f "$DB" "$DB-wal" "$DB-shm" "$NAIVE_DB" "$NAIVE_DB-wal" "$NAIVE_DB-shm"
echo "# results appended to $OUT" >&2
