#!/usr/bin/env bash
# Every MosaicFS benchmark in sequence: crawl, store, watch, search, sync, rules, mount, remote and
# the remote SQLite query (run_*.sh). Same knobs as those scripts (BENCH, RUNS, N, DOCS, STORE_RUNS, ...). Each
# appends its figures to its own file in $BENCH/results/; a failing script does not stop the
# next one, but makes this one exit non-zero.
# usage: bench/run_all.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

rc=0
for s in run_crawl.sh run_store.sh run_watch.sh run_search.sh run_sync.sh run_rules.sh run_mount.sh run_remote.sh run_sqlite_remote.sh; do
  echo "# ---- $s $(date -u -Is)"
  if ! "$HERE/$s"; then
    echo "# $s FAILED" >&2
    rc=1
  fi
done
echo "# ---- done $(date -u -Is)"
exit "$rc"
