#!/usr/bin/env bash
# Runs the C host programs under valgrind (memcheck) and under AddressSanitizer with
# LeakSanitizer, and fails on any memory error or definite leak. docs/sanitizers.md
# explains what runs and how to read a failure.
#
# Usage, from the repository root:
#   bash tests/sanitizers.sh [all|valgrind|asan]
#
# The programs are tests/c/e2e_host.c (send, sigpipe, timeout, threads),
# tests/c/sanitize_host.c (plain SMTP, STARTTLS, implicit TLS, a composed message,
# refused recipients, invalid input, every diagnostic function), examples/send.c, and
# tests/c/fault_host.c against tests/sanitizer_fault_server.py for a set of fault cells.
#
# Needs the Postfix test server (tests/postfix/test-server.sh up), cc, python3 and
# valgrind, and for the ASan half the nightly Rust toolchain, because -Zsanitizer=address
# is unstable. Prints one line per run and a last line "N passed, N failed". The exit
# status is 1 if any run failed or a tool found anything, and 2 if a required tool or the
# test server is missing.
#
# Environment: MVSMTP_TEST_HOST, MVSMTP_TEST_PORT (plain SMTP, default 2525),
# MVSMTP_TEST_SUBMISSION_PORT (2587), MVSMTP_TEST_SMTPS_PORT (4465), MVSMTP_TEST_STATE
# (the test server's folder, /tmp/mvsmtp-postfix), MVSMTP_NIGHTLY (the toolchain name,
# default nightly) and MVSMTP_ASAN_TARGET_DIR (the ASan build's target folder, default
# target/asan).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

mode="${1:-all}"
case "$mode" in
    all | valgrind | asan) ;;
    *)
        echo "usage: bash tests/sanitizers.sh [all|valgrind|asan]" >&2
        exit 2
        ;;
esac

host="${MVSMTP_TEST_HOST:-127.0.0.1}"
plain_port="${MVSMTP_TEST_PORT:-2525}"
submission_port="${MVSMTP_TEST_SUBMISSION_PORT:-2587}"
smtps_port="${MVSMTP_TEST_SMTPS_PORT:-4465}"
state_dir="${MVSMTP_TEST_STATE:-/tmp/mvsmtp-postfix}"
ca_file="$state_dir/ca.crt"

nightly="${MVSMTP_NIGHTLY:-nightly}"
asan_target_dir="${MVSMTP_ASAN_TARGET_DIR:-target/asan}"
rust_target=x86_64-unknown-linux-gnu

# Wall-clock limit for one program run, in seconds. The slowest run takes about 5 s under
# valgrind on a 2-core machine.
run_limit=120

c_flags=(-std=c99 -Wall -Wextra -Werror -pedantic -g -pthread -Iinclude)

# exitcode=99 matches valgrind's --error-exitcode. log_path makes each process, forked
# children included, write its report to its own file, so a report cannot go unnoticed.
asan_options="detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:exitcode=99"

passed=0
failed=0

work="$(mktemp -d "${TMPDIR:-/tmp}/mvsmtp-sanitizers.XXXXXX")" || exit 2
trap 'rm -rf "$work"' EXIT

# Fault cells for tests/c/fault_host.c: the step, the fault and the status that the host
# must print. They reach every step and cover the timeout, connection loss, a failed TLS
# handshake, a 1 MB reply line, a 100,000-line reply, a reply sent byte by byte and the
# 16 MB body. tests/fault_matrix.rs runs every cell without these tools.
fault_cells=(
    "greeting silence SMTP_TIMEOUT"
    "greeting 421 SMTP_GREETING_REJECTED"
    "ehlo 554 SMTP_OK"
    "ehlo close SMTP_CONNECTION_LOST"
    "helo 451 SMTP_HELLO_REJECTED"
    "starttls 554 SMTP_TLS_UNAVAILABLE"
    "tls malformed SMTP_TLS_FAILED"
    "auth 554 SMTP_AUTH_FAILED"
    "mail long-line SMTP_PROTOCOL_ERROR"
    "rcpt 451 SMTP_RECIPIENTS_REJECTED"
    "data many-lines SMTP_PROTOCOL_ERROR"
    "body reset SMTP_CONNECTION_LOST"
    "body 554 SMTP_MESSAGE_REJECTED"
    "end non-utf8 SMTP_OK"
    "end byte-by-byte SMTP_OK"
    "quit close SMTP_OK"
)

