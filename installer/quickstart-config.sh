#!/usr/bin/env bash
# Writes the quickstart's agent.toml (installer/quickstart.sh runs it; tests run it too, so what
# they start is what a new user gets).
# usage: installer/quickstart-config.sh CONFIG DATA_DIR [DIRECTORY]
#   DIRECTORY: what to index (default ~/Documents; if that does not exist, ~/MosaicFS-files is
#   made). The home directory itself (or / or any ancestor of it) is refused: the whole home
#   holds caches, the data directory and the mount.
# Mount: a desktop user (not root, $DISPLAY or $WAYLAND_DISPLAY set; MOSAICFS_DESKTOP=1 or 0
#   decides instead) gets the default mount at
#   ~/MosaicFS (if it cannot be mounted the agent runs without it and says why); others none.
#   MOSAICFS_MOUNT_POINT=PATH mounts at PATH instead (a failure then stops the start);
#   MOSAICFS_MOUNT_POINT=none mounts nothing.
set -euo pipefail

config=${1:?usage: quickstart-config.sh CONFIG DATA_DIR [DIRECTORY]}
data=${2:?usage: quickstart-config.sh CONFIG DATA_DIR [DIRECTORY]}
dir=${3:-}

if [ -z "$dir" ]; then
  if [ -d "$HOME/Documents" ]; then
    dir=$HOME/Documents
  else
    dir=$HOME/MosaicFS-files
    mkdir -p "$dir"
    echo "no ~/Documents here: indexing $dir (made now; put files there, or rerun with a directory)"
  fi
fi
[ -d "$dir" ] || { echo "quickstart: $dir is not a directory" >&2; exit 2; }
dir=$(cd "$dir" && pwd -P)
home=$(cd "$HOME" && pwd -P)
case "$home/" in
  "$dir"/*|"$dir/")
    echo "quickstart: will not index $dir: it is (or holds) your home directory, with caches, the" >&2
    echo "data directory and the mount in it. Name a directory below it, like ~/Documents." >&2
    exit 2 ;;
esac

toml_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
mount=${MOSAICFS_MOUNT_POINT:-}
default_mount=false
desktop=${MOSAICFS_DESKTOP:-}
if [ -z "$desktop" ]; then
  desktop=0
  [ "$(id -u)" != 0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && desktop=1
fi
if [ -z "$mount" ] && [ "$desktop" = 1 ]; then
  mount=$HOME/MosaicFS
  default_mount=true
fi
[ "$mount" = none ] && mount=

mkdir -p "$(dirname "$config")"
{
  echo "# Written by installer/quickstart.sh; reference: docs/ARCHITECTURE.md section 8.1"
  echo "data_dir = $(toml_str "$data")"
  echo "watch_paths = [$(toml_str "$dir")]"
  echo 'exclude = ["**/.git", "**/node_modules"]'
  if [ -n "$mount" ]; then
    echo
    echo "[vfs]"
    if $default_mount; then
      echo "# The desktop default: if it cannot be mounted (no FUSE, busy) the agent runs without it"
      echo "# and reports why; remove mount_point_is_default to make a failed mount stop the start."
    fi
    echo "mount_point = $(toml_str "$mount")"
    $default_mount && echo "mount_point_is_default = true"
  fi
} >"$config"
echo "wrote $config (indexing $dir${mount:+, mount at $mount})"
