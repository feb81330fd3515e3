#!/usr/bin/env bash
# MosaicFS hub benchmarks next to their peers, in one invocation: filename search over 500,000
# names through the HTTPS API against plocate on the same tree, and authenticated request
# throughput against wrk's ceiling.
#
# Tree: $SHARED_BENCH/gen_tree.py N --zero (default 500,000 zero-byte files), generated once as
# $BENCH/tree${N}z and shared with the anchor search benchmark.
#   search.plocate.q.<query>          plocate -d DB -c QUERY (counts every match; hyperfine, ms)
#   search.plocate.page.rich_jpg      plocate -d DB -l 100 jpg (the first 100 hits)
#   search.seed_hub.*                 the crawled names pushed into a hub store (apply_pushed),
#                                     trigram index maintained by its triggers
#   search.api.<query>.p50/.p99       GET /api/search through a running `mosaicfs server`
#                                     (one keep-alive TLS connection, RUNS_API requests each);
#                                     *_count queries add count=true (exact number of matches)
#   search.ratio.*                    API p50 over plocate median, same run
#   api.files.wrk.*                   wrk -t2 -c16, GET /api/files?limit=50 (closed loop: ceiling)
#   api.files.load1000.*              mosaicfs-bench http-load at 1,000 req/s (open loop): p50/p99
#
# plocate matches whole paths (directories too) and counts; the API matches file names and
# returns pages. Hit counts of both are printed so the difference is visible.
#
# usage: bench/run_search.sh
# knobs: N=500000 RUNS=5 RUNS_API=200 PORT_API=18443 BENCH SHARED_BENCH MOSAICFS_BIN
#        MOSAICFS_BENCH_BIN CARGO_TARGET_DIR (see bench/common.sh)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

need hyperfine
need plocate
need updatedb.plocate plocate
need wrk
need curl
need python3

N=${N:-500000}
RUNS_API=${RUNS_API:-200}
PORT_API=${PORT_API:-18443}
TREE=$BENCH/tree${N}z
PDB=$BENCH/search-plocate.db
AGENT_DB=$BENCH/search-agent.db
DATA=$BENCH/search-hub
OUT=$RES/search-$(date -u +%Y%m%d).txt
URL=https://127.0.0.1:$PORT_API

if [ ! -f "$TREE.ok" ]; then
  echo "generating $N zero-byte files in $TREE" >&2
  rm -rf "$TREE"
  python3 "$SHARED_BENCH/gen_tree.py" "$N" "$TREE" --zero >"$TREE.ok.tmp"
  mv "$TREE.ok.tmp" "$TREE.ok"
fi

build_mosaicfs
build_mosaicfs_bench

# name | query term (the same for plocate and the API)
QUERIES=(
  "rare_pxl_date|PXL_20190704"
  "medium_invoice|invoice"
  "rich_jpg|jpg"
  "nohit|xyzzy"
)

start_server() {
  rm -rf "$DATA"
  mkdir -p "$DATA"
  "$MOSAICFS_BENCH" seed-hub --from "$AGENT_DB" --hub "$DATA/hub.db" | sed 's/^/search./'
  "$MOSAICFS" server --data-dir "$DATA" --listen "127.0.0.1:$PORT_API" --login-per-minute 1000 \
    --log-level warn >"$RES/search.server.out" 2>"$RES/search.server.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local i
  for i in $(seq 1 100); do
    curl -ksf "$URL/health" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RES/search.server.log" >&2; return 1; }
    sleep 0.1
  done
  echo "server did not answer on $URL" >&2
  return 1
}