# ------------------------------------------------------------------ setup helpers

require_tool() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "$1 not found: $2" >&2
        exit 2
    fi
}

require_port() {
    if ! timeout 3 bash -c "exec 3<>/dev/tcp/$host/$1" 2>/dev/null; then
        echo "the Postfix test server is not reachable at $host:$1;" \
            "start it with 'sudo bash tests/postfix/test-server.sh up'" >&2
        exit 2
    fi
}

# Writes the valgrind suppressions. Both cover one false report in the TLS 1.3 record
# layer of rustls 0.23 with ring 0.17, which a plain rustls client shows too, without
# libmvsmtp: memcheck marks the 16-byte AES-GCM tag of each record as uninitialised,
# although the peer checks every tag, so the bytes are the computed ones.
# docs/sanitizers.md has the evidence. Plain-text connections match neither entry.
write_valgrind_suppressions() {
    cat >"$1" <<'SUPPRESSIONS'
{
   rustls-ring-tls13-received-tag-check
   Memcheck:Cond
   fun:*ring*aead*algorithm*Algorithm*open_within*
   fun:*rustls*crypto*ring*tls13*Tls13MessageDecrypter*decrypt*
}
{
   rustls-ring-tls13-sent-record-tag
   Memcheck:Param
   socketcall.sendto(msg)
   fun:send
   fun:*mvsmtp*transport*Socket*Write*write*
   fun:*rustls*vecbuf*ChunkVecBuffer*write_to*
}
SUPPRESSIONS
}

# Writes a C program whose only pointer to a 64-byte block is overwritten: a definite leak
# that each tool must report, which shows that the checks below can fail.
write_planted_leak() {
    cat >"$1" <<'PROGRAM'
#include <stdlib.h>
#include <string.h>

/* Volatile, so that the compiler keeps the allocation and the store of NULL. */
static char *volatile block;

int main(void)
{
    block = malloc(64);
    if (block != NULL)
        memset(block, 1, 64);
    block = NULL;
    return 0;
}
PROGRAM
}

# compile_programs OUTPUT_DIR LIBRARY_DIR [EXTRA_FLAG...]
# Builds the four C programs against the libmvsmtp.so in LIBRARY_DIR, and the planted leak.
compile_programs() {
    local output_dir="$1" library_dir="$2"
    shift 2
    local library_path source name link
    library_path="$(cd "$library_dir" && pwd)" || return 1
    # shellcheck disable=SC2054 # -Wl, passes the comma-separated words on to the linker.
    link=(-L"$library_path" -lmvsmtp -Wl,-rpath,"$library_path")

    mkdir -p "$output_dir"
    for source in tests/c/e2e_host.c tests/c/fault_host.c tests/c/sanitize_host.c examples/send.c; do
        name="$(basename "$source" .c)"
        if ! cc "${c_flags[@]}" "$@" "$source" "${link[@]}" -o "$output_dir/$name"; then
            echo "compiling $source failed" >&2
            return 1
        fi
    done

    write_planted_leak "$output_dir/planted_leak.c"
    cc -std=c99 -g -O0 "$@" "$output_dir/planted_leak.c" -o "$output_dir/planted_leak"
}

# Prints a recipient address that no other run uses.
unique_recipient() {
    printf 'sanitizers-%s-%s-%s@example.test' "$1" "$$" "$(date +%s%N)"
}

# ------------------------------------------------------------------ running and checking

# run_under TOOL LOG_DIR STDIN_FILE PROGRAM [ARG...]
# Runs the program under valgrind, or with ASAN_OPTIONS for an ASan build, with the time
# limit. Sets exit_code and seconds. Output goes to LOG_DIR/stdout and LOG_DIR/stderr.
run_under() {
    local tool="$1" log_dir="$2" stdin_file="$3"
    shift 3
    local started finished

    mkdir -p "$log_dir"
    started="$(date +%s.%N)"
    if [ "$tool" = valgrind ]; then
        # Children that e2e_host forks run only its scripted servers, and the program kills
        # some of them, so their logs would be cut short. A child in which valgrind finds
        # an error still exits with 99, and e2e_host reports that.
        timeout --kill-after=5 "$run_limit" valgrind --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=40 \
            --child-silent-after-fork=yes --suppressions="$work/valgrind.supp" \
            --log-file="$log_dir/valgrind.%p.log" "$@" \
            <"$stdin_file" >"$log_dir/stdout" 2>"$log_dir/stderr"
    else
        ASAN_OPTIONS="$asan_options:log_path=$log_dir/asan" \
            timeout --kill-after=5 "$run_limit" "$@" \
            <"$stdin_file" >"$log_dir/stdout" 2>"$log_dir/stderr"
    fi
    exit_code=$?
    finished="$(date +%s.%N)"
    seconds="$(awk -v start="$started" -v end="$finished" 'BEGIN { printf "%.1f", end - start }')"
}

