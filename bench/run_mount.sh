#!/usr/bin/env bash
# MosaicFS mount benchmarks (issue 6) next to their peers, in one invocation:
#
#   fuse_read.*        $SHARED_BENCH/run_fuse_read.sh: `dd bs=1M` of a 1 GiB file, warm and cold,
#                      direct / bindfs / rclone (:local:, no cache) / mosaicfs (its FUSE_MOUNT_CMD
#                      hook, bench/mount_tree.sh), then again with `[vfs] passthrough = false`
#                      (label mosaicfs_nopt: every read through our process)
#   readdir.*          `ls -f DIR | wc -l` of a 10,000-entry directory (gen_tree.py 10000 --dirs 0
#                      --zero --seed 7, as run_remote.sh): direct, bindfs, rclone's http mount
#                      (--vfs-cache-mode full, as run_remote.sh) and mosaicfs (a virtual directory
#                      mounting it); cold = the first listing after a fresh mount (RUNS mounts),
#                      warm = hyperfine
#   stat_all.*         `find DIR -mindepth 1 -printf '%s %T@\n' | wc -l` (readdir + stat of every
#                      entry) on the same four, warm
#   readiness.*        from starting `mosaicfs up` to the first successful `ls` of a virtual
#                      directory through the mount, with READY_N (500,000) files indexed (the
#                      search benchmark's tree, $BENCH/tree${READY_N}z)
#
# usage: bench/run_mount.sh [read] [readdir] [readiness]     (default: all three; root: FUSE
#        mounts, drop_caches)
# knobs: RUNS=5 READY_N=500000 PORT BENCH SHARED_BENCH MOSAICFS_BIN CARGO_TARGET_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

need hyperfine
need bindfs
need rclone
need fusermount3 fuse3
need curl
need python3

READY_N=${READY_N:-500000}
OUT=$RES/mount-$(date -u +%Y%m%d).txt
build_mosaicfs
export MOSAICFS

sequential_read() {
  FUSE_MOUNT_CMD="$HERE/mount_tree.sh {SRC} {MP}" FUSE_LABEL=mosaicfs FUSE_PATH=tree/file1024m.bin \
    bash "$SHARED_BENCH/run_fuse_read.sh"
  MOUNT_EXTRA="passthrough = false" FUSE_MOUNT_CMD="$HERE/mount_tree.sh {SRC} {MP}" FUSE_LABEL=mosaicfs_nopt \
    FUSE_PATH=tree/file1024m.bin bash "$SHARED_BENCH/run_fuse_read.sh" | grep -E 'mosaicfs_nopt|ctx'
}

ls_cmd() { echo "ls -f $(q "$1") | wc -l"; }
stat_cmd() { echo "find $(q "$1") -mindepth 1 -printf '%s %T@\n' | wc -l"; }

readdir() {
  local SRV=$BENCH/srv DIR
  mkdir -p "$SRV"
  if [ ! -f "$BENCH/srv-dir10k.ok" ]; then
    rm -rf "$SRV/dir10k"
    python3 "$SHARED_BENCH/gen_tree.py" 10000 "$SRV/dir10k" --dirs 0 --zero --seed 7 > "$BENCH/srv-dir10k.ok"
  fi
  DIR=$SRV/dir10k
  context readdir
  emit readdir.entries "$(ls -f "$DIR" | wc -l)" "entries (incl . ..)"
  hf readdir.direct.warm --ms -- --runs "$RUNS" --warmup 1 "$(ls_cmd "$DIR")"
  hf stat_all.direct.warm --ms -- --runs "$RUNS" --warmup 1 "$(stat_cmd "$DIR")"

  local MPB=$BENCH/mnt/bindfs-srv
  fuse_mount "$MPB" "$RES/bindfs-srv.log" bindfs -f "$SRV" "$MPB"
  local BP=$LAST_PID
  hf readdir.bindfs.warm --ms -- --runs "$RUNS" --warmup 1 "$(ls_cmd "$MPB/dir10k")"
  if [ "$CAN_DROP" = 1 ]; then
    hf readdir.bindfs.cold --ms -- --runs "$RUNS" --prepare "$DROP" "$(ls_cmd "$MPB/dir10k")"
  fi
  hf stat_all.bindfs.warm --ms -- --runs "$RUNS" --warmup 1 "$(stat_cmd "$MPB/dir10k")"
  fuse_umount "$MPB" "$BP"

  # rclone's http mount, as run_remote.sh mounts it.
  local URL=http://127.0.0.1:$PORT MPH=$BENCH/mnt/rclone-http CACHE=$BENCH/rclone-cache i t0 t1
  start_bg "$RES/serve-http.log" rclone serve http "$SRV" --addr "127.0.0.1:$PORT" --read-only
  local SPID=$LAST_PID
  wait_http "$URL/" "$SPID"
  reset_times readdir.rclone_http.cold
  for i in $(seq 1 "$RUNS"); do
    rm -rf "$CACHE"
    fuse_mount "$MPH" "$RES/rclone-http.log" rclone mount :http: "$MPH" --http-url "$URL/" \
      --vfs-cache-mode full --cache-dir "$CACHE" --read-only
    t0=$(now); ls -f "$MPH/dir10k" | wc -l >/dev/null; t1=$(now)
    record readdir.rclone_http.cold "$(elapsed "$t0" "$t1")"
    [ "$i" = "$RUNS" ] || fuse_umount "$MPH" "$LAST_PID"
  done
  local HP=$LAST_PID
  summarize readdir.rclone_http.cold --ms
  hf readdir.rclone_http.warm --ms -- --runs "$RUNS" --warmup 1 "$(ls_cmd "$MPH/dir10k")"
  hf stat_all.rclone_http.warm --ms -- --runs "$RUNS" --warmup 1 "$(stat_cmd "$MPH/dir10k")"
  fuse_umount "$MPH" "$HP"
  stop_bg "$SPID"

  # mosaicfs: /dir10k is a virtual directory mounting $DIR; each cold run is a fresh mount.
  local MPM=$BENCH/mnt/mosaicfs-srv DATA=$BENCH/mount-dir10k
  rm -rf "$DATA"
  reset_times readdir.mosaicfs.cold
  for i in $(seq 1 "$RUNS"); do
    fuse_mount "$MPM" "$RES/mosaicfs-srv.log" env MOUNT_DATA="$DATA" "$HERE/mount_tree.sh" "$DIR" "$MPM" dir10k
    wait_listing "$MPM"   # the root shows dir10k (dir10k itself is not listed before the measurement)
    t0=$(now); ls -f "$MPM/dir10k" | wc -l >/dev/null; t1=$(now)
    record readdir.mosaicfs.cold "$(elapsed "$t0" "$t1")"
    [ "$i" = "$RUNS" ] || fuse_umount "$MPM" "$LAST_PID"
  done
  local MP=$LAST_PID
  emit readdir.mosaicfs.count "$(ls -f "$MPM/dir10k" | wc -l)" "entries (incl . ..)"
  summarize readdir.mosaicfs.cold --ms
  hf readdir.mosaicfs.warm --ms -- --runs "$RUNS" --warmup 1 "$(ls_cmd "$MPM/dir10k")"
  hf stat_all.mosaicfs.warm --ms -- --runs "$RUNS" --warmup 1 "$(stat_cmd "$MPM/dir10k")"
  fuse_umount "$MPM" "$MP"
  # time ratios (1.0 = as fast as bindfs; the target is at most 1.5)
  ratio readdir.ratio.mosaicfs_time_over_bindfs.warm readdir.mosaicfs.warm readdir.bindfs.warm
  ratio stat_all.ratio.mosaicfs_time_over_bindfs.warm stat_all.mosaicfs.warm stat_all.bindfs.warm
}

