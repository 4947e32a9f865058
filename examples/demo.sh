#!/usr/bin/env bash
# Shows libmvsmtp at work on this machine: builds the library and the C example, starts a
# throwaway Postfix on 127.0.0.1 (see tests/postfix/test-server.sh), sends one message
# through the library, then prints the transcript and the message as Postfix delivered it.
#
# Nothing leaves the machine: the server listens on 127.0.0.1 only and delivers every
# message to a local maildir. Starting Postfix needs root, so a non-root user needs sudo.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> Starting the throwaway Postfix test server on 127.0.0.1:2525"
if [ "$(id -u)" -eq 0 ]; then
    bash tests/postfix/test-server.sh up
else
    sudo env MAIL_UID="$(id -u)" MAIL_GID="$(id -g)" bash tests/postfix/test-server.sh up
fi
maildir=${MVSMTP_TEST_MAILDIR:-/tmp/mvsmtp-postfix/maildir}

echo
echo "==> Building libmvsmtp (cargo build --release)"
cargo build --release --quiet

echo
echo "==> Building the C example (examples/send.c)"
build_dir=$(mktemp -d)
trap 'rm -rf "$build_dir"' EXIT
cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude examples/send.c \
    -Ltarget/release -lmvsmtp -Wl,-rpath,"$PWD/target/release" -o "$build_dir/send"

recipient="demo-$(date +%s)-$$@example.test"
echo
echo "==> Sending a message to $recipient through the library"
set +e
printf 'From: Accounts <accounts@example.test>\nTo: <%s>\nSubject: Statement for December\n\nDear customer,\n\nyour December statement is ready.\n.\nThis line above is a lone dot; it cannot end the message early.\n' "$recipient" \
    | "$build_dir/send" 127.0.0.1 2525 accounts@example.test "$recipient"
status=$?
set -e
if [ "$status" -ne 0 ]; then
    echo "The send failed with status $status; see the last error and transcript above." >&2
    exit "$status"
fi

echo "==> The message as Postfix delivered it (from $maildir/new)"
delivered=""
for _ in $(seq 100); do
    delivered=$(grep -l -F "X-Original-To: $recipient" "$maildir"/new/* 2>/dev/null | head -n 1 || true)
    [ -n "$delivered" ] && break
    sleep 0.1
done
if [ -z "$delivered" ]; then
    echo "No delivered message for $recipient appeared in $maildir/new within 10 s." >&2
    exit 1
fi
echo "--- $delivered"
cat "$delivered"
echo "---"
echo "Postfix added the Return-Path, X-Original-To, Delivered-To and Received lines at the top."
