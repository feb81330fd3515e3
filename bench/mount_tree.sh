#!/usr/bin/env bash
# Mounts a local directory through MosaicFS, in the foreground (the FUSE_MOUNT_CMD hook of the
# anchor benchmarks): `mosaicfs up` indexes SRC into a fresh data directory, a virtual directory
# /NAME mounting SRC (prefix_replace, no steps) is created through the REST API, and once the
# agent's replica has it `mosaicfs up` is restarted with the tree mounted at MP. The script then
# waits for that process; SIGTERM/SIGINT stop it (which unmounts). Run again with the same
# MOUNT_DATA, it mounts the existing index at once (a fresh mount of the same tree).
#
# usage: bench/mount_tree.sh SRC MP [NAME]      (NAME default: tree → files at MP/tree/...)
# env:   MOSAICFS (the binary), MOUNT_DATA (data directory; default: a fresh temp dir),
#        MOUNT_EXTRA (extra agent.toml lines for the mounted run, e.g. "passthrough = false"
#        goes under [vfs])
set -euo pipefail
trap 'echo "mount_tree.sh: line $LINENO failed: $BASH_COMMAND" >&2' ERR
SRC=$(cd "$1" && pwd)
MP=$2
NAME=${3:-tree}
MOSAICFS=${MOSAICFS:-mosaicfs}
DATA=${MOUNT_DATA:-$(mktemp -d /tmp/mosaicfs-mount.XXXXXX)}
mkdir -p "$DATA"
CONF=$DATA/agent.toml
LOG=$DATA/up.log
export MOSAICFS_SECRETS=file MOSAICFS_LOG=${MOSAICFS_LOG:-warn}

write_config() {   # write_config [mount]
  {
    echo "data_dir = \"$DATA/data\""
    echo "watch_paths = [\"$SRC\"]"
    echo "[watcher]"
    echo "enabled = false"
    if [ "${1:-}" = mount ]; then
      echo "[vfs]"
      echo "mount_point = \"$MP\""
      if [ -n "${MOUNT_EXTRA:-}" ]; then echo "$MOUNT_EXTRA"; fi
    fi
  } > "$CONF"
}

PID=
stop() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  PID=
}
trap 'stop; exit 0' TERM INT

# Phase 1: index and define the directory (unmounted); skipped when MOUNT_DATA already holds it.
READY=$DATA/ready-$NAME
if [ ! -f "$READY" ]; then
write_config
"$MOSAICFS" up --config "$CONF" --listen 127.0.0.1:0 > "$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 600); do grep -q '^control plane: ' "$LOG" && break; sleep 0.1; done
URL=$(sed -n 's/^control plane: \(https:[^ ]*\).*/\1/p' "$LOG")
[ -n "$URL" ] || { cat "$LOG" >&2; stop; exit 1; }
KEY=$(sed -n 1p "$DATA/data/secrets/admin.secret"); SECRET=$(sed -n 2p "$DATA/data/secrets/admin.secret")
NODE=$(cat "$DATA/data/node_id")
TOKEN=$(curl -sfk "$URL/api/auth/login" -H 'content-type: application/json' \
  -d "{\"access_key_id\":\"$KEY\",\"secret\":\"$SECRET\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
BODY="{\"mounts\":[{\"mount_id\":\"src\",\"source\":{\"node_id\":\"$NODE\",\"export_path\":\"$SRC\"},\"default_result\":\"include\",\"strategy\":\"prefix_replace\",\"conflict_policy\":\"last_write_wins\"}]}"
CODE=$(curl -sk -o "$DATA/create.json" -w '%{http_code}' -X POST "$URL/api/vfs/directories/$NAME" \
  -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY")
if [ "$CODE" != 201 ]; then echo "creating /$NAME: HTTP $CODE $(cat "$DATA/create.json")" >&2; stop; exit 1; fi
# Wait until the replica holds the directory and the index is complete (the crawl finished).
WANT=$(find "$SRC" -type f | wc -l)
for _ in $(seq 1 3000); do
  GOT=$(curl -sfk "$URL/api/vfs?path=/$NAME" -H "authorization: Bearer $TOKEN" 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["entries"]))' 2>/dev/null || echo 0)
  HAVE=$(python3 - "$DATA/data/agent.db" <<'EOF' 2>/dev/null || echo 0
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
d = c.execute("SELECT COUNT(*) FROM docs WHERE type = 'virtual_directory' AND deleted = 0").fetchone()[0]
f = c.execute("SELECT COUNT(*) FROM files WHERE status = 0").fetchone()[0]
print(f if d >= 2 else 0)
EOF
)
  [ "$GOT" -gt 0 ] && [ "$HAVE" -ge "$WANT" ] && break
  sleep 0.2
done
stop
touch "$READY"
fi

# Phase 2: the same node, mounted.
write_config mount
"$MOSAICFS" up --config "$CONF" --listen 127.0.0.1:0 >> "$LOG" 2>&1 &
PID=$!
wait "$PID"
