#!/usr/bin/env bash
# A cold indexed SQLite query through another machine's mount (issue 17, item 3), next to rclone
# in the same invocation. The database: bench/make_sqlite_db.py (seeded, ~75 MB, 4 KiB pages,
# journal_mode=DELETE) alone in $BENCH/srv-sqlite. The query of run i (seeded range, ~300 rows
# through the index t_k, each in its own page of the table):
#   sqlite3 'file:PATH?immutable=1' "SELECT count(*), sum(x) FROM t WHERE k BETWEEN a AND b"
# Every run is cold: drop_caches, a fresh mount with an empty cache; its answer is checked against
# the one computed from the seed.
#
#   sqlite_remote.asked.*               bytes the reader asked for: the sum of sqlite3's pread64
#                                       sizes on the database (strace, same query on the source)
#   sqlite_remote.local.cold_query      the query on the source itself after drop_caches (the limit)
#   sqlite_remote.rclone.cold_query     through `rclone mount :http: --vfs-cache-mode full` of
#                                       `rclone serve http` over TLS (as run_remote.sh)
#   sqlite_remote.rclone.fetched        what rclone's server wrote meanwhile (/proc/PID/io wchar:
#                                       bodies, HTTP and TLS), counted when the mount is gone
#   sqlite_remote.mosaicfs.cold_query   through agent B's mount of agent A's directory
#   sqlite_remote.mosaicfs.fetched      B's own counters: fetched_range_bytes + fetched_whole_bytes
#                                       (bodies only), from its first status written after the query
#   sqlite_remote.mosaicfs.ranges       B's fetched_ranges: how many range requests
#   sqlite_remote.mosaicfs.sent         A's transfer sent_bytes over the run (cross-check)
#   sqlite_remote.<peer>.lo_tx          bytes over loopback meanwhile (everything: TLS, sync, hub)
#   sqlite_remote.<peer>.fetched_over_asked   median of the per-run ratios (target for ours: <= 4)
#   sqlite_remote.ratio.mosaicfs_over_rclone  median query time, ours over rclone's (< 1: faster)
#
# usage: bench/run_sqlite_remote.sh     (root: FUSE mounts, drop_caches)
# knobs: RUNS=5 PORT BENCH SHARED_BENCH MOSAICFS_BIN MOSAICFS_BENCH_BIN CARGO_TARGET_DIR
#        B_LOG (agent B's MOSAICFS_LOG filter, default warn)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"
# shellcheck source-path=SCRIPTDIR source=remote_common.sh
. "$HERE/remote_common.sh"

need sqlite3
need strace
need rclone
need fusermount3 fuse3
need curl
need openssl
need python3

build_mosaicfs
build_mosaicfs_bench
OUT=$RES/sqlite-remote-$(date -u +%Y%m%d).txt
SRV=$BENCH/srv-sqlite
NAME=bench.db
MP_R=$BENCH/mnt/rclone-sqlite
MP_M=$BENCH/mnt/mosaicfs-sqlite
CACHE_R=$BENCH/rclone-cache-sqlite
MAKE_DB=$HERE/make_sqlite_db.py

mkdir -p "$SRV"
# The database is made once per version of the script that makes it.
STAMP=$SRV/.made-by-$(sha256sum "$MAKE_DB" | cut -c1-16)
if [ ! -f "$STAMP" ] || [ ! -f "$SRV/$NAME" ]; then
  rm -f "$SRV"/.made-by-* "$SRV/$NAME"
  python3 "$MAKE_DB" "$SRV/$NAME"
  touch "$STAMP"
fi
DB_BYTES=$(stat -c %s "$SRV/$NAME")

median_of() { python3 -c "import statistics,sys; print(int(statistics.median(float(x) for x in open(sys.argv[1]).read().split())))" "$RES/$1.times"; }
median_ratio() {   # median_ratio NUM_NAME DEN_NAME: median of the per-run ratios
  python3 -c "
import statistics, sys
a = [float(x) for x in open(sys.argv[1]).read().split()]
b = [float(x) for x in open(sys.argv[2]).read().split()]
print('%.2f' % statistics.median(x / y for x, y in zip(a, b)))" "$RES/$1.times" "$RES/$2.times"
}
cold() { drop_caches; sqlite3 :memory: 'SELECT 1' >/dev/null; }   # only the data is cold
wchar() { awk '$1 == "wchar:" {print $2}' "/proc/$1/io"; }
# run_query LABEL PATH RUN: times the query of RUN on PATH, checks its answer
run_query() {
  local t0 t1 got
  t0=$(now)
  got=$(sqlite3 "file:$2?immutable=1" "${QUERY[$3]}") || got="error $?"
  t1=$(now)
  [ "$got" = "${EXPECT[$3]}" ] || emit "sqlite_remote.$1.answer_run$3" 0 "MISMATCH ($got, expected ${EXPECT[$3]})"
  record "sqlite_remote.$1.cold_query" "$(elapsed "$t0" "$t1")"
}

