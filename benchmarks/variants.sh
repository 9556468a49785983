# variants.sh — sourced by ab.sh and resp-ab.sh: starts one server per VARIANT
# ("name=ENV=VALUE,ENV=VALUE": RUNTIME=bun runs it on Bun, SERVER=seed runs ../shared/tools'
# seedserver, SRC=DIR runs the tcpool checked out in DIR, e.g. a `git worktree` of the commit
# before a change), each on its own port from $1, with ADMIN_PORT=off and $SERVER_ENV applied to all;
# then waits until each listens (PIN_SERVER=CPUS runs every server under `taskset -c CPUS`).
# Fills pids, names, ports; logs go to /tmp/$LOG_PREFIX-NAME.log;
# every process started is ended on exit.
TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
NODE=node_modules/.bin/node # the pinned Node (the bare `node` may be older)
BUN=node_modules/@oven/bun-linux-x64/bin/bun
pids=() names=() ports=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM
. benchmarks/lib.sh

# start_variants FIRST_PORT VARIANT…
start_variants() {
  local port=$1 v name envs e cmd kv
  shift
  for v in "$@"; do
    name=${v%%=*} envs=${v#*=}
    cmd=("$NODE" bin/tcpool.js serve)
    IFS=, read -r -a kv <<<"${SERVER_ENV:-}${SERVER_ENV:+,}$envs"
    for e in "${kv[@]}"; do
      [ "$e" = RUNTIME=bun ] && cmd=("$BUN" bin/tcpool.js serve)
      [ "$e" = SERVER=seed ] && cmd=("$TOOLS_BIN/seedserver")
      [ "${e%%=*}" = SRC ] && cmd=("$NODE" "${e#SRC=}/bin/tcpool.js" serve)
    done
    [ -n "${PIN_SERVER:-}" ] && cmd=(taskset -c "$PIN_SERVER" "${cmd[@]}")
    env PORT=$port HOST=127.0.0.1 LOG_LEVEL=WARN ADMIN_PORT=off "${kv[@]}" "${cmd[@]}" \
      >"/tmp/$LOG_PREFIX-$name.log" 2>&1 &
    pids+=($!) names+=("$name") ports+=($port)
    port=$((port + 1))
  done
}

# wait_variants: every port started so far listens, or the script stops with the log's end.
wait_variants() {
  local i
  for i in "${!ports[@]}"; do
    for _ in $(seq 1 200); do [ -n "$(listener_pid "${ports[$i]}")" ] && break; sleep 0.1; done
    [ -n "$(listener_pid "${ports[$i]}")" ] || {
      echo "$LOG_PREFIX: ${names[$i]} did not start:" >&2
      tail -5 "/tmp/$LOG_PREFIX-${names[$i]}.log" >&2 2>/dev/null
      exit 2
    }
  done
}
