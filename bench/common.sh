# Shared setup of the MosaicFS benchmarks in bench/. Source it: . "$HERE/common.sh"
#
# It sources the anchor benchmarks' helpers ($SHARED_BENCH/lib.sh: BENCH, RUNS, emit, hf, med,
# ratio, context, ...) and adds:
#   build_mosaicfs / build_mosaicfs_bench / build_naive_ingest   binaries (built on first use)
#   machine_block NAME    the dated header block of a results file
#   metric FILE NAME      the value of a `NAME: value unit` line in FILE
#   div A B [FMT]         A / B with awk
#
# Environment knobs (all optional), on top of lib.sh's BENCH, RUNS, NO_DROP:
#   SHARED_BENCH        the anchor benchmarks (default: ../../shared/bench next to the checkout)
#   MOSAICFS_BIN        a built `mosaicfs` binary (default: cargo build --release -p mosaicfs-cli)
#   MOSAICFS_BENCH_BIN  a built `mosaicfs-bench` binary (default: cargo build --release -p mosaicfs-bench)
#   NAIVE_INGEST_BIN    a built naive-ingest peer (default: built from $SHARED_BENCH/sqlite_ingest_rs
#                       with --features bundled into $BENCH/cargo-target-bundled)
#   CARGO_TARGET_DIR    where our crates are built (default: $HOME/.cache/mosaicfs-target)
# Variables set here are used by the scripts that source this file.
# shellcheck shell=bash disable=SC2034

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$HERE/../../shared/bench}
if [ ! -f "$SHARED_BENCH/lib.sh" ]; then
  echo "anchor benchmarks not found at $SHARED_BENCH (set SHARED_BENCH)" >&2
  exit 2
fi
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)
# shellcheck source=/dev/null
. "$SHARED_BENCH/lib.sh"

OUR_TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/mosaicfs-target}

need() {   # need CMD [APT PACKAGE]: fail early with the install hint
  command -v "$1" >/dev/null || { echo "missing $1: apt-get install -y ${2:-$1}" >&2; exit 2; }
}

# build_mosaicfs: sets MOSAICFS to the `mosaicfs` binary
build_mosaicfs() {
  if [ -n "${MOSAICFS_BIN:-}" ]; then MOSAICFS=$MOSAICFS_BIN; return 0; fi
  echo "building mosaicfs (cargo build --release -p mosaicfs-cli, target $OUR_TARGET)" >&2
  (cd "$REPO" && CARGO_TARGET_DIR=$OUR_TARGET cargo build --release -q -p mosaicfs-cli) >&2
  MOSAICFS=$OUR_TARGET/release/mosaicfs
}

# build_mosaicfs_bench: sets MOSAICFS_BENCH to the `mosaicfs-bench` binary
build_mosaicfs_bench() {
  if [ -n "${MOSAICFS_BENCH_BIN:-}" ]; then MOSAICFS_BENCH=$MOSAICFS_BENCH_BIN; return 0; fi
  echo "building mosaicfs-bench (cargo build --release -p mosaicfs-bench, target $OUR_TARGET)" >&2
  (cd "$REPO" && CARGO_TARGET_DIR=$OUR_TARGET cargo build --release -q -p mosaicfs-bench) >&2
  MOSAICFS_BENCH=$OUR_TARGET/release/mosaicfs-bench
}

# build_naive_ingest: sets NAIVE_INGEST to the peer (rusqlite with its bundled SQLite, like ours)
build_naive_ingest() {
  if [ -n "${NAIVE_INGEST_BIN:-}" ]; then NAIVE_INGEST=$NAIVE_INGEST_BIN; return 0; fi
  echo "building the naive ingest peer ($SHARED_BENCH/sqlite_ingest_rs, --features bundled)" >&2
  (cd "$SHARED_BENCH/sqlite_ingest_rs" &&
    CARGO_TARGET_DIR=$BENCH/cargo-target-bundled cargo build --release -q --features bundled) >&2
  NAIVE_INGEST=$BENCH/cargo-target-bundled/release/sqlite_ingest_rs
}

# machine_block NAME: dated header of one benchmark's block in a results file
machine_block() {
  local cpu
  cpu=$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)
  echo "# ---- $1 $(date -u -Is)"
  echo "# kernel: $(uname -r)"
  echo "# nproc: $(nproc)"
  echo "# cpu: ${cpu:-unknown}"
  echo "# mem: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "# loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# metric FILE NAME: the value of the `NAME: value unit` line in FILE (fails if absent)
metric() {
  local v
  v=$(awk -v n="$2:" '$1 == n {print $2; exit}' "$1")
  if [ -z "$v" ]; then echo "no figure $2 in $1" >&2; return 1; fi
  printf '%s\n' "$v"
}

# div A B [FMT]: A / B
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN{printf f "\n", a/b}'; }

# q ARG: ARG quoted for the shell that hyperfine runs commands in
q() { printf '%q' "$1"; }

# check_json FILE KEY=VALUE...: fail unless the JSON object in FILE has these top-level values
check_json() {
  python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
bad = ["%s=%s (expected %s)" % (k, s.get(k), v)
       for k, v in (a.split("=", 1) for a in sys.argv[2:]) if str(s.get(k)) != v]
if bad:
    sys.exit("%s: %s" % (sys.argv[1], ", ".join(bad)))
' "$@"
}