# Sums one number over valgrind logs: "errors" is N in "ERROR SUMMARY: N errors",
# "suppressed" is N in "(suppressed: N from M)" on that line, and "definite" is N in
# "definitely lost: N bytes".
sum_valgrind_field() {
    local field="$1"
    shift
    case "$field" in
        errors) sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$@" ;;
        suppressed) sed -n 's/.*ERROR SUMMARY: .*(suppressed: \([0-9,]*\) from.*/\1/p' "$@" ;;
        definite) sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$@" ;;
    esac | tr -d , | awk '{ total += $1 } END { print total + 0 }'
}

# collect_findings TOOL LOG_DIR
# Reads what the tool reported for one run. Sets findings (a summary), finding_problem
# (empty when the tool found nothing) and tool_logs (the report files).
collect_findings() {
    local tool="$1" log_dir="$2" file

    finding_problem=""
    tool_logs=()
    if [ "$tool" = valgrind ]; then
        for file in "$log_dir"/valgrind.*.log; do
            [ -e "$file" ] && tool_logs+=("$file")
        done
        if [ "${#tool_logs[@]}" -eq 0 ]; then
            findings="no valgrind log"
            finding_problem="valgrind wrote no log"
            return
        fi

        local errors suppressed definite summaries
        errors="$(sum_valgrind_field errors "${tool_logs[@]}")"
        suppressed="$(sum_valgrind_field suppressed "${tool_logs[@]}")"
        definite="$(sum_valgrind_field definite "${tool_logs[@]}")"
        summaries="$(cat "${tool_logs[@]}" | grep -c 'ERROR SUMMARY')"
        findings="$errors errors ($suppressed suppressed), $definite bytes definitely lost"
        if [ "$errors" -ne 0 ] || [ "$definite" -ne 0 ]; then
            finding_problem="valgrind found errors or definite leaks"
        elif [ "$summaries" -ne "${#tool_logs[@]}" ]; then
            finding_problem="a valgrind log has no ERROR SUMMARY, so its process did not finish"
        fi
        return
    fi

    # AddressSanitizer and LeakSanitizer write a file only when they report something.
    for file in "$log_dir"/asan.*; do
        [ -e "$file" ] && tool_logs+=("$file")
    done
    findings="${#tool_logs[@]} ASan reports"
    if [ "${#tool_logs[@]}" -ne 0 ]; then
        finding_problem="AddressSanitizer or LeakSanitizer reported a problem"
    elif grep -q 'AddressSanitizer\|LeakSanitizer' "$log_dir/stderr"; then
        finding_problem="a sanitizer report went to standard error"
    fi
}

# report_run TOOL LABEL PROBLEM LOG_FILE...
# Prints the summary line of one run from seconds and findings. An empty PROBLEM means
# that the run passed. The logs of a failed run go to standard error.
report_run() {
    local tool="$1" label="$2" problem="$3" log
    shift 3

    if [ -z "$problem" ]; then
        passed=$((passed + 1))
        printf 'PASS  %-8s %-34s %6s s  %s\n' "$tool" "$label" "$seconds" "$findings"
        return
    fi

    failed=$((failed + 1))
    printf 'FAIL  %-8s %-34s %6s s  %s: %s\n' "$tool" "$label" "$seconds" "$findings" "$problem"
    for log in "$@"; do
        if [ -s "$log" ]; then
            printf '\n----- %s -----\n' "$log" >&2
            head -c 20000 "$log" >&2
        fi
    done
}

