#!/usr/bin/env bash
# Builds `mosaicfs` and runs the main command, `mosaicfs up`: this machine's agent (indexing
# DIRECTORY) and the control plane in one process, until Ctrl-C.
# usage: installer/quickstart.sh [DIRECTORY]   (default: ~/Documents, or ~ if it does not exist)
# Knobs: MOSAICFS_DATA_DIR (default $XDG_DATA_HOME/mosaicfs), MOSAICFS_LISTEN (default
# 127.0.0.1:8443). The config is written once to {data dir}/agent.toml; edit it to add paths.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-$HOME/Documents}
[ -d "$dir" ] || dir=$HOME
dir=$(cd "$dir" && pwd)

bash installer/install-deps.sh build
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mosaicfs-target}
cargo build --release -p mosaicfs-cli
bin=$CARGO_TARGET_DIR/release/mosaicfs

data=${MOSAICFS_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/mosaicfs}
mkdir -p "$data"
config=$data/agent.toml
if [ ! -f "$config" ]; then
  toml_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
  {
    echo "# Written by installer/quickstart.sh; reference: docs/ARCHITECTURE.md section 8.1"
    echo "data_dir = $(toml_str "$data")"
    echo "watch_paths = [$(toml_str "$dir")]"
    echo 'exclude = ["**/.git", "**/node_modules"]'
  } >"$config"
  echo "wrote $config (indexing $dir)"
fi

cat <<TXT

== mosaicfs up --config $config
   While it runs, in another terminal:
     $bin index --config $config stats             # what is indexed
     $bin index --config $config search '*.pdf'    # find by name or glob
     curl -k https://${MOSAICFS_LISTEN:-127.0.0.1:8443}/health
   Ctrl-C stops it.

TXT
exec "$bin" up --config "$config" --listen "${MOSAICFS_LISTEN:-127.0.0.1:8443}"
