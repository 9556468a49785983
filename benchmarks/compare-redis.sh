#!/usr/bin/env bash
# compare-redis.sh: tcpool beside a local redis-server, the same `tcpool bench` load (RESP PING by
# default) on both, in one run on one machine. Needs redis-server (Debian: apt-get install
# redis-server) and `npm ci` done. Everything stays on 127.0.0.1; every process started here is
# ended by its pid on exit.
#
# usage: benchmarks/compare-redis.sh            (from any directory)
# env:   ROUNDS (3)  CONNS (50)  N (200000 requests per run)  PIPELINES ("1 16")
#        COMMAND (PING)  THREADS (client threads, 1)  SERVE_ENV (extra env for tcpool, e.g.
#        "THREAD_POOL_SIZE=2 AUTH_TOKENS=…")
# prints one line per run, medians, then
#   SUMMARY P=1 rps_vs_redis=… cpu_vs_redis=… p99_vs_redis=… P=16 …
# A ratio above 1 means "more than Redis": good for rps, bad for cpu (CPU µs per request, read
# from /proc) and p99 latency.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
node=$root/node_modules/.bin/node
ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-50} N=${N:-200000} PIPELINES=${PIPELINES:-"1 16"}
COMMAND=${COMMAND:-PING} THREADS=${THREADS:-1} SERVE_ENV=${SERVE_ENV:-}
P_OURS=${P_OURS:-17201} P_REDIS=${P_REDIS:-17202}

[ -x "$node" ] || { echo "compare-redis: run npm ci in $root first" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "compare-redis: redis-server not installed (apt-get install redis-server)" >&2; exit 2; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM

# shellcheck disable=SC2086 # SERVE_ENV is a list of NAME=value words
env PORT=$P_OURS HOST=127.0.0.1 LOG_LEVEL=WARN $SERVE_ENV "$node" "$root/bin/tcpool.js" serve >/tmp/compare-redis-tcpool.log 2>&1 &
pids+=($!); OURS=$!
redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
pids+=($!); REDIS=$!

wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
wait_port $P_OURS || { echo "compare-redis: tcpool did not listen on $P_OURS; its log:" >&2; tail -20 /tmp/compare-redis-tcpool.log >&2; exit 2; }
wait_port $P_REDIS || { echo "compare-redis: redis-server did not listen on $P_REDIS" >&2; exit 2; }

cpu_ns() { local t=0 a; for f in /proc/$1/task/*/schedstat; do read -r a _ < "$f" 2>/dev/null && t=$((t+a)); done; echo $t; }

declare -A R # R[name,P] = lines of "rps cpu_us_per_req p99_us errors"
measure() { # name pid port P
  local c0 c1 json fields
  c0=$(cpu_ns "$2")
  json=$("$node" "$root/bin/tcpool.js" bench --port "$3" --protocol resp --command "$COMMAND" \
    -c "$CONNS" -P "$4" -n "$N" -t "$THREADS" --json)
  c1=$(cpu_ns "$2")
  fields=$(printf '%s' "$json" | "$node" -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const [c0, c1] = process.argv.slice(1).map(Number);
    const cpu = r.requests > 0 ? ((c1 - c0) / 1000 / r.requests).toFixed(3) : "nan";
    console.log(Math.round(r.rps), cpu, r.latencyUs.p99, r.errors + r.problems.length);
  ' "$c0" "$c1") || fields="0 nan nan 1"
  read -r rps cpu p99 errs <<<"$fields"
  printf '%-6s P=%-3s rps=%-9s cpu_us_per_req=%-7s p99_us=%-7s errors=%s\n' "$1" "$4" "$rps" "$cpu" "$p99" "$errs"
  R[$1,$4]+="$fields"$'\n'
}
for _ in $(seq 1 "$ROUNDS"); do
  for P in $PIPELINES; do
    measure tcpool "$OURS" $P_OURS "$P"
    measure redis "$REDIS" $P_REDIS "$P"
  done
done

med() { sort -g | awk '{a[NR]=$1} END { if (NR == 0) print "nan"; else print a[int((NR+1)/2)] }'; }
col() { printf '%s' "${R[$1,$2]:-}" | awk -v c="$3" 'NF { print $c }' | med; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b+0 > 0 && a != "nan") printf "%.2f", a/b; else print "nan" }'; }
echo "medians of $ROUNDS rounds (-c $CONNS -n $N, RESP \"$COMMAND\"):"
summary="SUMMARY"
for P in $PIPELINES; do
  for s in tcpool redis; do
    printf '  %-6s P=%-3s rps=%-9s cpu_us_per_req=%-7s p99_us=%s\n' $s "$P" "$(col $s "$P" 1)" "$(col $s "$P" 2)" "$(col $s "$P" 3)"
  done
  summary+=" P=$P rps_vs_redis=$(ratio "$(col tcpool "$P" 1)" "$(col redis "$P" 1)")"
  summary+=" cpu_vs_redis=$(ratio "$(col tcpool "$P" 2)" "$(col redis "$P" 2)")"
  summary+=" p99_vs_redis=$(ratio "$(col tcpool "$P" 3)" "$(col redis "$P" 3)")"
done
errors=$(for k in "${!R[@]}"; do printf '%s' "${R[$k]}"; done | awk 'NF { s += $4 } END { print s+0 }')
echo "$summary errors=$errors"
[ "$errors" = 0 ]
