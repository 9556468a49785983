#!/usr/bin/env bash
# idle-split.sh — compare.sh's idle figure on a fresh server (its method: RSS when the port opens,
# then 6 s after `linegen --idle 10000` with one connection sending PINGs), split by the kind of
# memory that grew, from /proc/PID/smaps: V8's heap pages (anonymous mappings in multiples of
# 256 KiB), other anonymous memory (malloc arenas of the threads: libuv handles, Node's C++ wraps,
# message buffers), the main thread's brk heap. Variants alternate, RUNS rounds.
#
# usage: benchmarks/idle-split.sh [VARIANT …]   (VARIANT as in ab.sh: "name=ENV=VALUE,ENV=VALUE";
#        SRC=DIR among them runs the tcpool checked out in DIR)
# env: RUNS (3), IDLE (10000), TOOLS_BIN (/tmp/tcpool-tools)
#      e.g. RUNS=3 benchmarks/idle-split.sh default= yg1=WORKER_YOUNG_GENERATION_MB=1 warn=LOG_LEVEL=WARN
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} IDLE=${IDLE:-10000} TOOLS_BIN=${TOOLS_BIN:-/tmp/tcpool-tools}
. benchmarks/lib.sh
build_tools idle-split
[ $# -gt 0 ] || set -- "default="
port=17411 server=
trap '[ -n "$server" ] && kill -TERM -- -"$server" 2>/dev/null; wait 2>/dev/null' EXIT
snap() { # pid file: "start size_kib rss_kib name" per mapping
  awk '/^[0-9a-f]+-[0-9a-f]+ /{ split($1, a, "-"); m = a[1] " " a[2] " " ($6 == "" ? "-" : $6) }
       /^Rss:/{ print m, $2 }' "/proc/$1/smaps" >"$2"
}
split_delta() { # before after: the growth by kind, in B per connection
  python3 - "$1" "$2" "$IDLE" <<'EOF'
import sys
def read(path):
    out = {}
    for line in open(path):
        start, end, name, rss = line.split()
        out[start] = ((int(end, 16) - int(start, 16)) // 1024, name, int(rss))
    return out
a, b, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
kinds = {'v8_pages': 0, 'other_anon': 0, 'brk_heap': 0, 'files': 0}
for key in set(a) | set(b):
    size, name, _ = b.get(key) or a[key]
    d = (b[key][2] if key in b else 0) - (a[key][2] if key in a else 0)
    kind = ('brk_heap' if name == '[heap]' else 'files' if name != '-' else
            'v8_pages' if size % 256 == 0 else 'other_anon')
    kinds[kind] += d
print(' '.join(f'{k}={v * 1024 // n}' for k, v in kinds.items()))
EOF
}
for round in $(seq 1 "$RUNS"); do
  for v in "$@"; do
    name=${v%%=*} envs=${v#*=}
    IFS=, read -r -a kv <<<"$envs"
    # SRC=DIR runs the tcpool checked out in DIR (a `git worktree`), as in ab.sh.
    src=. env_kv=()
    for e in "${kv[@]}"; do if [ "${e%%=*}" = SRC ]; then src=${e#SRC=}; else env_kv+=("$e"); fi; done
    setsid env PORT=$port "${env_kv[@]}" node_modules/.bin/node "$src/bin/tcpool.js" serve >/tmp/idle-split.log 2>&1 &
    server=$!
    pid=$(wait_listener $port) ||
      { echo "idle-split: $name did not listen on $port" >&2; tail /tmp/idle-split.log >&2; exit 2; }
    before=$(mktemp) after=$(mktemp)
    r0=$(awk '/VmRSS/{print $2}' "/proc/$pid/status"); snap "$pid" "$before"
    "$TOOLS_BIN/linegen" -p $port -c 1 -n 0 -d 8 -r 'PING\r\n' -e PONG --idle "$IDLE" -q --csv >/dev/null 2>&1 &
    lg=$!
    sleep 6
    r1=$(awk '/VmRSS/{print $2}' "/proc/$pid/status"); snap "$pid" "$after"
    wait $lg
    printf '%-10s round=%d total=%d %s\n' "$name" "$round" $(( (r1 - r0) * 1024 / IDLE )) "$(split_delta "$before" "$after")"
    rm -f "$before" "$after"
    kill -TERM -- -"$server" 2>/dev/null; wait "$server" 2>/dev/null; server=
  done
done
