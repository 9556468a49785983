#!/usr/bin/env bash
# resp-ab.sh — RESP throughput and server CPU against redis-server, interleaved: for each round,
# `redis-benchmark -t ping_mbulk -c 50 -n N -P 16` against each variant and then Redis.
#
# usage: benchmarks/resp-ab.sh [VARIANT …]   (VARIANT as in ab.sh: "name=ENV=VALUE,ENV=VALUE")
#   e.g. benchmarks/resp-ab.sh node= bun=RUNTIME=bun
# env: ROUNDS (3) N (1000000) P (16) CONNS (50)
set -u
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} N=${N:-1000000} P=${P:-16} CONNS=${CONNS:-50}
[ $# -gt 0 ] || set -- "node="
command -v redis-benchmark >/dev/null || { echo "resp-ab: redis-benchmark missing (apt-get install redis-tools)" >&2; exit 2; }
TICK=$(getconf CLK_TCK)
LOG_PREFIX=resp-ab
. benchmarks/variants.sh
start_variants 17501 "$@"
port=$((17501 + $#))
redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no >"/tmp/resp-ab-redis.log" 2>&1 &
pids+=($!) names+=(redis) ports+=($port)
wait_variants

declare -A R
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!ports[@]}"; do
    pid=$(listener_pid "${ports[$i]}")
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    rps=$(redis-benchmark -p "${ports[$i]}" -t ping_mbulk -c "$CONNS" -n "$N" -P "$P" -q 2>/dev/null |
      grep -o '[0-9.]* requests per second' | cut -d' ' -f1)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    cpu=$(awk -v c="$((u1 + s1 - u0 - s0))" -v n="$N" -v t="$TICK" 'BEGIN{printf "%.3f", c*1e6/t/n}')
    printf '%-8s round=%s rps=%-10s cpu_us_per_req=%s\n' "${names[$i]}" "$r" "${rps:-0}" "$cpu"
    R[${names[$i]}]+="${rps:-0} $cpu"$'\n'
  done
done
med() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "nan"; else print a[int((NR+1)/2)] }'; }
echo "medians of $ROUNDS rounds (redis-benchmark -t ping_mbulk -c $CONNS -n $N -P $P):"
redis_rps=$(printf '%s' "${R[redis]}" | awk 'NF{print $1}' | med)
redis_cpu=$(printf '%s' "${R[redis]}" | awk 'NF{print $2}' | med)
for name in "${names[@]}"; do
  rps=$(printf '%s' "${R[$name]}" | awk 'NF{print $1}' | med)
  cpu=$(printf '%s' "${R[$name]}" | awk 'NF{print $2}' | med)
  printf '  %-8s rps=%-10s (%.2fx redis)  cpu_us_per_req=%s (%.2fx redis)\n' "$name" "$rps" \
    "$(awk -v a="$rps" -v b="$redis_rps" 'BEGIN{print a/b}')" "$cpu" \
    "$(awk -v a="$cpu" -v b="$redis_cpu" 'BEGIN{print a/b}')"
done
