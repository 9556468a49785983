# lib.sh — sourced by the benchmark scripts, which run from the repository root.

# build_tools NAME: builds ../shared/tools (linegen, seedserver, epollserver) into $TOOLS_BIN, or
# says so, naming the calling script, and exits 2.
build_tools() {
  make -s -C ../shared/tools BIN="${TOOLS_BIN:-/tmp/tcpool-tools}" >/dev/null ||
    { echo "$1: cannot build the C tools (../shared/tools)" >&2; exit 2; }
}

# listener_pid PORT: the pid of the process listening on PORT, or nothing.
listener_pid() { ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

# wait_listener PORT: waits up to 30 s for a listener on PORT and prints its pid; 1 if none came.
wait_listener() {
  local pid
  for _ in $(seq 1 300); do
    pid=$(listener_pid "$1")
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    sleep 0.1
  done
  return 1
}
