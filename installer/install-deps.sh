#!/usr/bin/env bash
# Installs the Debian packages MosaicFS needs, non-interactively. Idempotent: packages already
# present are not reinstalled, and `apt-get update` runs only when something is missing.
#
# usage: installer/install-deps.sh build|test|bench
#   build  compile the headless `mosaicfs` binary (C compiler for the bundled SQLite)
#   test   build + what the test suite runs against (fuse3, rsync, attr (getfattr), git and
#          sqlite3 for the mount tests, chromium and chromium-driver for the web UI tests, ffmpeg
#          for the remote video test)
#   bench  test + the peers the benchmarks compare with (hyperfine, plocate, GNU time, wrk, curl,
#          bindfs, rclone)
#
# test and bench also install schemathesis (PyPI, pinned) into a virtualenv at
# $MOSAICFS_VENV (default ~/.cache/mosaicfs-venv); the API fuzz test runs it from there.
set -euo pipefail

purpose=${1:-test}
build=(build-essential pkg-config ca-certificates)
test=("${build[@]}" procps python3 python3-venv dbus gnome-keyring fuse3 rsync ffmpeg attr git sqlite3 chromium chromium-driver)
bench=("${test[@]}" hyperfine plocate time python3 wrk curl bindfs rclone)

case "$purpose" in
  build) want=("${build[@]}") ;;
  test) want=("${test[@]}") ;;
  bench) want=("${bench[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_python_tools() {
  [ "$purpose" = build ] && return 0
  local venv=${MOSAICFS_VENV:-$HOME/.cache/mosaicfs-venv}
  local want_version=4.32.5
  if [ -x "$venv/bin/schemathesis" ] && "$venv/bin/pip" show schemathesis 2>/dev/null | grep -x "Version: $want_version" >/dev/null; then
    return 0
  fi
  echo "install-deps: installing schemathesis $want_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$want_version"
}

if [ ${#missing[@]} -eq 0 ]; then
  install_python_tools
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

if ! command -v cargo >/dev/null; then
  echo "install-deps: cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi

install_python_tools
