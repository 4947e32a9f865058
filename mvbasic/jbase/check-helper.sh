#!/usr/bin/env bash
# Checks mvsmtp_jbase.c from C, without jBASE. It builds the helper against the library of
# this repository and sends through the Postfix test server, with smtp_send_message and on
# a session, as the DEFCE declarations of the BASIC call them, to an address that the
# server rejects and to one that it accepts. After each call it compares the error line,
# read byte by byte, with smtp_last_error_text().
# Needs: cargo build --release, and bash tests/postfix/test-server.sh up.
set -euo pipefail
REPOSITORY=$(cd "$(dirname "$0")/../.." && pwd)
LIBRARY_DIRECTORY="$REPOSITORY/target/release"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cc -std=c99 -Wall -Wextra -Werror -shared -fPIC -I"$REPOSITORY/include" -o "$WORK/libmvsmtp_jbase.so" \
   "$REPOSITORY/mvbasic/jbase/mvsmtp_jbase.c" -L"$LIBRARY_DIRECTORY" -lmvsmtp

cat > "$WORK/check.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "mvsmtp.h"

int mvsmtp_jbase_error_length(void);
int mvsmtp_jbase_error_byte(int index);

/*
 * Reads the error line as MVSMTP.LAST.ERROR does and compares it with the library's copy.
 * Returns 1 when the status or the error line differs from what was expected.
 */
static int check_error(const char *case_name, int status, int expected_status)
{
    char text[4096];
    int length = mvsmtp_jbase_error_length();
    for (int index = 0; index < length && index < (int) sizeof text - 1; index++) {
        text[index] = (char) mvsmtp_jbase_error_byte(index);
    }
    text[length < (int) sizeof text ? length : (int) sizeof text - 1] = '\0';

    int failed = status != expected_status || strcmp(text, smtp_last_error_text()) != 0
                 || mvsmtp_jbase_error_byte(length) != -1 || mvsmtp_jbase_error_byte(-1) != -1;
    printf("%s: %s: status %d, %d bytes: %s\n", failed ? "FAIL" : "PASS", case_name, status, length, text);
    return failed;
}

static int check_message(const char *case_name, const char *to, int expected_status)
{
    int status = smtp_send_message("host=127.0.0.1\nport=2525", "billing@example.test", to, "check", "text", "");
    return check_error(case_name, status, expected_status);
}

/* Sends on one session as MVSMTP.OPEN, MVSMTP.SESSION.MESSAGE and MVSMTP.CLOSE do. */
static int check_session(void)
{
    int failures = 0;
    int session = smtp_open("host=127.0.0.1\nport=2525");
    failures += check_error("session opened", session > 0 ? 0 : -session, 0);

    int status = smtp_session_send_message(session, "", "billing@example.test", "reject@ex\xc3\xa4mple.test",
                                           "check", "text", "");
    failures += check_error("session: rejected address with a non-ASCII domain", status, 11);
    status = smtp_session_send_message(session, "port=25", "billing@example.test", "jbase-helper@example.test",
                                       "check", "text", "");
    failures += check_error("session: connection option for one message", status, 2);
    status = smtp_session_send(session, "billing@example.test", "jbase-helper@example.test",
                               "Subject: check\n\ntext\n");
    failures += check_error("session: accepted address, empty error", status, 0);
    status = smtp_close(session);
    failures += check_error("session closed", status, 0);
    status = smtp_session_send(session, "billing@example.test", "jbase-helper@example.test", "text");
    failures += check_error("session: closed session", status, 2);
    return failures;
}

int main(void)
{
    int failures = 0;
    failures += check_message("rejected address with a non-ASCII domain", "reject@ex\xc3\xa4mple.test", 11);
    failures += check_message("accepted address, empty error", "jbase-helper@example.test", 0);
    failures += check_session();
    return failures != 0;
}
C
cc -std=c99 -Wall -Wextra -Werror -I"$REPOSITORY/include" "$WORK/check.c" -L"$WORK" -lmvsmtp_jbase \
   -L"$LIBRARY_DIRECTORY" -lmvsmtp -Wl,-rpath,"$WORK:$LIBRARY_DIRECTORY" -o "$WORK/check"
"$WORK/check"