# run_program TOOL LABEL EXPECTED_EXIT EXPECTED_TEXT STDIN_FILE PROGRAM [ARG...]
# Runs one program and checks its exit code, that its standard output contains
# EXPECTED_TEXT, and that the tool found nothing in it or in the children it forked.
run_program() {
    local tool="$1" label="$2" expected_exit="$3" expected_text="$4" stdin_file="$5"
    shift 5
    local log_dir="$work/logs/$tool-${label//[^A-Za-z0-9]/_}" problem=""

    run_under "$tool" "$log_dir" "$stdin_file" "$@"
    collect_findings "$tool" "$log_dir"

    if [ "$exit_code" -eq 124 ] || [ "$exit_code" -eq 137 ]; then
        problem="killed after the ${run_limit} s limit"
    elif [ "$exit_code" -ne "$expected_exit" ]; then
        problem="exit code $exit_code, expected $expected_exit"
    elif ! grep -qF -- "$expected_text" "$log_dir/stdout"; then
        problem="the output lacks \"$expected_text\""
    fi
    problem="${problem:-$finding_problem}"

    report_run "$tool" "$label" "$problem" "$log_dir/stdout" "$log_dir/stderr" "${tool_logs[@]}"
}

# run_planted_leak TOOL PROGRAM
# Passes when the tool reports the planted leak and the run exits with 99.
run_planted_leak() {
    local tool="$1" program="$2"
    local log_dir="$work/logs/$tool-planted_leak" problem=""

    run_under "$tool" "$log_dir" /dev/null "$program"
    collect_findings "$tool" "$log_dir"
    if [ -z "$finding_problem" ]; then
        problem="the planted 64-byte leak was not reported, so these checks cannot fail"
    elif [ "$exit_code" -ne 99 ]; then
        problem="exit code $exit_code after the planted leak, expected 99"
    fi
    report_run "$tool" "planted leak (must be found)" "$problem" "$log_dir/stderr" "${tool_logs[@]}"
}

