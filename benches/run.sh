#!/usr/bin/env bash
# Builds the release library and the benchmark programs, starts smtp-sink and the delay
# proxies on 127.0.0.1, runs every measurement (benches/bench.py), prints the results table
# and writes it to benches/results/latest.md. Every server and proxy started here is
# stopped on exit, on failure and on Ctrl-C.
#
# Usage: bash benches/run.sh [--repeats N]   (default 5; about 2 minutes once the library is built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BUILD_DIR="$TARGET_DIR/bench"
OUTPUT="$ROOT/benches/results/latest.md"
SMTP_SINK=/usr/sbin/smtp-sink
POSTFIX_PORT=2525
DELAY_MS=10
REPEATS=5

while [ $# -gt 0 ]; do
    case "$1" in
        --repeats) REPEATS="$2"; shift 2 ;;
        *) echo "run.sh: unknown argument $1 (usage: bash benches/run.sh [--repeats N])" >&2; exit 2 ;;
    esac
done

for tool in "$SMTP_SINK" smtp-source curl cc python3 strip; do
    if ! command -v "$tool" >/dev/null; then
        echo "run.sh: $tool not found; install postfix, curl, gcc, python3 and binutils." >&2
        exit 1
    fi
done

STARTED_PIDS=()
WORK_DIR="$(mktemp -d /tmp/mvsmtp-bench.XXXXXX)"

stop_servers() {
    local status=$?
    # Newest first: the measurements stop before the servers they use.
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
        kill "${STARTED_PIDS[$i]}" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" != 0 ]; then
        for log in "$WORK_DIR"/*.log; do
            [ -s "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
        done
    fi
    rm -rf "$WORK_DIR"
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits up to 5 seconds for a listener on 127.0.0.1:PORT.
wait_for_port() {
    local port="$1" name="$2"
    for _ in $(seq 50); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), timeout=1).close()" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "run.sh: $name did not start listening on 127.0.0.1:$port" >&2
    exit 1
}

# Succeeds when a server on 127.0.0.1:PORT greets with 220.
greets() {
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as connection:
    sys.exit(0 if connection.recv(512).startswith(b"220") else 1)
EOF
}

echo "== Building the release library and the benchmark programs" >&2
(cd "$ROOT" && cargo build --release && cargo build --release --example bulk_send)
LIBRARY="$TARGET_DIR/release/libmvsmtp.so"
mkdir -p "$BUILD_DIR"
cc -std=c11 -O2 -Wall -Wextra -Werror -pthread -I"$ROOT/include" "$ROOT/benches/driver.c" \
    -L"$TARGET_DIR/release" -lmvsmtp -Wl,-rpath,"$TARGET_DIR/release" -o "$BUILD_DIR/driver"
cc -std=c11 -O2 -Wall -Wextra -Werror "$ROOT/benches/load.c" -ldl -o "$BUILD_DIR/load"

# Three free ports on loopback: smtp-sink, the proxy to it, and the proxy to Postfix.
read -r SINK_PORT SINK_PROXY_PORT POSTFIX_PROXY_PORT < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
')

# smtp-sink requires -u when started as root, and runs as that user once its socket is open.
SINK_USER=()
if [ "$(id -u)" = 0 ]; then
    SINK_USER=(-u nobody)
fi
echo "== Starting smtp-sink on 127.0.0.1:$SINK_PORT and a ${DELAY_MS} ms delay proxy on $SINK_PROXY_PORT" >&2
"$SMTP_SINK" "${SINK_USER[@]}" "127.0.0.1:$SINK_PORT" 256 2>"$WORK_DIR/smtp-sink.log" &
STARTED_PIDS+=($!)
python3 "$ROOT/benches/delay_proxy.py" "$SINK_PROXY_PORT" "$SINK_PORT" "$DELAY_MS" \
    2>"$WORK_DIR/proxy-sink.log" &
STARTED_PIDS+=($!)
wait_for_port "$SINK_PORT" smtp-sink
wait_for_port "$SINK_PROXY_PORT" "the delay proxy to smtp-sink"

POSTFIX_ARGUMENTS=()
if greets "$POSTFIX_PORT"; then
    echo "== Starting a ${DELAY_MS} ms delay proxy to Postfix on $POSTFIX_PROXY_PORT" >&2
    python3 "$ROOT/benches/delay_proxy.py" "$POSTFIX_PROXY_PORT" "$POSTFIX_PORT" "$DELAY_MS" \
        2>"$WORK_DIR/proxy-postfix.log" &
    STARTED_PIDS+=($!)
    wait_for_port "$POSTFIX_PROXY_PORT" "the delay proxy to Postfix"
    POSTFIX_ARGUMENTS=(--postfix-port "$POSTFIX_PORT" --postfix-proxy-port "$POSTFIX_PROXY_PORT"
                       --postfix-maildir "${MVSMTP_TEST_MAILDIR:-/tmp/mvsmtp-postfix/maildir}")
else
    echo "== Postfix does not answer on 127.0.0.1:$POSTFIX_PORT; its rows are skipped" \
         "(start it with: bash tests/postfix/test-server.sh up)" >&2
fi

echo "== Measuring (about 2 minutes)" >&2
# bench.py runs in the background, so a signal to this script runs the trap at once instead
# of after the measurements. On SIGTERM, bench.py stops the client it is running.
python3 "$ROOT/benches/bench.py" --root "$ROOT" --driver "$BUILD_DIR/driver" \
    --bulk "$TARGET_DIR/release/examples/bulk_send" \
    --load "$BUILD_DIR/load" --library "$LIBRARY" --sink-port "$SINK_PORT" \
    --sink-proxy-port "$SINK_PROXY_PORT" "${POSTFIX_ARGUMENTS[@]}" --delay-ms "$DELAY_MS" \
    --repeats "$REPEATS" --output "$OUTPUT" &
BENCH_PID=$!
STARTED_PIDS+=("$BENCH_PID")
wait "$BENCH_PID"
echo "== Results written to $OUTPUT" >&2
