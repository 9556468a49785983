#!/usr/bin/env bash
# scale.sh — the worker-scaling curve: requests/s, p99 and server CPU per request for
# THREAD_POOL_SIZE = each of WORKERS, at pipeline depths 16 and 1, on a many-core machine.
#
# Placement: the load generator (linegen, LG_THREADS threads) runs on the top LG_CORES cores; a
# server with W workers is pinned to cores 0..W-1 (workers, supervisor and V8 helpers together:
# "W cores"), as long as W + LG_CORES <= nproc. Bigger W are run unpinned beside the load generator
# and marked "shared". linegen's own CPU use is printed (lg_cpu = busy fraction of its cores): when
# it nears 1.0 the load generator, not the server, sets the figure.
#
# usage: benchmarks/scale.sh
# env: RUNTIMES ("node") — any of node, bun, c (../shared/tools' epollserver -t W: the same
#      load generator against the simplest C server, the ceiling of this machine and load); WORKERS ("1 2 4 8 16"); PIPES ("16 1");
#      CONNS (800) DURATION (5 s) LG_CORES (nproc/2) LG_THREADS (LG_CORES)
#      NODE, BUN (binaries; default the pinned ones in node_modules) TOOLS_BIN (/tmp/tcpool-tools)
#      CONNECT_RATE (1): also `tcpool bench --connect-rate -c 64` at the smallest and largest W.
# prints one line per run: runtime workers P placement rps p99_us cpu_us_per_req lg_cpu errors
set -u
cd "$(dirname "$0")/.."
NCPU=$(nproc)
RUNTIMES=${RUNTIMES:-node} WORKERS=${WORKERS:-1 2 4 8 16} PIPES=${PIPES:-16 1}
CONNS=${CONNS:-800} DURATION=${DURATION:-5} CONNECT_RATE=${CONNECT_RATE:-1}
LG_CORES=${LG_CORES:-$((NCPU / 2))}
LG_CORES=$((LG_CORES < 1 ? 1 : LG_CORES))
LG_THREADS=${LG_THREADS:-$LG_CORES}
NODE=${NODE:-node_modules/.bin/node}
BUN=${BUN:-node_modules/@oven/bun-linux-x64/bin/bun}
TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
[ -x "$TOOLS_BIN/linegen" ] || make -s -C ../shared/tools BIN="$TOOLS_BIN" >/dev/null ||
  { echo "scale: no linegen in $TOOLS_BIN and cannot build it" >&2; exit 2; }
TICK=$(getconf CLK_TCK)
LG_SET="$((NCPU - LG_CORES))-$((NCPU - 1))"
PORT=${PORT:-17301}

pid=''
stop() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=''; }
trap stop EXIT INT TERM

# start RUNTIME W: the server, pinned or not; waits for "Server listening" (every worker listens).
start() {
  local bin=$NODE pin=()
  [ "$1" = bun ] && bin=$BUN
  if [ $(($2 + LG_CORES)) -le "$NCPU" ]; then placement=pinned pin=(taskset -c "0-$(($2 - 1))")
  else placement=shared; fi
  if [ "$1" = c ]; then
    "${pin[@]}" "$TOOLS_BIN/epollserver" -t "$2" -p "$PORT" >/tmp/scale-server.log 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do
      (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && sleep 0.2 && return 0
      sleep 0.1
    done
    echo "scale: epollserver did not start" >&2
    return 1
  fi
  env PORT=$PORT HOST=127.0.0.1 THREAD_POOL_SIZE="$2" MAX_CONNECTIONS=100000 ADMIN_PORT=off \
    LOG_LEVEL=INFO "${pin[@]}" "$bin" bin/tcpool.js serve >/tmp/scale-server.log 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    grep -q 'Server listening' /tmp/scale-server.log && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "scale: $1 with $2 workers did not start:" >&2
  tail -5 /tmp/scale-server.log >&2
  return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One linegen run; prints "rps p99 cpu_us_per_req lg_cpu errors".
load() {
  local c0 c1 out
  c0=$(cpu_ticks "$pid")
  out=$(python3 - "$TOOLS_BIN/linegen" -p "$PORT" -c "$CONNS" -P "$1" -t "$LG_THREADS" -n 0 \
    -d "$DURATION" -e PONG -q --csv <<'PY'
import os, resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(['taskset', '-c', os.environ['LG_SET']] + sys.argv[1:],
                   capture_output=True, text=True)
wall = time.monotonic() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
line = (p.stdout.strip().splitlines() or [''])[-1]
print(line + '|' + str((r.ru_utime + r.ru_stime) / wall))
PY
)
  c1=$(cpu_ticks "$pid")
  IFS='|' read -r csv lgbusy <<<"$out"
  IFS=, read -r _ _ _ _ _ reqs errs _ _ _ _ _ _ rps _ _ p99 _ <<<"$csv"
  awk -v d="$((c1 - c0))" -v n="${reqs:-0}" -v t="$TICK" -v rps="${rps:-0}" -v p99="${p99:-nan}" \
    -v lg="$lgbusy" -v k="$LG_CORES" -v e="${errs:-?}" \
    'BEGIN{ printf "%.0f %s %.3f %.2f %s", rps, p99, (n>0 ? d*1e6/t/n : 0), lg/k, e }'
}

export LG_SET
echo "# $(date -u +%FT%TZ) nproc=$NCPU model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# linegen: -c $CONNS -t $LG_THREADS -d $DURATION on cores $LG_SET; kernel $(uname -r)"
printf '%-7s %-7s %-3s %-9s %-10s %-8s %-12s %-7s %s\n' \
  runtime workers P placement rps p99_us cpu_us/req lg_cpu errors
for rt in $RUNTIMES; do
  for w in $WORKERS; do
    start "$rt" "$w" || continue
    for p in $PIPES; do
      read -r rps p99 cpu lg errs < <(load "$p")
      printf '%-7s %-7s %-3s %-9s %-10s %-8s %-12s %-7s %s\n' \
        "$rt" "$w" "$p" "$placement" "$rps" "$p99" "$cpu" "$lg" "$errs"
    done
    if [ "$CONNECT_RATE" = 1 ] && [ "$rt" != c ]; then
      first=${WORKERS%% *} last=${WORKERS##* }
      if [ "$w" = "$first" ] || [ "$w" = "$last" ]; then
        printf '%-7s %-7s connect-rate: ' "$rt" "$w"
        taskset -c "$LG_SET" "$NODE" bin/tcpool.js bench --port "$PORT" --connect-rate -c 64 \
          -n 20000 2>&1 | grep -E -o '[0-9.]+ conn/s|p99 [0-9.]+ ms|errors [0-9]+' | tr '\n' ' '
        echo
      fi
    fi
    stop
  done
done