# wait_listing DIR [SECONDS]: until DIR lists at least one entry (the mount is up with the tree).
wait_listing() {
  local i
  for i in $(seq 1 $((${2:-30} * 20))); do
    [ -n "$(ls -A "$1" 2>/dev/null | head -1)" ] && return 0
    sleep 0.05
  done
  echo "$1 never listed" >&2; return 1
}

readiness() {
  local TREE=$BENCH/tree${READY_N}z DATA=$BENCH/mount-ready MPR=$BENCH/mnt/mosaicfs-ready i t0 t1 P
  if [ ! -f "$TREE.ok" ]; then
    echo "generating $READY_N zero-byte files in $TREE" >&2
    rm -rf "$TREE"
    python3 "$SHARED_BENCH/gen_tree.py" "$READY_N" "$TREE" --zero >"$TREE.ok.tmp"
    mv "$TREE.ok.tmp" "$TREE.ok"
  fi
  context readiness
  if [ ! -f "$DATA/ready.ok" ]; then
    # Index the tree and define /tree once (the first start crawls it), then stop.
    rm -rf "$DATA"
    mkdir -p "$MPR"
    start_bg "$RES/mosaicfs-ready.log" env MOUNT_DATA="$DATA" "$HERE/mount_tree.sh" "$TREE" "$MPR"
    MOUNTS+=("$MPR")
    wait_listing "$MPR/tree" 1800
    fuse_umount "$MPR" "$LAST_PID"
    touch "$DATA/ready.ok"
  fi
  emit readiness.files "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM files WHERE status = 0").fetchone()[0])' "$DATA/data/agent.db")" files
  reset_times readiness.mosaicfs
  for i in $(seq 1 "$RUNS"); do
    t0=$(now)
    start_bg "$RES/mosaicfs-ready-$i.log" env MOSAICFS_SECRETS=file MOSAICFS_LOG=warn \
      "$MOSAICFS" up --config "$DATA/agent.toml" --listen 127.0.0.1:0
    P=$LAST_PID
    MOUNTS+=("$MPR")
    wait_listing "$MPR/tree"
    t1=$(now)
    record readiness.mosaicfs "$(elapsed "$t0" "$t1")"
    fuse_umount "$MPR" "$P"
  done
  summarize readiness.mosaicfs --ms
}

wait_http() {   # wait_http URL PID
  local i
  for i in $(seq 1 200); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "server died" >&2; return 1; }
    sleep 0.05
  done
  return 1
}

PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(read readdir readiness)
main() {
  machine_block mount
  echo "# runs: $RUNS; readiness tree: $READY_N files; parts: ${PARTS[*]}"
  local part
  for part in "${PARTS[@]}"; do
    case "$part" in
      read) sequential_read ;;
      readdir) readdir ;;
      readiness) readiness ;;
      *) echo "unknown part $part (read, readdir, readiness)" >&2; return 2 ;;
    esac
  done
}
main 2>&1 | tee -a "$OUT"
