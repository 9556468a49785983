#!/usr/bin/env bash
# tracing-threads.sh — where 1 % sampling's cost lands, thread by thread: one server with
# TRACING=no and one with TRACING=yes at 1 % (OTEL_TRACES_SAMPLER=traceidratio, ARG 0.01),
# alternated PAIRS times; each takes a warm-up and then N requests of linegen at P=16 (as
# compare.sh's P=16 load: 50 connections), and the CPU each of its threads used meanwhile is read
# from /proc (schedstat). Prints per run the CPU per request of the workers, the supervisor (the
# main thread: it sends the spans), V8's helper threads and the total, then the medians and the
# median of on/off per pair. The spans go to a small OTLP/HTTP sink on loopback started here.
#
# usage: benchmarks/tracing-threads.sh   (env: PAIRS (5), N (8000000), WARM (2000000: the
#        warm-up requests), SAMPLE (0.01),
#        TOOLS_BIN (/tmp/tcpool-tools), and any OTEL_* for the "on" server)
set -u
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-5} N=${N:-8000000} WARM=${WARM:-2000000} SAMPLE=${SAMPLE:-0.01}
TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
. benchmarks/lib.sh
build_tools tracing-threads
LG=$TOOLS_BIN/linegen
port=17301 sink_port=17199
node_modules/.bin/node -e '
  require("node:http").createServer((req, res) => {
    req.resume();
    req.on("end", () => { res.writeHead(200, { "content-type": req.headers["content-type"] }); res.end(); });
  }).listen(+process.argv[1], "127.0.0.1");
' "$sink_port" &
sink=$!
server=
trap 'kill -TERM $sink 2>/dev/null; [ -n "$server" ] && kill -TERM -- -$server 2>/dev/null; wait 2>/dev/null' EXIT
snap() { for t in /proc/$1/task/*; do read -r ns _ < "$t/schedstat" && echo "$(basename "$t") $(tr ' ' _ < "$t/comm") $ns"; done 2>/dev/null; }
out=$(mktemp)
for pair in $(seq 1 "$PAIRS"); do
  for variant in off on; do
    case $variant in
      on) envs=(TRACING=yes OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG="$SAMPLE"
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port") ;;
      *) envs=(TRACING=no) ;;
    esac
    setsid env PORT=$port "${envs[@]}" node_modules/.bin/node bin/tcpool.js serve >/dev/null 2>&1 &
    server=$!
    pid=$(wait_listener $port) || { echo "tracing-threads: the server did not listen on $port" >&2; exit 2; }
    "$LG" -p $port -c 50 -P 16 -n "$WARM" -d 120 -e PONG -q --csv >/dev/null 2>&1
    before=$(snap "$pid")
    line=$("$LG" -p $port -c 50 -P 16 -n "$N" -d 120 -e PONG -q --csv 2>/dev/null | tail -1)
    after=$(snap "$pid")
    IFS=, read -r _ _ _ _ _ reqs _ _ _ _ _ _ _ rps _ <<<"$line"
    join <(sort <<<"$before") <(sort <<<"$after") | awk -v v="$variant" -v p="$pair" -v n="$reqs" -v rps="$rps" '
      { d = ($5 - $3) / 1000 / n; c = $2 == "WorkerThread" ? "workers" : $2 == "MainThread" ? "supervisor" : $2 ~ /^V8/ ? "v8_helpers" : "other"; s[c] += d; t += d }
      END { printf "%s pair=%d rps=%.0f workers=%.4f supervisor=%.4f v8_helpers=%.4f other=%.4f total=%.4f\n", v, p, rps, s["workers"], s["supervisor"], s["v8_helpers"], s["other"], t }' | tee -a "$out"
    kill -TERM -- -"$server" 2>/dev/null; wait "$server" 2>/dev/null; server=
  done
done
# Medians (µs of CPU per request) and the median of each pair's on/off.
awk '
  { v = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); x[v, kv[1], ++n[v, kv[1]]] = kv[2]; if (kv[1] == "pair") p = kv[2] }
    if (v == "on") r[++m] = x["on", "total", n["on", "total"]] / x["off", "total", n["off", "total"]] }
  function median(a, k,   i, j, t, b) {
    for (i = 1; i <= k; i++) b[i] = a[i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
    return k % 2 ? b[(k + 1) / 2] : (b[k / 2] + b[k / 2 + 1]) / 2
  }
  END {
    split("rps workers supervisor v8_helpers total", keys, " ")
    for (q = 1; q <= 5; q++) {
      line = sprintf("median %-11s", keys[q])
      for (w = 0; w < 2; w++) { v = w ? "on" : "off"; delete a; for (i = 1; i <= n[v, keys[q]]; i++) a[i] = x[v, keys[q], i]; line = line sprintf(" %s=%s", v, median(a, n[v, keys[q]])) }
      print line
    }
    printf "total CPU per request, on/off per pair:"; for (i = 1; i <= m; i++) printf " %.3f", r[i]; printf "; median %.3f\n", median(r, m)
  }' "$out"
