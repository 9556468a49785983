#!/usr/bin/env bash
# accept-rss.sh — what the net.Socket that net.Server makes for each accepted connection costs in
# RSS when thousands arrive at once, tcpool aside: a bare listener keeps each accepted libuv
# handle, (a) taken from the net.Socket net.Server made (which is then garbage, as tcpool's
# handle path did before acceptHandles), or (b) taken in the listener's onconnection, before
# any net.Socket. RSS 6 s after `linegen --idle N` (compare.sh's idle method), ROUNDS rounds.
#
# usage: benchmarks/accept-rss.sh   (env: N (10000), ROUNDS (3), TOOLS_BIN (/tmp/tcpool-tools))
set -u
cd "$(dirname "$0")/.."
N=${N:-10000} ROUNDS=${ROUNDS:-3} TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
. benchmarks/lib.sh
build_tools accept-rss
port=17431 server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null' EXIT
LISTENER='
  const net = require("node:net");
  const [mode, port] = [process.argv[1], +process.argv[2]];
  const kept = [];
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const handle = socket._handle;
    socket._handle = null;
    for (const k of Object.getOwnPropertySymbols(handle)) if (handle[k] === socket) handle[k] = null;
    kept.push(handle);
  });
  server.listen({ port, host: "127.0.0.1", backlog: 4096 }, () => {
    if (mode === "b") server._handle.onconnection = (err, handle) => { if (!err) kept.push(handle); };
  });
  setInterval(() => {}, 1000);
'
for round in $(seq 1 "$ROUNDS"); do
  for mode in a b; do
    node_modules/.bin/node -e "$LISTENER" "$mode" "$port" &
    server=$!
    sleep 1.5
    r0=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
    "$TOOLS_BIN/linegen" -p $port -c 1 -n 0 -d 8 --stall 20 --idle "$N" -q --csv >/dev/null 2>&1 &
    lg=$!
    sleep 6
    r1=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
    kill "$lg" "$server" 2>/dev/null; wait "$lg" "$server" 2>/dev/null; server=
    label=$([ $mode = a ] && echo "net.Socket made, then dropped" || echo "no net.Socket (onconnection)")
    printf 'round=%d %-32s %5d B/connection\n' "$round" "$label" $(( (r1 - r0) * 1024 / N ))
  done
done
