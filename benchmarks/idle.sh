#!/usr/bin/env bash
# idle.sh — what idle connections cost a fresh server: its RSS before any client, then after each
# of STEPS batches of N idle connections (each batch stays open until the end), so the first batch
# (what compare.sh's idle figure measures on a fresh server) can be told from the marginal cost of
# the next ones. Batches over 25,000 connections spread over 127.0.0.2, .3 … (one source port
# range per destination address); the server then binds 0.0.0.0 (protected mode still serves
# only loopback clients) and needs `ulimit -n` above STEPS × N.
#
# usage: benchmarks/idle.sh [VARIANT …]   (VARIANT as in ab.sh: "name=ENV=VALUE,ENV=VALUE")
# env: N (10000) STEPS (3) SETTLE (5 s after each batch) TOOLS_BIN (/tmp/tcpool-tools)
#      ACTIVE=1: linegen's one active connection sends PINGs all along, as in compare.sh's idle
#      run (default 0: it sends the header of a RESP request that never ends, so nothing runs; the
#      server gets REQUEST_TIMEOUT_MS=0 so that it is not closed)
#      e.g. N=10000 benchmarks/idle.sh node= bun=RUNTIME=bun yg2=WORKER_YOUNG_GENERATION_MB=2
set -u
cd "$(dirname "$0")/.."
TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
N=${N:-10000} STEPS=${STEPS:-3} SETTLE=${SETTLE:-5} ACTIVE=${ACTIVE:-0}
if [ "$ACTIVE" = 1 ]; then req=(-r 'PING\r\n'); else req=(-r '*2\r\n' --stall 600); fi
[ $# -gt 0 ] || set -- "default="
. benchmarks/lib.sh
build_tools idle
NODE=node_modules/.bin/node
BUN=node_modules/@oven/bun-linux-x64/bin/bun
PER_ADDR=25000
host=127.0.0.1 spread=0
[ $((N * STEPS)) -gt $PER_ADDR ] && host=0.0.0.0 spread=1
port=17401
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
hold=$(( (SETTLE + 3) * (STEPS + 1) + 10 ))

for v in "$@"; do
  name=${v%%=*} envs=${v#*=}
  cmd=("$NODE" bin/tcpool.js serve)
  IFS=, read -r -a kv <<<"$envs"
  for e in "${kv[@]}"; do [ "$e" = RUNTIME=bun ] && cmd=("$BUN" bin/tcpool.js serve); done
  env PORT=$port HOST=$host LOG_LEVEL=WARN MAX_CONNECTIONS=$((N * STEPS + 100)) \
    REQUEST_TIMEOUT_MS=0 "${kv[@]}" \
    "${cmd[@]}" >"/tmp/idle-$name.log" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do [ -n "$(listener_pid $port)" ] && break; sleep 0.1; done
  pid=$(listener_pid $port)
  [ -n "$pid" ] || { echo "idle: $name did not start" >&2; tail /tmp/idle-$name.log >&2; exit 2; }
  sleep 2
  r0=$(rss_kb "$pid") prev=$r0 gens=()
  printf '%-10s fresh RSS %d KiB\n' "$name" "$r0"
  for step in $(seq 1 "$STEPS"); do
    left=$N addr=1
    while [ "$left" -gt 0 ]; do
      n=$(( left > PER_ADDR ? PER_ADDR : left ))
      to=127.0.0.1
      [ $spread = 1 ] && to="127.0.0.$(( (step - 1) * ((N + PER_ADDR - 1) / PER_ADDR) + addr ))"
      "$TOOLS_BIN/linegen" -h "$to" -p $port -c 1 -n 0 -d "$hold" "${req[@]}" --idle "$n" -q \
        --csv >/dev/null 2>&1 &
      gens+=($!)
      left=$((left - n)) addr=$((addr + 1))
    done
    sleep "$SETTLE"
    r=$(rss_kb "$pid")
    printf '%-10s after %7d idle: RSS %7d KiB  +%5d B/connection for this batch\n' \
      "$name" $((step * N)) "$r" $(( (r - prev) * 1024 / N ))
    prev=$r
  done
  printf '%-10s %d idle connections: %d B/connection over the fresh server\n' \
    "$name" $((STEPS * N)) $(( (prev - r0) * 1024 / (STEPS * N) ))
  for g in "${gens[@]}"; do kill -TERM "$g" 2>/dev/null; done
  wait "${gens[@]}" 2>/dev/null
  kill -TERM "$server"; wait "$server" 2>/dev/null
  port=$((port + 1))
done
