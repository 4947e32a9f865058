/*
 * fault_host.c: runs one cell of the fault matrix as a C host program with
 * the default signal dispositions. tests/fault_matrix.rs compiles it, starts
 * a scripted SMTP server on 127.0.0.1 for the cell, and runs it:
 *
 *   fault_host STEP FAULT PORT [RECIPIENT]
 *
 * STEP chooses the options and the body. With "starttls" and "tls" the
 * client requires STARTTLS and trusts the Postfix test server's CA. With
 * "auth" it sends the credentials u/p without TLS, and with "body" it sends
 * a 16 MB body. Every other step sends a short message without TLS. The
 * server plays FAULT, and the program only puts its name into the subject.
 * RECIPIENT defaults to rcpt@example.test.
 *
 * The program calls smtp_send_with once with timeout=2 and prints one line:
 *
 *   status=N name=SMTP_... reply=N ms=N maxrss_kb=N hwm_kb=N error=<last error>
 *
 * followed on standard error by the transcript. ms is the duration of the
 * call. maxrss_kb is ru_maxrss from getrusage, and hwm_kb the peak resident
 * set size of this program alone (see own_peak_rss_kb). The exit code is 0
 * whenever the call ran, 2 for bad usage and 3 when SIGPIPE could not be
 * given its default disposition.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include "mvsmtp.h"

/* Size of the body for the "body" step: larger than the socket buffers of
 * both ends together, so the server can stop the client in mid-write. */
#define LARGE_BODY_SIZE (16u * 1024u * 1024u)

/* Length of each line of the large body, CRLF included. */
#define LARGE_BODY_LINE 78u

static long elapsed_ms(const struct timespec *start, const struct timespec *end)
{
    return (long)(end->tv_sec - start->tv_sec) * 1000L +
           (long)(end->tv_nsec - start->tv_nsec) / 1000000L;
}

/*
 * Restores the default SIGPIPE disposition and unblocks the signal, because
 * an ignored or blocked signal is inherited from the parent process. Returns
 * 1 if the disposition is now SIG_DFL, so a write to a closed socket would
 * kill this process unless the library prevents the signal.
 */
static int reset_sigpipe(void)
{
    struct sigaction current;
    sigset_t pipe_set;

    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &pipe_set, NULL);

    if (sigaction(SIGPIPE, NULL, &current) != 0)
        return 0;
    return current.sa_handler == SIG_DFL;
}

/* Builds the 16 MB body: a header, a blank line, then lines of 'x'. */
static char *make_large_body(void)
{
    const char *headers = "Subject: fault matrix, large body\r\n\r\n";
    size_t headers_length = strlen(headers);
    char *body = malloc(LARGE_BODY_SIZE + 1);
    size_t i;

    if (body == NULL)
        return NULL;
    memcpy(body, headers, headers_length);
    for (i = headers_length; i < LARGE_BODY_SIZE; i++) {
        size_t column = (i - headers_length) % LARGE_BODY_LINE;
        if (column == LARGE_BODY_LINE - 2)
            body[i] = '\r';
        else if (column == LARGE_BODY_LINE - 1)
            body[i] = '\n';
        else
            body[i] = 'x';
    }
    body[LARGE_BODY_SIZE] = '\0';
    return body;
}

/*
 * Returns the peak resident set size of this program's own memory, in
 * kilobytes, from VmHWM in /proc/self/status, or -1 where that is missing.
 * getrusage's ru_maxrss is not enough on Linux: execve keeps the high-water
 * mark of the memory it replaces, so a child of a large test process starts
 * with its parent's peak.
 */
static long own_peak_rss_kb(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long peak = -1;

    if (status == NULL)
        return -1;
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            peak = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(status);
    return peak;
}

/* Returns the folder of the Postfix test server's CA, as tests/common/mod.rs does. */
static const char *test_state_dir(void)
{
    const char *folder = getenv("MVSMTP_TEST_STATE");
    return (folder != NULL && folder[0] != '\0') ? folder : "/tmp/mvsmtp-postfix";
}

int main(int argc, char **argv)
{
    const char *step;
    const char *fault;
    const char *recipient = "rcpt@example.test";
    char options[1024];
    char small_body[256];
    char *large_body = NULL;
    const char *body;
    int port;
    int written;
    int status;
    struct timespec started;
    struct timespec finished;
    struct rusage usage;

    if (!reset_sigpipe()) {
        printf("SIGPIPE disposition is not SIG_DFL after signal(SIGPIPE, SIG_DFL)\n");
        return 3;
    }

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s STEP FAULT PORT [RECIPIENT]\n", argv[0]);
        return 2;
    }
    step = argv[1];
    fault = argv[2];
    port = atoi(argv[3]);
    if (argc == 5)
        recipient = argv[4];

    written = snprintf(options, sizeof options,
                       "host=127.0.0.1\nport=%d\ntimeout=2\nhelo=client.example.test\n", port);
    if (strcmp(step, "starttls") == 0 || strcmp(step, "tls") == 0) {
        written += snprintf(options + written, sizeof options - (size_t)written,
                            "tls=starttls\ntls_ca_file=%s/ca.crt\n", test_state_dir());
    } else if (strcmp(step, "auth") == 0) {
        written += snprintf(options + written, sizeof options - (size_t)written,
                            "tls=none\nuser=u\npassword=p\ninsecure_plaintext_auth=1\n");
    } else {
        written += snprintf(options + written, sizeof options - (size_t)written, "tls=none\n");
    }
    if (written <= 0 || (size_t)written >= sizeof options) {
        fprintf(stderr, "the options do not fit in %zu bytes\n", sizeof options);
        return 2;
    }

    if (strcmp(step, "body") == 0) {
        large_body = make_large_body();
        if (large_body == NULL) {
            fprintf(stderr, "failed to allocate the %u-byte body\n", LARGE_BODY_SIZE);
            return 2;
        }
        body = large_body;
    } else {
        snprintf(small_body, sizeof small_body,
                 "Subject: fault matrix, %s, %s\r\n\r\nOne short line of text.\r\n", step, fault);
        body = small_body;
    }

    clock_gettime(CLOCK_MONOTONIC, &started);
    status = smtp_send_with(options, "sender@example.test", recipient, body);
    clock_gettime(CLOCK_MONOTONIC, &finished);
    free(large_body);

    /* ru_maxrss is in kilobytes on Linux. */
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        usage.ru_maxrss = -1;

    printf("status=%d name=%s reply=%d ms=%ld maxrss_kb=%ld hwm_kb=%ld error=%s\n", status,
           smtp_status_name(status), smtp_last_reply_code(), elapsed_ms(&started, &finished),
           (long)usage.ru_maxrss, own_peak_rss_kb(), smtp_last_error_text());
    fprintf(stderr, "%s\n", smtp_last_transcript_text());
    return 0;
}
