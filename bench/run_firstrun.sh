#!/usr/bin/env bash
# First-run directories (issue 15): `ls -f` of /recent and /by-type/documents through the mount of
# `mosaicfs up` (the quickstart's config) over an N-file store, cold (first listing after start)
# and during a crawl (files being created under the watch path meanwhile), next to
# `find -newermt '7 days ago'` over the same source tree, in one run. Prints p50 in ms.
#
# usage: bench/run_firstrun.sh            (root: FUSE mount)
# knobs: N=500000 RUNS=7 MOSAICFS_BIN (default: release build) BENCH (work dir, default /tmp/mosaicfs-bench)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
N=${N:-500000}
RUNS=${RUNS:-7}
BENCH=${BENCH:-/tmp/mosaicfs-bench}
BIN=${MOSAICFS_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$REPO" && cargo build --release -p mosaicfs-cli >&2)
  BIN=${CARGO_TARGET_DIR:-$HOME/.cache/mosaicfs-target}/release/mosaicfs
fi
W=$BENCH/firstrun-$N
HOME_DIR=$W/home
SRC=$HOME_DIR/Documents
if [ ! -f "$W/tree.ok" ]; then
  rm -rf "$W"; mkdir -p "$SRC"
  # 1000 files per directory; a quarter documents (.pdf/.txt), the rest images/data; a third
  # changed within 7 days, the rest 30 days old.
  python3 - "$SRC" "$N" <<'PY'
import os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
exts = [".pdf", ".txt", ".jpg", ".dat"]
old = time.time() - 30 * 86400
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"f{i:07d}{exts[i % 4]}")
    with open(p, "wb") as f:
        f.write(b"x")
    if i % 3:
        os.utime(p, (old, old))
PY
  touch "$W/tree.ok"
fi
DATA=$W/data; rm -rf "$DATA" "$HOME_DIR/MosaicFS"
MOSAICFS_DESKTOP=1 HOME=$HOME_DIR bash "$REPO/installer/quickstart-config.sh" "$DATA/agent.toml" "$DATA" "$SRC" >&2
MNT=$HOME_DIR/MosaicFS

ms() { local t0 t1; t0=$(date +%s%N); eval "$1" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
p50() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
series() { local i; for i in $(seq "$RUNS"); do ms "$1"; done | p50; }

HOME=$HOME_DIR MOSAICFS_DESKTOP=1 MOSAICFS_SECRETS=file MOSAICFS_LOG=warn "$BIN" up --listen 127.0.0.1:0 \
  --config "$DATA/agent.toml" >"$W/up.out" 2>"$W/up.err" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; grep -q " $MNT " /proc/self/mountinfo && umount -l "$MNT"; true' EXIT
start=$(date +%s)
# Indexed when /by-type/documents lists every document (N/2).
until [ "$(ls -f "$MNT/by-type/documents" 2>/dev/null | wc -l)" -ge $(( N / 2 + 2 )) ]; do sleep 2; done
echo "indexed_and_listed_s: $(( $(date +%s) - start ))"
echo "recent_entries: $(( $(ls -f "$MNT/recent" | wc -l) - 2 ))"
echo "documents_entries: $(( $(ls -f "$MNT/by-type/documents" | wc -l) - 2 ))"
# Cold: a fresh start of the same store, the first listing of each.
kill $PID; wait $PID 2>/dev/null || true
HOME=$HOME_DIR MOSAICFS_DESKTOP=1 MOSAICFS_SECRETS=file MOSAICFS_LOG=warn "$BIN" up --listen 127.0.0.1:0 \
  --config "$DATA/agent.toml" >"$W/up.out" 2>>"$W/up.err" &
PID=$!
until grep -q " $MNT " /proc/self/mountinfo; do sleep 0.2; done
until [ -d "$MNT/recent" ]; do sleep 0.2; done
echo "ls_recent_cold_ms: $(ms "ls -f '$MNT/recent'")"
echo "ls_documents_cold_ms: $(ms "ls -f '$MNT/by-type/documents'")"
echo "ls_recent_p50_ms: $(series "ls -f '$MNT/recent'")"
echo "ls_documents_p50_ms: $(series "ls -f '$MNT/by-type/documents'")"
echo "find_newermt_p50_ms: $(series "find '$SRC' -type f -newermt '7 days ago'")"
# During a crawl: new files keep arriving under the watch path (each change invalidates listings).
( i=0; while [ -f "$W/churn" ]; do echo y >"$SRC/d0000/new$i.txt"; i=$((i+1)); sleep 0.05; done ) &
touch "$W/churn"; CH=$!
echo "ls_recent_during_crawl_p50_ms: $(series "ls -f '$MNT/recent'")"
echo "ls_documents_during_crawl_p50_ms: $(series "ls -f '$MNT/by-type/documents'")"
echo "find_newermt_during_crawl_p50_ms: $(series "find '$SRC' -type f -newermt '7 days ago'")"
rm -f "$W/churn"; wait $CH 2>/dev/null || true
rm -f "$SRC"/d0000/new*.txt
