#!/usr/bin/env bash
# tracing-compare.sh — what tracing costs, in compare.sh's own figures: compare.sh with TRACING=no
# and with TRACING=yes at 1 % sampling (OTEL_TRACES_SAMPLER=traceidratio, ARG 0.01), alternated
# PAIRS times (off, on, off, on …) so that the machine's drift falls on both alike. Each run's
# figures are taken relative to Redis in the same run (compare.sh's SUMMARY), and the script
# prints the median of each and on/off. The spans go to a small OTLP/HTTP sink on loopback
# started here (it answers 200 and counts the requests, bytes and CPU it used).
#
# usage: benchmarks/tracing-compare.sh   (env: PAIRS (3), SAMPLE (0.01), ROUNDS, IDLE (0) … as
#        compare.sh; COMPARE (path of compare.sh))
set -u
cd "$(dirname "$0")/.."
COMPARE=${COMPARE:-../shared/bench/compare.sh}
[ -f "$COMPARE" ] || { echo "tracing-compare: no $COMPARE (set COMPARE)" >&2; exit 2; }
export IDLE=${IDLE:-0}
PAIRS=${PAIRS:-3} SAMPLE=${SAMPLE:-0.01}
sink_port=17199
# The sink runs at normal priority, as a collector reads its socket promptly: starved (nice 19)
# on 2 busy cores it read late, and every export became many small writes (measured: +11–18 %
# instead of +2 %). Its own CPU is printed at the end (well under a second for a whole run).
node_modules/.bin/node -e '
  let posts = 0, bytes = 0;
  require("node:http").createServer((req, res) => {
    req.on("data", (d) => (bytes += d.length));
    req.on("end", () => { posts++; res.writeHead(200, { "content-type": req.headers["content-type"] }); res.end(); });
  }).listen(+process.argv[1], "127.0.0.1");
  process.on("SIGTERM", () => {
    const cpu = process.cpuUsage();
    console.log(`sink: ${posts} OTLP requests received, ${bytes} bytes, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of CPU`);
    process.exit(0);
  });
' "$sink_port" &
sink=$!
trap 'kill -TERM $sink 2>/dev/null; wait $sink 2>/dev/null' EXIT
out=$(mktemp)
for pair in $(seq 1 "$PAIRS"); do
  for variant in off on; do
    case $variant in
      on) envs=(TRACING=yes OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG="$SAMPLE"
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port") ;;
      *) envs=(TRACING=no) ;;
    esac
    echo "== pair $pair, $variant: ${envs[*]}"
    lines=$(bash "$COMPARE" -- env "${envs[@]}" node_modules/.bin/node bin/tcpool.js serve 2>&1 |
      grep -E '^SUMMARY|^  (ours|redis) ')
    echo "$lines"
    sed -n "s/^SUMMARY/$variant/p" <<<"$lines" >>"$out"
  done
done
# The medians of each variant's ratios to Redis, and on/off.
awk '
  { v = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); x[v, kv[1], ++n[v, kv[1]]] = kv[2] } }
  function median(v, k,   m, i, j, t, a) {
    m = n[v, k]; for (i = 1; i <= m; i++) a[i] = x[v, k, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END {
    split("p1_rps_vs_redis p1_cpu_vs_redis p16_rps_vs_redis p16_cpu_vs_redis", keys, " ")
    printf "medians of %d pairs:\n", n["off", "p16_cpu_vs_redis"]
    for (i = 1; i <= 4; i++) {
      k = keys[i]; a = median("off", k); b = median("on", k)
      printf "  %-17s off=%.2f on=%.2f on/off=%.3f\n", k, a, b, b / a
    }
  }' "$out"
rm -f "$out"
