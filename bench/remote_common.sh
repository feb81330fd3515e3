# Shared setup of the two-machine benchmarks (run_remote.sh, run_sqlite_remote.sh). Source it
# after common.sh, with build_mosaicfs and build_mosaicfs_bench done:
#   tls_cert                       self-signed cert for rclone's https server ($BENCH/tls)
#   rclone_serve DIR               `rclone serve http` of DIR over https: sets SPID, URL_R
#   mount_rclone MP CACHE          `rclone mount :http: --vfs-cache-mode full` of URL_R at MP with
#                                  a fresh cache dir: sets RPID
#   pair_start SRV MP              hub + agent A serving SRV + agent B (not started) mounting at MP
#                                  (`mosaicfs-bench remote-pair`): sets PAIR, HUB_DATA, A_DB, A_NODE,
#                                  B_CONFIG, B_DATA, B_DB, B_NODE
#   b_start NAME / b_stop          start B with an empty cache and wait for MP/remote/NAME (sets
#                                  MPID) / stop it (SIGTERM: B unmounts and exits)
#   b_cache_cap MIB, alloc_cache   B's cache cap; bytes allocated by B's cached files
#   lo_tx                          bytes sent over loopback so far
# shellcheck shell=bash disable=SC2034

tls_cert() {
  mkdir -p "$BENCH/tls"
  if [ ! -f "$BENCH/tls/rclone.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
      -keyout "$BENCH/tls/rclone.key" -out "$BENCH/tls/rclone.crt" 2>/dev/null
  fi
}

rclone_serve() {   # rclone_serve DIR
  tls_cert
  URL_R=https://127.0.0.1:$PORT
  start_bg "$RES/rclone-serve-https.log" rclone serve http "$1" --addr "127.0.0.1:$PORT" --read-only \
    --cert "$BENCH/tls/rclone.crt" --key "$BENCH/tls/rclone.key"
  SPID=$LAST_PID
  local _
  for _ in $(seq 1 200); do curl -skf -o /dev/null "$URL_R/" && return 0; sleep 0.05; done
  echo "rclone serve http did not answer at $URL_R" >&2; return 1
}

mount_rclone() {   # mount_rclone MP CACHE
  rm -rf "$2"; mkdir -p "$2"
  fuse_mount "$1" "$RES/rclone-https-mount.log" rclone mount :http: "$1" --http-url "$URL_R/" \
    --no-check-certificate --vfs-cache-mode full --cache-dir "$2" --read-only
  RPID=$LAST_PID
}

pair_start() {   # pair_start SRV MP
  PAIR_LOG=$RES/remote-pair.log
  MP_M=$2
  start_bg "$PAIR_LOG" env MOSAICFS_BIN="$MOSAICFS" MOSAICFS_AGENT_LOG=warn "$MOSAICFS_BENCH" remote-pair \
    --srv "$1" --mount "$MP_M" --cache-mib 8192
  PAIR=$LAST_PID
  local _
  for _ in $(seq 1 1200); do
    grep -qx ready "$PAIR_LOG" && break
    kill -0 "$PAIR" || { cat "$PAIR_LOG" >&2; return 1; }
    sleep 0.1
  done
  grep -qx ready "$PAIR_LOG" || { echo "remote-pair not ready" >&2; return 1; }
  HUB_DATA=$(pair_val hub_data); A_DB=$(pair_val a_db); A_NODE=$(pair_val a_node)
  B_CONFIG=$(pair_val b_config); B_DATA=$(pair_val b_data); B_DB=$(pair_val b_db); B_NODE=$(pair_val b_node)
}
pair_val() { awk -F= -v k="$1" '$1 == k {print substr($0, length(k) + 2); exit}' "$PAIR_LOG"; }

b_start() {   # b_start NAME: fresh cache; starts agent B, waits for the mount and NAME visible; sets MPID
  rm -rf "$B_DATA/cache"
  mkdir -p "$MP_M"
  start_bg "$RES/mosaicfs-b.log" env MOSAICFS_LOG="${B_LOG:-warn}" "$MOSAICFS" agent --config "$B_CONFIG"
  MPID=$LAST_PID
  MOUNTS+=("$MP_M")
  wait_mount "$MP_M" "$MPID"
  local _
  for _ in $(seq 1 1200); do [ -e "$MP_M/remote/$1" ] && return 0; sleep 0.05; done
  echo "$MP_M/remote/$1 did not appear" >&2; return 1
}
b_stop() { stop_bg "$MPID"; }
b_cache_cap() { sed -i "s/^max_mib = .*/max_mib = $1/" "$B_CONFIG"; }
alloc_cache() {   # bytes allocated by the cached files (what the cap counts; directories excluded)
  find "$B_DATA/cache/files" "$B_DATA/cache/blocks" -type f -printf '%b\n' 2>/dev/null | awk '{s += $1 * 512} END {print s + 0}'
}
lo_tx() { cat /sys/class/net/lo/statistics/tx_bytes; }
