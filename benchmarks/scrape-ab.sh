#!/usr/bin/env bash
# A/B of the serving path: a base commit against the working tree, the same tcpool bench load,
# rounds alternated so drift hits both alike. SCRAPE=1 also scrapes the working tree's /metrics
# every SCRAPE_MS (default 1000) during its runs: what a Prometheus scraper costs under load.
#
#   BASE=main ROUNDS=5 DURATION=10 PIPELINES="1 16" benchmarks/scrape-ab.sh
#   SCRAPE=1 SCRAPE_MS=100 benchmarks/scrape-ab.sh
#
# Prints rps per run and the median per side. Run it on a quiet machine: the figures of a shared
# one move by far more than the few per cent this is meant to show.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-HEAD~1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
PIPELINES=${PIPELINES:-"1 16"}
CONNS=${CONNS:-50}
POOL=${POOL:-1}
base_dir=$(mktemp -d)
trap 'rm -rf "$base_dir"' EXIT
git archive "$BASE" | tar -x -C "$base_dir"
ln -s "$PWD/node_modules" "$base_dir/node_modules"

port() { npx node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

run() { # dir pipeline scrape
  local p a pid scraper=""
  p=$(port); a=$(port)
  PORT=$p HOST=127.0.0.1 THREAD_POOL_SIZE=$POOL LOG_LEVEL=WARN ADMIN_PORT=$a \
    npx node "$1/bin/tcpool.js" serve >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do nc -z 127.0.0.1 "$p" 2>/dev/null && break; sleep 0.1; done
  if [ "$3" = 1 ]; then
    (while :; do curl -s "http://127.0.0.1:$a/metrics" >/dev/null || true; sleep "$(echo "${SCRAPE_MS:-1000}/1000" | bc -l)"; done) &
    scraper=$!
  fi
  npx node bin/tcpool.js bench --port "$p" -c "$CONNS" -P "$2" -d "$DURATION" --json |
    npx node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(Math.round(JSON.parse(s).rps)))'
  [ -n "$scraper" ] && kill "$scraper"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for P in $PIPELINES; do
  : >"$base_dir/a"; : >"$base_dir/b"
  for r in $(seq "$ROUNDS"); do
    a=$(run "$base_dir" "$P" 0); b=$(run "$PWD" "$P" "${SCRAPE:-0}")
    echo "P=$P round $r: base $a rps, tree $b rps"
    echo "$a" >>"$base_dir/a"; echo "$b" >>"$base_dir/b"
  done
  ma=$(median <"$base_dir/a"); mb=$(median <"$base_dir/b")
  echo "P=$P median: base $ma rps, tree $mb rps ($(echo "scale=2; 100*($mb-$ma)/$ma" | bc)%)"
done
