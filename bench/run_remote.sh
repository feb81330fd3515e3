#!/usr/bin/env bash
# Remote reads through the mount (issue 7) next to rclone, in one invocation. Both sides pay for
# TLS: rclone serves https (`rclone serve http --cert --key`, self-signed) and mounts it with
# `--vfs-cache-mode full`; MosaicFS runs a hub, agent A serving $BENCH/srv through its transfer
# server (TLS, pinned) and agent B mounting it (`mosaicfs-bench remote-pair`), B restarted with
# an empty cache for every cold run. curl from each server is the raw limit.
#
#   remote.curl_tls_1g / remote.curl_mosaicfs_1g   curl -k of the 1 GiB file from rclone / from A
#   remote.{rclone,mosaicfs}.cold_read_1g          dd bs=1M of the 1 GiB file, fresh mount, empty cache
#   remote.{rclone,mosaicfs}.warm_read_1g          the same file again (cached), and after drop_caches
#   remote.bindfs.warm_read_1g                     the local limit for the warm re-read
#   remote.{rclone,mosaicfs}.range64k.*            64 KiB at a seeded random offset in the last 100 MiB
#                                                  of a 2 GiB file (fresh mount): time to first byte
#                                                  (ttfb.py) and bytes over loopback (lo tx delta)
#   remote.{rclone,mosaicfs}.video.*               ffprobe of a remote MP4 (block mode for mosaicfs),
#                                                  time to first frame, and a seek to 3/4 of it
#   remote.mosaicfs.stream10g.*                    dd of a 10 GiB sparse file through a 1 GiB cache:
#                                                  MB/s and the peak RSS of agent B
#   remote.mosaicfs.evict.*                        40 x 32 MiB files through a 256 MiB cache: MB/s,
#                                                  and the cache's allocated bytes after (<= cap)
#
# usage: bench/run_remote.sh     (root: FUSE mounts, drop_caches)
# knobs: RUNS=5 PORT BENCH SHARED_BENCH MOSAICFS_BIN MOSAICFS_BENCH_BIN CARGO_TARGET_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"
# shellcheck source-path=SCRIPTDIR source=remote_common.sh
. "$HERE/remote_common.sh"

need hyperfine
need rclone
need bindfs
need fusermount3 fuse3
need curl
need openssl
need ffmpeg
need python3

build_mosaicfs
build_mosaicfs_bench
OUT=$RES/remote-$(date -u +%Y%m%d).txt
SRV=$BENCH/srv
MP_R=$BENCH/mnt/rclone-https
MP_M=$BENCH/mnt/mosaicfs-remote
CACHE_R=$BENCH/rclone-cache

# ---------- sources ----------
make_random_file "$BENCH/big/file1024m.bin" 1024
mkdir -p "$SRV" "$SRV/evict"
ln -f "$BENCH/big/file1024m.bin" "$SRV/file1g.bin"
make_random_file "$SRV/file2g.bin" 2048
[ -f "$SRV/stream10g.bin" ] || truncate -s 10G "$SRV/stream10g.bin"
for i in $(seq -w 1 40); do make_random_file "$SRV/evict/e$i.bin" 32; done
if [ ! -f "$SRV/film.mp4" ]; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 120 -c:v libx264 -preset ultrafast \
    -g 60 -b:v 8M "$SRV/film.tmp.mp4" && mv "$SRV/film.tmp.mp4" "$SRV/film.mp4"
fi
B1=$(stat -c %s "$SRV/file1g.bin"); B2=$(stat -c %s "$SRV/file2g.bin")
FILM_SECS=120
warm_src() { cat "$SRV/file1g.bin" "$SRV/file2g.bin" "$SRV/film.mp4" > /dev/null; }
offset() { python3 -c "import random; r=random.Random($1); print(r.randrange($2 - 100*2**20, $2 - 65536))"; }
dd_time() { local t0 t1; t0=$(now); dd if="$1" of=/dev/null bs=1M 2>/dev/null; t1=$(now); elapsed "$t0" "$t1"; }
median_of() { python3 -c "import statistics,sys; print(int(statistics.median(float(x) for x in open(sys.argv[1]).read().split())))" "$RES/$1.times"; }

# ffmpeg figures of one mounted film: ffprobe (duration), first frame, a seek to 3/4
video_times() {   # video_times LABEL PATH
  local t0 t1
  t0=$(now); ffprobe -v error -show_entries format=duration -of csv=p=0 "$2" >/dev/null; t1=$(now)
  record "remote.$1.video.probe" "$(elapsed "$t0" "$t1")"
  t0=$(now); ffmpeg -v error -i "$2" -frames:v 1 -f null - ; t1=$(now)
  record "remote.$1.video.first_frame" "$(elapsed "$t0" "$t1")"
  t0=$(now); ffmpeg -v error -ss $((FILM_SECS * 3 / 4)) -i "$2" -frames:v 1 -f null - ; t1=$(now)
  record "remote.$1.video.seek" "$(elapsed "$t0" "$t1")"
}

