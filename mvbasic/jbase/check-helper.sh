#!/usr/bin/env bash
# Checks mvsmtp_jbase.c from C, without jBASE. It builds the helper against the library of
# this repository and sends through the Postfix test server to an address that it
# rejects. Then it compares the error line, read byte by byte, with smtp_last_error_text().
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

/* Reads the error line as MVSMTP.SEND does and compares it with the library's copy. */
static int check(const char *case_name, const char *to, int expected_status)
{
    char text[4096];
    int status = smtp_send_message("host=127.0.0.1\nport=2525", "billing@example.test", to, "check", "text", "");
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

int main(void)
{
    int failures = 0;
    failures += check("rejected address with a non-ASCII domain", "reject@ex\xc3\xa4mple.test", 11);
    failures += check("accepted address, empty error", "jbase-helper@example.test", 0);
    return failures != 0;
}
C
cc -std=c99 -Wall -Wextra -Werror -I"$REPOSITORY/include" "$WORK/check.c" -L"$WORK" -lmvsmtp_jbase \
   -L"$LIBRARY_DIRECTORY" -lmvsmtp -Wl,-rpath,"$WORK:$LIBRARY_DIRECTORY" -o "$WORK/check"
"$WORK/check"
