#!/usr/bin/env bash
# ab.sh — A/B comparison of server variants, interleaved (a, b, a, b …) so that the noise of a
# shared machine falls on every variant alike. Each variant runs as its own server process for the
# whole comparison; linegen loads one at a time. Per run: requests/s, p99, and the server's user
# and system CPU per request from /proc/PID/stat (every thread: supervisor, workers, V8 helpers).
#
# usage: benchmarks/ab.sh [VARIANT …]
#   VARIANT: "name=ENV=VALUE,ENV=VALUE" (environment for that server), e.g.
#     benchmarks/ab.sh stream=TCP_READ_PATH=stream onread=TCP_READ_PATH=auto
#   A variant's environment may set RUNTIME=bun to start it with Bun instead of Node, or
#   SERVER=seed to start ../shared/tools' seedserver (the original design) instead of tcpool.
# env: ROUNDS (3) CONNS (50) P (1) N (200000) REQ ('PING\r\n') EXPECT (PONG)
#      SERVER_ENV (applies to every variant, e.g. THREAD_POOL_SIZE=1) TOOLS_BIN (/tmp/tcpool-tools)
#      PIN_SERVER, PIN_LOAD: CPU lists for `taskset -c`, the servers' and linegen's (e.g. 1 and 0
#      with SERVER_ENV=THREAD_POOL_SIZE=1: one worker on its own core, far less noise on 2 cores)
# prints one line per run, then the median of each variant.
set -u
cd "$(dirname "$0")/.."
TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-50} P=${P:-1} N=${N:-200000}
REQ=${REQ:-'PING\r\n'} EXPECT=${EXPECT:-PONG} SERVER_ENV=${SERVER_ENV:-}
[ $# -gt 0 ] || set -- "default="
. benchmarks/lib.sh
build_tools ab
TICK=$(getconf CLK_TCK)
LOG_PREFIX=ab
. benchmarks/variants.sh
start_variants 17201 "$@"
wait_variants

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
declare -A R
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!ports[@]}"; do
    pid=$(listener_pid "${ports[$i]}")
    read -r u0 s0 < <(cpu_ticks "$pid")
    line=$(${PIN_LOAD:+taskset -c "$PIN_LOAD"} "$TOOLS_BIN/linegen" -p "${ports[$i]}" -c "$CONNS" -P "$P" -n "$N" -d 60 -r "$REQ" -e "$EXPECT" -q --csv 2>/dev/null | tail -1)
    read -r u1 s1 < <(cpu_ticks "$pid")
    IFS=, read -r _ _ _ _ _ reqs errs _ _ _ _ _ _ rps _ _ p99 _ <<<"$line"
    out=$(awk -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v n="${reqs:-0}" -v t="$TICK" \
      'BEGIN{ if (n>0) printf "%.3f %.3f", u*1e6/t/n, s*1e6/t/n; else print "nan nan" }')
    read -r us ss <<<"$out"
    printf '%-10s round=%s rps=%-9.0f p99_us=%-7s user_us=%-6s sys_us=%-6s errors=%s\n' \
      "${names[$i]}" "$r" "${rps:-0}" "${p99:-nan}" "$us" "$ss" "${errs:-?}"
    R[${names[$i]}]+="${rps:-0} ${p99:-nan} $us $ss"$'\n'
  done
done
med() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else print a[int((NR+1)/2)] }'; }
echo "medians of $ROUNDS rounds (-c $CONNS -P $P -n $N):"
for name in "${names[@]}"; do
  col() { printf '%s' "${R[$name]}" | awk -v c="$1" 'NF{print $c}' | med; }
  printf '  %-10s rps=%-9.0f p99_us=%-7s user_us_per_req=%-6s sys_us_per_req=%s\n' \
    "$name" "$(col 1)" "$(col 2)" "$(col 3)" "$(col 4)"
done
