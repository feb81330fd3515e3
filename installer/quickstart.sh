#!/usr/bin/env bash
# Builds `mosaicfs`, indexes a directory and shows what was indexed.
# usage: installer/quickstart.sh [DIRECTORY]   (default: ~/Documents, or ~ if it does not exist)
# The index lives in ${MOSAICFS_DATA_DIR:-$XDG_DATA_HOME/mosaicfs}; run it again to see the
# re-crawl skip unchanged files.
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
db=$data/agent.db

echo
echo "== indexing $dir"
"$bin" index --db "$db" crawl "$dir"
echo
echo "== what is indexed"
"$bin" index --db "$db" stats
echo
echo "== $dir"
"$bin" index --db "$db" ls "$dir" | head -40
cat <<TXT

More:
  $bin index --db $db search '*.pdf'      # find by name or glob
  $bin index --db $db ls $dir/SUBDIR      # browse
  $bin agent --config FILE                # keep the index current (see README.md)
TXT