# run_fault_cell TOOL PROGRAM STEP FAULT EXPECTED_STATUS
# Starts the scripted server for one cell and runs fault_host against it.
run_fault_cell() {
    local tool="$1" program="$2" step="$3" fault="$4" expected_status="$5"
    local label="fault_host $step $fault"
    local cell_dir="$work/cells/$tool-$step-$fault"
    local port_file="$cell_dir/port" server_pid waited=0

    mkdir -p "$cell_dir"
    timeout --kill-after=5 "$run_limit" \
        python3 tests/sanitizer_fault_server.py "$step" "$fault" "$port_file" \
        2>"$cell_dir/server.stderr" &
    server_pid=$!

    while [ ! -s "$port_file" ] && [ "$waited" -lt 100 ]; do
        sleep 0.05
        waited=$((waited + 1))
    done
    if [ ! -s "$port_file" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        seconds=0
        findings="not run"
        report_run "$tool" "$label" "the scripted server did not start within 5 s" \
            "$cell_dir/server.stderr"
        return
    fi

    run_program "$tool" "$label" 0 "name=$expected_status " /dev/null \
        "$program" "$step" "$fault" "$(cat "$port_file")" "$(unique_recipient fault)"

    if ! wait "$server_pid"; then
        failed=$((failed + 1))
        echo "FAIL  $tool $label: the scripted server reported a problem:" \
            "$(cat "$cell_dir/server.stderr")"
    fi
}

# run_suite TOOL PROGRAM_DIR
run_suite() {
    local tool="$1" programs="$2"
    local body_file="$work/body-$tool.txt" recipient cell step fault expected_status

    run_planted_leak "$tool" "$programs/planted_leak"

    recipient="$(unique_recipient "$tool-e2e")"
    printf 'From: <sanitizers@example.test>\r\nTo: <%s>\r\nSubject: e2e_host under %s\r\n\r\n%s' \
        "$recipient" "$tool" $'.leading dot\nbare LF\rbare CR\r\nlast line without ending' \
        >"$body_file"
    run_program "$tool" "e2e_host send" 0 "status=0 reply=250" /dev/null \
        "$programs/e2e_host" send "$host" "$plain_port" sanitizers@example.test "$recipient" \
        "$body_file"

    run_program "$tool" "e2e_host sigpipe" 0 "sigpipe: ok" /dev/null "$programs/e2e_host" sigpipe
    run_program "$tool" "e2e_host timeout" 0 "timeout: ok" /dev/null "$programs/e2e_host" timeout
    run_program "$tool" "e2e_host threads" 0 "threads: ok" /dev/null "$programs/e2e_host" threads

    recipient="$(unique_recipient "$tool-example")"
    printf 'From: <sanitizers@example.test>\nTo: <%s>\nSubject: examples/send.c under %s\n\nHello.\n' \
        "$recipient" "$tool" >"$body_file"
    run_program "$tool" "examples/send.c" 0 "status: 0 (SMTP_OK)" "$body_file" \
        "$programs/send" "$host" "$plain_port" sanitizers@example.test "$recipient"

    mkdir -p "$work/sanitize-$tool"
    run_program "$tool" "sanitize_host" 0 "sanitize_host: ok" /dev/null \
        "$programs/sanitize_host" "$host" "$plain_port" "$submission_port" "$smtps_port" \
        "$ca_file" "$work/sanitize-$tool"

    for cell in "${fault_cells[@]}"; do
        read -r step fault expected_status <<<"$cell"
        run_fault_cell "$tool" "$programs/fault_host" "$step" "$fault" "$expected_status"
    done
}

# ------------------------------------------------------------------ checks

require_tool cc "install a C compiler (Debian: apt-get install gcc)"
require_tool python3 "install Python 3"
require_tool timeout "install coreutils"
require_port "$plain_port"
require_port "$submission_port"
require_port "$smtps_port"
if [ ! -r "$ca_file" ]; then
    echo "the test server's CA certificate $ca_file is missing; start the test server first" >&2
    exit 2
fi
if [ "$mode" != asan ]; then
    require_tool valgrind "install valgrind (Debian: apt-get install valgrind)"
fi
if [ "$mode" != valgrind ] && ! cargo "+$nightly" --version >/dev/null 2>&1; then
    echo "the Rust toolchain $nightly is missing; install it with" \
        "'rustup toolchain install $nightly' (-Zsanitizer=address needs nightly)" >&2
    exit 2
fi

script_started="$(date +%s)"

# ------------------------------------------------------------------ valgrind

if [ "$mode" != asan ]; then
    printf '\n--- valgrind (memcheck) on target/release/libmvsmtp.so\n'
    write_valgrind_suppressions "$work/valgrind.supp"
    if cargo build --release --lib --quiet && compile_programs "$work/valgrind" target/release; then
        run_suite valgrind "$work/valgrind"
    else
        failed=$((failed + 1))
        echo "FAIL  valgrind: building the library or the C programs failed"
    fi
fi

# ------------------------------------------------------------------ AddressSanitizer

if [ "$mode" != valgrind ]; then
    asan_library_dir="$asan_target_dir/$rust_target/release"
    printf '\n--- AddressSanitizer and LeakSanitizer on %s/libmvsmtp.so\n' "$asan_library_dir"
    build_started="$(date +%s)"

    # With --target, RUSTFLAGS reaches only the target crates, not build scripts and
    # procedural macros, which would fail to run without the ASan runtime. The standard
    # library comes precompiled and is not instrumented. The library leaves the ASan
    # runtime symbols undefined, and the C programs, linked with -fsanitize=address, bring
    # GCC's libasan. Line tables make the reports name source lines.
    if RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR="$asan_target_dir" \
        CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo "+$nightly" build --release --lib --target "$rust_target" --quiet; then
        echo "ASan library build took $(($(date +%s) - build_started)) s."
        # grep reads all of nm's output, because an early exit would fail the pipeline.
        if ! nm -D --undefined-only "$asan_library_dir/libmvsmtp.so" | grep '__asan_report_load' >/dev/null; then
            failed=$((failed + 1))
            echo "FAIL  asan: $asan_library_dir/libmvsmtp.so has no ASan instrumentation"
        elif compile_programs "$work/asan" "$asan_library_dir" -fsanitize=address -fno-omit-frame-pointer; then
            run_suite asan "$work/asan"
        else
            failed=$((failed + 1))
            echo "FAIL  asan: compiling the C programs failed"
        fi
    else
        failed=$((failed + 1))
        echo "FAIL  asan: building the library with -Zsanitizer=address failed"
    fi
fi

printf '\nTook %d s.\n' "$(($(date +%s) - script_started))"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