{
trap cleanup EXIT   # the pipeline's subshell does not inherit lib.sh's trap
machine_block sqlite_remote
context sqlite_remote
emit sqlite_remote.db_bytes "$DB_BYTES" bytes
emit sqlite_remote.sqlite3_version "$(sqlite3 --version | cut -d' ' -f1)" ""

# ---------- the queries, their answers and what each asks for ----------
declare -a QUERY EXPECT
reset_times sqlite_remote.asked; reset_times sqlite_remote.preads
for i in $(seq 1 "$RUNS"); do
  QUERY[i]=$(python3 "$MAKE_DB" --query "$i")
  EXPECT[i]=$(python3 "$MAKE_DB" --expect "$i")
  strace -y -e trace=pread64 -o "$RES/sqlite-remote-strace.txt" \
    sqlite3 "file:$SRV/$NAME?immutable=1" "${QUERY[i]}" >/dev/null
  read -r n asked < <(awk -v p="<$SRV/$NAME>" 'index($0, p) {n++; s += $NF} END {print n + 0, s + 0}' \
    "$RES/sqlite-remote-strace.txt")
  record sqlite_remote.asked "$asked"; record sqlite_remote.preads "$n"
done
emit sqlite_remote.query_run1 "${QUERY[1]}" ""
emit sqlite_remote.rows_run1 "${EXPECT[1]%%|*}" rows
emit sqlite_remote.preads.median "$(median_of sqlite_remote.preads)" preads
emit sqlite_remote.asked.median "$(median_of sqlite_remote.asked)" bytes

# ---------- the limit: the source itself ----------
reset_times sqlite_remote.local.cold_query
for i in $(seq 1 "$RUNS"); do cold; run_query local "$SRV/$NAME" "$i"; done
summarize sqlite_remote.local.cold_query --ms

# ================= rclone over https =================
rclone_serve "$SRV"
for n in cold_query fetched lo_tx; do reset_times "sqlite_remote.rclone.$n"; done
for i in $(seq 1 "$RUNS"); do
  cold
  mount_rclone "$MP_R" "$CACHE_R"
  stat "$MP_R/$NAME" >/dev/null
  w0=$(wchar "$SPID"); l0=$(lo_tx)
  run_query rclone "$MP_R/$NAME" "$i"
  fuse_umount "$MP_R" "$RPID"   # what it still fetches in the background counts too
  w1=$(wchar "$SPID"); l1=$(lo_tx)
  record sqlite_remote.rclone.fetched "$((w1 - w0))"; record sqlite_remote.rclone.lo_tx "$((l1 - l0))"
done
summarize sqlite_remote.rclone.cold_query --ms
emit sqlite_remote.rclone.fetched.median "$(median_of sqlite_remote.rclone.fetched)" bytes
emit sqlite_remote.rclone.lo_tx.median "$(median_of sqlite_remote.rclone.lo_tx)" bytes
emit sqlite_remote.rclone.fetched_over_asked "$(median_ratio sqlite_remote.rclone.fetched sqlite_remote.asked)" x
stop_bg "$SPID"
rm -rf "$CACHE_R"

# ================= mosaicfs: hub + A serving, B mounting =================
pair_start "$SRV" "$MP_M"
for n in cold_query fetched ranges sent lo_tx; do reset_times "sqlite_remote.mosaicfs.$n"; done
a_sent() { python3 "$HERE/status_counters.py" "$A_DB" "$A_NODE" transfer sent_bytes --after "$1"; }
for i in $(seq 1 "$RUNS"); do
  cold
  b_start "$NAME"
  s0=$(a_sent "$(now)"); l0=$(lo_tx)
  run_query mosaicfs "$MP_M/remote/$NAME" "$i"
  done_at=$(now)
  { read -r ranges; read -r range_bytes; read -r whole_bytes; } < <(python3 "$HERE/status_counters.py" \
    "$B_DB" "$B_NODE" cache fetched_ranges fetched_range_bytes fetched_whole_bytes --after "$done_at")
  s1=$(a_sent "$done_at"); l1=$(lo_tx)
  b_stop
  record sqlite_remote.mosaicfs.fetched "$((range_bytes + whole_bytes))"
  record sqlite_remote.mosaicfs.ranges "$ranges"
  record sqlite_remote.mosaicfs.sent "$((s1 - s0))"; record sqlite_remote.mosaicfs.lo_tx "$((l1 - l0))"
done
stop_bg "$PAIR"
summarize sqlite_remote.mosaicfs.cold_query --ms
for n in fetched sent lo_tx; do emit "sqlite_remote.mosaicfs.$n.median" "$(median_of "sqlite_remote.mosaicfs.$n")" bytes; done
emit sqlite_remote.mosaicfs.ranges.median "$(median_of sqlite_remote.mosaicfs.ranges)" requests
emit sqlite_remote.mosaicfs.fetched_over_asked "$(median_ratio sqlite_remote.mosaicfs.fetched sqlite_remote.asked)" x

ratio sqlite_remote.ratio.mosaicfs_over_rclone sqlite_remote.mosaicfs.cold_query sqlite_remote.rclone.cold_query
context sqlite_remote_end
} 2>&1 | tee "$OUT"
echo "results: $OUT" >&2
