#!/usr/bin/env bash
# tracing-compare.sh — what tracing costs, in compare.sh's own figures: compare.sh three times,
# with TRACING=no, with TRACING=yes at 1 % sampling (OTEL_TRACES_SAMPLER=traceidratio, ARG 0.01),
# and with TRACING=no again (the drift of the machine between runs). The spans go to a small
# OTLP/HTTP sink on loopback started here (it answers 200 and counts the requests it received).
#
# usage: benchmarks/tracing-compare.sh   (env: ROUNDS, IDLE … as compare.sh; COMPARE (path))
set -u
cd "$(dirname "$0")/.."
COMPARE=${COMPARE:-../shared/bench/compare.sh}
[ -f "$COMPARE" ] || { echo "tracing-compare: no $COMPARE (set COMPARE)" >&2; exit 2; }
export IDLE=${IDLE:-0}
sink_port=17199
node_modules/.bin/node -e '
  let posts = 0;
  require("node:http").createServer((req, res) => {
    req.resume();
    req.on("end", () => { posts++; res.writeHead(200, { "content-type": "application/json" }); res.end("{}"); });
  }).listen(+process.argv[1], "127.0.0.1");
  process.on("SIGTERM", () => { console.log(`sink: ${posts} OTLP requests received`); process.exit(0); });
' "$sink_port" &
sink=$!
trap 'kill -TERM $sink 2>/dev/null; wait $sink 2>/dev/null' EXIT
for variant in off on-1% off-again; do
  case $variant in
    on-1%) envs=(TRACING=yes OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.01
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port") ;;
    *) envs=(TRACING=no) ;;
  esac
  echo "== $variant: ${envs[*]}"
  bash "$COMPARE" -- env "${envs[@]}" node_modules/.bin/node bin/tcpool.js serve 2>&1 | grep -E '^SUMMARY|^  (ours|redis|floor) '
done
