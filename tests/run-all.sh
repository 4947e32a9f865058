#!/usr/bin/env bash
# Runs every libmvsmtp test. It starts the Postfix test server on 127.0.0.1, builds the
# release library, and runs the cargo tests (which include C and command-line end-to-end
# tests), the Python ctypes tests, and the C programs under valgrind and AddressSanitizer.
#
# Every step runs even when an earlier one failed. The exit status is non-zero if any
# step failed.
#
# Starting the test server needs root, so a non-root caller needs sudo. The caller's
# uid and gid own the delivered messages, so the tests can read them.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

failed_steps=()

heading() {
    printf '\n==> %s\n' "$1"
}

record_failure() {
    failed_steps+=("$1")
    echo "FAILED: $1" >&2
}

start_test_server() {
    heading "Starting the Postfix test server"

    if [ "$(id -u)" -eq 0 ]; then
        bash tests/postfix/test-server.sh up
        return
    fi

    # sudo drops most of the environment, so the settings go through env(1).
    local settings=(MAIL_UID="$(id -u)" MAIL_GID="$(id -g)")
    if [ -n "${STATE:-}" ]; then
        settings+=(STATE="$STATE")
    fi
    sudo env "${settings[@]}" bash tests/postfix/test-server.sh up
}

run_python_tests() {
    local status

    heading "Running the Python tests (pytest tests/python)"

    python3 -m pytest -q tests/python
    status=$?

    # pytest exits with 5 when it collected no tests, which would otherwise pass unnoticed.
    if [ "$status" -eq 5 ]; then
        echo "pytest collected no tests in tests/python; the Python tests are missing or were not found" >&2
    fi
    return "$status"
}

start_test_server || record_failure "Postfix test server"

heading "Building the release library (cargo build --release)"
cargo build --release || record_failure "cargo build --release"

heading "Running the cargo tests (cargo test --release)"
cargo test --release || record_failure "cargo test --release"

# The panic-guard test needs a test-only feature, built in its own target folder so that the
# release library used by the other tests never has it.
heading "Running the panic-guard test (cargo test --features fault-injection)"
CARGO_TARGET_DIR=target/fault-injection cargo test --release --features fault-injection --test panic_guard \
    || record_failure "cargo test --features fault-injection"

run_python_tests || record_failure "pytest tests/python"

# Needs valgrind and the nightly Rust toolchain, and builds its own ASan library in target/asan.
heading "Running the C programs under valgrind and AddressSanitizer (bash tests/sanitizers.sh)"
bash tests/sanitizers.sh || record_failure "bash tests/sanitizers.sh"

# The U2 embedded-Python module, called as U2's PyCallFunction would call it, and the
# status codes of the BASIC include item against the C header.
heading "Checking the MultiValue wrappers (mvbasic/)"
python3 -m pytest -q mvbasic/u2python || record_failure "pytest mvbasic/u2python"
bash mvbasic/common/check-status-codes.sh || record_failure "mvbasic/common/check-status-codes.sh"

echo
if [ "${#failed_steps[@]}" -ne 0 ]; then
    echo "Failed steps:" >&2
    printf '  %s\n' "${failed_steps[@]}" >&2
    exit 1
fi
echo "All test steps passed."