token() {
  local key secret
  key=$(sed -n 1p "$DATA/secrets/admin.secret")
  secret=$(sed -n 2p "$DATA/secrets/admin.secret")
  curl -ksf "$URL/api/auth/login" -H 'content-type: application/json' \
    -d "{\"access_key_id\":\"$key\",\"secret\":\"$secret\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

medms() { awk -v s="$(med "$1")" 'BEGIN{printf "%.6f", s * 1000}'; }

main() {
  # main runs in a pipeline subshell: it cleans up its own server (lib.sh's cleanup, by PID).
  trap cleanup EXIT
  machine_block search
  echo "# runs: $RUNS (plocate), $RUNS_API (API); tree: $TREE; mosaicfs: $MOSAICFS"
  emit search.tree.files "$N" files
  context search

  # The peer: plocate over the same tree.
  rm -f "$PDB"
  updatedb.plocate -U "$TREE" -o "$PDB" --prunepaths '' --prunefs '' --prune-bind-mounts no -l no
  local q name term
  for q in "${QUERIES[@]}"; do
    name=${q%%|*}; term=${q#*|}
    emit "search.plocate.q.$name.hits" "$(plocate -d "$PDB" -c "$term" || true)" matches
    hf "search.plocate.q.$name" --ms -- -N -i --runs "$RUNS" --warmup 3 "plocate -d $(q "$PDB") -c $(q "$term")"
  done
  hf search.plocate.page.rich_jpg --ms -- -N -i --runs "$RUNS" --warmup 3 "plocate -d $(q "$PDB") -l 100 jpg"

  # Ours: crawl once (kept between runs), push into a fresh hub, query through HTTPS.
  if [ ! -f "$AGENT_DB.ok" ]; then
    rm -f "$AGENT_DB" "$AGENT_DB-wal" "$AGENT_DB-shm"
    "$MOSAICFS" index --db "$AGENT_DB" --json crawl "$TREE" >"$RES/search.crawl.json"
    touch "$AGENT_DB.ok"
  fi
  start_server
  local args=()
  for q in "${QUERIES[@]}"; do
    name=${q%%|*}; term=${q#*|}
    args+=("search.api.$name=/api/search?q=$term&limit=100")
    args+=("search.api.${name}_count=/api/search?q=$term&limit=100&count=true")
  done
  args+=("search.api.glob_2019_pdf=/api/search?q=*2019*.pdf&limit=100")
  "$MOSAICFS_BENCH" http-latency --url "$URL" --admin-secret "$DATA/secrets/admin.secret" \
    --runs "$RUNS_API" --warmup 20 "${args[@]}" | tee "$RES/search.api.out"

  for q in "${QUERIES[@]}"; do
    name=${q%%|*}
    emit "search.ratio.$name.count_p50_over_plocate" \
      "$(div "$(metric "$RES/search.api.out" "search.api.${name}_count.p50")" "$(medms "search.plocate.q.$name")")" x
  done
  emit search.ratio.rich_jpg.page_p50_over_plocate_page \
    "$(div "$(metric "$RES/search.api.out" search.api.rich_jpg.p50)" "$(medms search.plocate.page.rich_jpg)")" x

  # Authenticated throughput: wrk's closed-loop ceiling, then a fixed 1,000 req/s.
  local tok
  tok=$(token)
  wrk -t2 -c16 -d10s --latency -H "Authorization: Bearer $tok" "$URL/api/files?limit=50" >"$RES/api.wrk.txt"
  emit api.files.wrk.requests_per_s "$(awk '/^Requests\/sec/{print $2}' "$RES/api.wrk.txt")" req/s
  emit api.files.wrk.p99 "$(awk '$1=="99%"{print $2}' "$RES/api.wrk.txt")" latency
  "$MOSAICFS_BENCH" http-load --url "$URL" --admin-secret "$DATA/secrets/admin.secret" \
    --name api.files.load1000 --path "/api/files?limit=50" --rate 1000 --duration 10
  emit api.server.peak_rss "$(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status")" MB
  kill "$SERVER_PID" && wait "$SERVER_PID" || true
  context search_end
}

main | tee -a "$OUT"
echo "# results appended to $OUT" >&2
