#!/usr/bin/env bash
# Builds `mosaicfs` and runs the main command, `mosaicfs up`: this machine's agent (indexing
# DIRECTORY) and the control plane in one process, until Ctrl-C.
# usage: installer/quickstart.sh [DIRECTORY]   (default: ~/Documents, else ~/MosaicFS-files; never ~)
# Knobs: MOSAICFS_DATA_DIR (default $XDG_DATA_HOME/mosaicfs), MOSAICFS_LISTEN (default
# 127.0.0.1:8443), MOSAICFS_MOUNT_POINT (default ~/MosaicFS for a desktop user, else none; `none`
# for no mount). The config is written once to {data dir}/agent.toml (installer/quickstart-config.sh);
# edit it to add paths.
set -euo pipefail
cd "$(dirname "$0")/.."

bash installer/install-deps.sh build
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mosaicfs-target}
cargo build --release -p mosaicfs-cli
bin=$CARGO_TARGET_DIR/release/mosaicfs

data=${MOSAICFS_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/mosaicfs}
mkdir -p "$data"
config=$data/agent.toml
[ -f "$config" ] || bash installer/quickstart-config.sh "$config" "$data" "${1:-}"
mount=$(sed -n 's/^mount_point = "\(.*\)"$/\1/p' "$config")
listen=${MOSAICFS_LISTEN:-127.0.0.1:8443}

cat <<TXT

== mosaicfs up --config $config
   $( [ -n "$mount" ] && echo "Your files, every machine's, appear under $mount (machines/, recent/, by-type/)." \
       || echo "No mount configured: set [vfs] mount_point in $config to see the tree as files." )
   While it runs, in another terminal:
     $bin index --config $config stats             # what is indexed
     $bin index --config $config search '*.pdf'    # find by name or glob
     curl --cacert $data/tls/hub.crt https://$listen/health   # the hub, its certificate pinned
   Ctrl-C stops it.

TXT
exec "$bin" up --config "$config" --listen "$listen"
