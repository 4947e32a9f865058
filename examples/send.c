/*
 * send.c: sends one message with libmvsmtp and prints what happened.
 *
 * Usage: send HOST PORT FROM TO < message
 *
 * The message on standard input is the text that goes after DATA: headers,
 * a blank line, then the text. Any line endings are fine because the library
 * converts them to CRLF, and a line with a lone dot cannot end the message early.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude examples/send.c \
 *      -Ltarget/release -lmvsmtp -Wl,-rpath,$PWD/target/release -o send
 *
 * Run against a local test server:
 *   printf 'Subject: hello\n\nHello from C.\n' \
 *     | ./send 127.0.0.1 2525 me@example.test you@example.test
 *
 * The exit code is the SMTP_* status, so 0 means the message was accepted.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mvsmtp.h"

/* Reads all of stdin into a NUL-terminated buffer, or returns NULL. */
static char *read_stdin(void)
{
    size_t capacity = 4096;
    size_t length = 0;
    char *buffer = malloc(capacity);

    if (buffer == NULL)
        return NULL;

    for (;;) {
        size_t count = fread(buffer + length, 1, capacity - length - 1, stdin);
        length += count;
        if (count == 0)
            break;

        if (capacity - length - 1 == 0) {
            char *bigger = realloc(buffer, capacity * 2);
            if (bigger == NULL) {
                free(buffer);
                return NULL;
            }
            buffer = bigger;
            capacity *= 2;
        }
    }

    if (ferror(stdin)) {
        free(buffer);
        return NULL;
    }

    /* The body is a C string, so a NUL byte in the input ends it early. */
    buffer[length] = '\0';
    return buffer;
}

int main(int argc, char **argv)
{
    const char *host;
    int port;
    const char *from;
    const char *to;
    char *body;
    int status;
    int error_length;
    char *error;

    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT FROM TO < message\n", argv[0]);
        return SMTP_INVALID_ARGUMENT;
    }
    host = argv[1];
    port = atoi(argv[2]);
    from = argv[3];
    to = argv[4];

    body = read_stdin();
    if (body == NULL) {
        fprintf(stderr, "send: failed to read the message from stdin\n");
        return SMTP_INTERNAL_ERROR;
    }

    /* Give up on a silent server after 20 seconds instead of the default 30. */
    smtp_set_option("timeout", "20");

    /* NULL for helo: the library greets the server with this machine's host name. */
    status = smtp_send(host, port, NULL, from, to, body);
    free(body);

    printf("status: %d (%s)\n", status, smtp_status_name(status));
    printf("reply code: %d\n", smtp_last_reply_code());

    /* Ask for the length first, then fetch the text into a buffer of that size. */
    error_length = smtp_last_error(NULL, 0);
    error = malloc((size_t)error_length + 1);
    if (error != NULL) {
        smtp_last_error(error, error_length + 1);
        printf("last error: %s\n", error);
        free(error);
    }

    printf("\ntranscript:\n%s\n", smtp_last_transcript_text());

    return status;
}
