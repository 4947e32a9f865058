/*
 * header_check.c: proves that include/mvsmtp.h is valid C99 and C++11 and
 * that its declarations match the documented C API.
 *
 * The tests compile this file twice, and both must build without warnings:
 *   cc  -std=c99   -Wall -Wextra -Werror -pedantic -Iinclude ...
 *   c++ -std=c++11 -x c++ -Wall -Wextra -Werror -pedantic -Iinclude ...
 * Each function is assigned to a pointer of its documented type, so a changed
 * signature fails to compile. Linking the C++ build also proves that the
 * header wraps its declarations in extern "C".
 *
 * At run time main checks the status numbers and smtp_version(), prints
 * "header_check: ok" and exits 0, or prints each failure and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "mvsmtp.h"

/* One pointer per exported function, typed as the C API documents it.
 * The initializer below is what references every function. */
struct api_functions {
    int (*send)(const char *host, int port, const char *helo, const char *from,
                const char *to, const char *body);
    int (*send_with)(const char *options, const char *from, const char *to,
                     const char *body);
    int (*send_message)(const char *options, const char *from, const char *to,
                        const char *subject, const char *body,
                        const char *attachments);
    int (*last_reply_code)(void);
    int (*last_error)(char *buffer, int size);
    const char *(*last_error_text)(void);
    int (*last_transcript)(char *buffer, int size);
    const char *(*last_transcript_text)(void);
    int (*set_option)(const char *name, const char *value);
    const char *(*version)(void);
    const char *(*status_name)(int status);
};

static const struct api_functions api = {
    smtp_send,
    smtp_send_with,
    smtp_send_message,
    smtp_last_reply_code,
    smtp_last_error,
    smtp_last_error_text,
    smtp_last_transcript,
    smtp_last_transcript_text,
    smtp_set_option,
    smtp_version,
    smtp_status_name,
};

struct status_macro {
    const char *name;
    int value;
    int documented;
};

/* The macro values next to the numbers that the C API documents. */
static const struct status_macro statuses[] = {
    { "SMTP_OK", SMTP_OK, 0 },
    { "SMTP_PARTIAL", SMTP_PARTIAL, 1 },
    { "SMTP_INVALID_ARGUMENT", SMTP_INVALID_ARGUMENT, 2 },
    { "SMTP_RESOLVE_FAILED", SMTP_RESOLVE_FAILED, 3 },
    { "SMTP_CONNECT_FAILED", SMTP_CONNECT_FAILED, 4 },
    { "SMTP_TIMEOUT", SMTP_TIMEOUT, 5 },
    { "SMTP_CONNECTION_LOST", SMTP_CONNECTION_LOST, 6 },
    { "SMTP_PROTOCOL_ERROR", SMTP_PROTOCOL_ERROR, 7 },
    { "SMTP_GREETING_REJECTED", SMTP_GREETING_REJECTED, 8 },
    { "SMTP_HELLO_REJECTED", SMTP_HELLO_REJECTED, 9 },
    { "SMTP_SENDER_REJECTED", SMTP_SENDER_REJECTED, 10 },
    { "SMTP_RECIPIENTS_REJECTED", SMTP_RECIPIENTS_REJECTED, 11 },
    { "SMTP_DATA_REJECTED", SMTP_DATA_REJECTED, 12 },
    { "SMTP_MESSAGE_REJECTED", SMTP_MESSAGE_REJECTED, 13 },
    { "SMTP_TLS_FAILED", SMTP_TLS_FAILED, 14 },
    { "SMTP_TLS_UNAVAILABLE", SMTP_TLS_UNAVAILABLE, 15 },
    { "SMTP_AUTH_FAILED", SMTP_AUTH_FAILED, 16 },
    { "SMTP_AUTH_UNAVAILABLE", SMTP_AUTH_UNAVAILABLE, 17 },
    { "SMTP_MESSAGE_TOO_LARGE", SMTP_MESSAGE_TOO_LARGE, 18 },
    { "SMTP_INTERNAL_ERROR", SMTP_INTERNAL_ERROR, 99 },
};

#define STATUS_COUNT (sizeof statuses / sizeof statuses[0])

static int check_statuses(void)
{
    int failures = 0;
    size_t i;
    size_t j;

    for (i = 0; i < STATUS_COUNT; i++) {
        const char *name;

        if (statuses[i].value != statuses[i].documented) {
            printf("%s is %d, documented as %d\n", statuses[i].name,
                   statuses[i].value, statuses[i].documented);
            failures++;
        }

        for (j = i + 1; j < STATUS_COUNT; j++) {
            if (statuses[i].value == statuses[j].value) {
                printf("%s and %s are both %d\n", statuses[i].name,
                       statuses[j].name, statuses[i].value);
                failures++;
            }
        }

        name = api.status_name(statuses[i].value);
        if (name == NULL || strcmp(name, statuses[i].name) != 0) {
            printf("smtp_status_name(%d) returned \"%s\", expected \"%s\"\n",
                   statuses[i].value, name != NULL ? name : "(null)",
                   statuses[i].name);
            failures++;
        }
    }

    return failures;
}

static int check_version(void)
{
    const char *version = api.version();

    if (version == NULL || version[0] == '\0') {
        printf("smtp_version() returned %s\n",
               version == NULL ? "NULL" : "an empty string");
        return 1;
    }
    return 0;
}

int main(void)
{
    int failures = 0;

    failures += check_statuses();
    failures += check_version();

    if (failures != 0) {
        printf("header_check: %d failure(s)\n", failures);
        return 1;
    }

    printf("header_check: ok (version %s)\n", api.version());
    return 0;
}