{
trap cleanup EXIT   # the pipeline's subshell does not inherit lib.sh's trap
machine_block remote
context remote
warm_src

# ================= rclone over https =================
rclone_serve "$SRV"
hf remote.curl_tls_1g --count "$B1" --scale 1e-6 --unit MB/s -- --runs "$RUNS" --warmup 1 \
  "curl -skf -o /dev/null $URL_R/file1g.bin"

for n in cold_read_1g warm_read_1g warm_read_1g_dropped; do reset_times "remote.rclone.$n"; done
for i in $(seq 1 "$RUNS"); do
  warm_src
  mount_rclone "$MP_R" "$CACHE_R"
  record remote.rclone.cold_read_1g "$(dd_time "$MP_R/file1g.bin")"
  record remote.rclone.warm_read_1g "$(dd_time "$MP_R/file1g.bin")"
  if [ "$CAN_DROP" = 1 ]; then drop_caches; record remote.rclone.warm_read_1g_dropped "$(dd_time "$MP_R/file1g.bin")"; fi
  [ "$i" = "$RUNS" ] && { cmp -s "$MP_R/file1g.bin" "$SRV/file1g.bin" && emit remote.rclone.verify_1g 1 ok || emit remote.rclone.verify_1g 0 MISMATCH; }
  fuse_umount "$MP_R" "$RPID"
done
summarize remote.rclone.cold_read_1g --count "$B1" --scale 1e-6 --unit MB/s
summarize remote.rclone.warm_read_1g --count "$B1" --scale 1e-6 --unit MB/s
[ "$CAN_DROP" = 1 ] && summarize remote.rclone.warm_read_1g_dropped --count "$B1" --scale 1e-6 --unit MB/s

for n in total fetched; do reset_times "remote.rclone.range64k.$n"; done
for n in probe first_frame seek; do reset_times "remote.rclone.video.$n"; done
for i in $(seq 1 "$RUNS"); do
  off=$(offset "$i" "$B2")
  mount_rclone "$MP_R" "$CACHE_R"
  l0=$(lo_tx)
  read -r _ _ _ t _ ok < <(python3 "$SHARED_BENCH/ttfb.py" "$MP_R/file2g.bin" "$off" 65536 --verify "$SRV/file2g.bin" || true)
  l1=$(lo_tx)
  [ "$ok" = 1 ] || emit "remote.rclone.range64k.verify_run$i" 0 MISMATCH
  record remote.rclone.range64k.total "$t"; record remote.rclone.range64k.fetched "$((l1 - l0))"
  video_times rclone "$MP_R/film.mp4"
  fuse_umount "$MP_R" "$RPID"
done
summarize remote.rclone.range64k.total --ms
emit remote.rclone.range64k.fetched.median "$(median_of remote.rclone.range64k.fetched)" bytes
for n in probe first_frame seek; do summarize "remote.rclone.video.$n" --ms; done
stop_bg "$SPID"
rm -rf "$CACHE_R"

# ================= bindfs: the local limit of a warm re-read =================
MP_B=$BENCH/mnt/bindfs-srv
fuse_mount "$MP_B" "$RES/bindfs-srv.log" bindfs -f "$SRV" "$MP_B"
BPID=$LAST_PID
reset_times remote.bindfs.warm_read_1g
dd_time "$MP_B/file1g.bin" >/dev/null
for _ in $(seq 1 "$RUNS"); do record remote.bindfs.warm_read_1g "$(dd_time "$MP_B/file1g.bin")"; done
summarize remote.bindfs.warm_read_1g --count "$B1" --scale 1e-6 --unit MB/s
fuse_umount "$MP_B" "$BPID"

# ================= mosaicfs: hub + A serving, B mounting =================
pair_start "$SRV" "$MP_M"

for _ in $(seq 1 600); do
  line=$("$MOSAICFS_BENCH" transfer-token --hub-data "$HUB_DATA" --agent-db "$A_DB" --path "$SRV/file1g.bin" 2>/dev/null) && break
  sleep 0.1
done
read -r T_URL T_TOKEN <<<"$line"
hf remote.curl_mosaicfs_1g --count "$B1" --scale 1e-6 --unit MB/s -- --runs "$RUNS" --warmup 1 \
  "curl -skf -o /dev/null -H 'Authorization: Bearer $T_TOKEN' -H 'TE: trailers' $T_URL"

for n in cold_read_1g warm_read_1g warm_read_1g_dropped; do reset_times "remote.mosaicfs.$n"; done
for i in $(seq 1 "$RUNS"); do
  warm_src
  b_start file1g.bin
  record remote.mosaicfs.cold_read_1g "$(dd_time "$MP_M/remote/file1g.bin")"
  record remote.mosaicfs.warm_read_1g "$(dd_time "$MP_M/remote/file1g.bin")"
  if [ "$CAN_DROP" = 1 ]; then drop_caches; record remote.mosaicfs.warm_read_1g_dropped "$(dd_time "$MP_M/remote/file1g.bin")"; fi
  [ "$i" = "$RUNS" ] && { cmp -s "$MP_M/remote/file1g.bin" "$SRV/file1g.bin" && emit remote.mosaicfs.verify_1g 1 ok || emit remote.mosaicfs.verify_1g 0 MISMATCH; }
  b_stop
done
summarize remote.mosaicfs.cold_read_1g --count "$B1" --scale 1e-6 --unit MB/s
summarize remote.mosaicfs.warm_read_1g --count "$B1" --scale 1e-6 --unit MB/s
[ "$CAN_DROP" = 1 ] && summarize remote.mosaicfs.warm_read_1g_dropped --count "$B1" --scale 1e-6 --unit MB/s

for n in total fetched cached; do reset_times "remote.mosaicfs.range64k.$n"; done
for n in probe first_frame seek; do reset_times "remote.mosaicfs.video.$n"; done
for i in $(seq 1 "$RUNS"); do
  off=$(offset "$i" "$B2")
  b_start file2g.bin
  l0=$(lo_tx)
  read -r _ _ _ t _ ok < <(python3 "$SHARED_BENCH/ttfb.py" "$MP_M/remote/file2g.bin" "$off" 65536 --verify "$SRV/file2g.bin" || true)
  l1=$(lo_tx)
  [ "$ok" = 1 ] || emit "remote.mosaicfs.range64k.verify_run$i" 0 MISMATCH
  record remote.mosaicfs.range64k.total "$t"; record remote.mosaicfs.range64k.fetched "$((l1 - l0))"
  record remote.mosaicfs.range64k.cached "$(alloc_cache)"
  video_times mosaicfs "$MP_M/remote/film.mp4"
  b_stop
done
summarize remote.mosaicfs.range64k.total --ms
emit remote.mosaicfs.range64k.fetched.median "$(median_of remote.mosaicfs.range64k.fetched)" bytes
emit remote.mosaicfs.range64k.cached.median "$(median_of remote.mosaicfs.range64k.cached)" bytes
for n in probe first_frame seek; do summarize "remote.mosaicfs.video.$n" --ms; done

# 10 GiB through a 1 GiB cache: throughput and B's peak RSS.
b_cache_cap 1024
b_start stream10g.bin
t=$(dd_time "$MP_M/remote/stream10g.bin")
emit remote.mosaicfs.stream10g.rate "$(awk -v t="$t" 'BEGIN{printf "%.1f", 10737418240 / t / 1e6}')" MB/s
emit remote.mosaicfs.stream10g.peak_rss "$(awk '/VmHWM/{printf "%.1f", $2 / 1024}' "/proc/$MPID/status")" MB
emit remote.mosaicfs.stream10g.cache_alloc "$(alloc_cache)" bytes
b_stop

# Eviction: 1.25 GiB of 32 MiB files through a 256 MiB cache.
b_cache_cap 256
b_start evict/e40.bin
t0=$(now); cat "$MP_M"/remote/evict/*.bin > /dev/null; t1=$(now)
emit remote.mosaicfs.evict.rate "$(awk -v t="$(elapsed "$t0" "$t1")" 'BEGIN{printf "%.1f", 40 * 33554432 / t / 1e6}')" MB/s
emit remote.mosaicfs.evict.cache_alloc_after "$(alloc_cache)" "bytes (cap 268435456)"
b_stop
b_cache_cap 8192
stop_bg "$PAIR"

ratio remote.ratio.mosaicfs_cold_over_curl_mosaicfs remote.curl_mosaicfs_1g remote.mosaicfs.cold_read_1g
ratio remote.ratio.mosaicfs_cold_over_rclone_cold remote.rclone.cold_read_1g remote.mosaicfs.cold_read_1g
ratio remote.ratio.mosaicfs_warm_over_bindfs_warm remote.bindfs.warm_read_1g remote.mosaicfs.warm_read_1g
context remote_end
} 2>&1 | tee "$OUT"
echo "results: $OUT" >&2
