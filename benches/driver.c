/*
 * Benchmark driver: sends messages through libmvsmtp's C interface and prints one line of
 * key=value pairs for benches/bench.py. Every status is checked, and the first failure
 * ends the run with exit status 1 and the library's last error.
 *
 *   driver per-connection HOST PORT COUNT TEXT_BYTES       smtp_send, one connection each
 *   driver session HOST PORT COUNT TEXT_BYTES              one session for all messages
 *   driver threads HOST PORT THREADS PER_THREAD TEXT_BYTES one session per thread
 *   driver large HOST PORT TEXT_BYTES                      two smtp_send calls, with peak memory
 *   driver fresh HOST PORT RECIPIENTS COUNT                milliseconds of each smtp_send
 *   driver steady HOST PORT RECIPIENTS COUNT               milliseconds per session message
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mvsmtp.h"

#define SENDER "bench@example.test"
#define HEADERS "From: <" SENDER ">\r\nTo: <sink@example.test>\r\nSubject: benchmark\r\n\r\n"
/* Text lines are 78 characters plus CRLF, well under the 998-octet limit of RFC 5322. */
#define LINE_TEXT 78

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *allocate(size_t size) {
    void *memory = malloc(size);
    if (memory == NULL) {
        fprintf(stderr, "driver: out of memory allocating %zu bytes\n", size);
        exit(2);
    }
    return memory;
}

/* Builds a message of HEADERS followed by exactly text_bytes (at least 3) of text in CRLF
 * lines. Every byte is written, so the whole buffer is resident before a send starts. */
static char *make_body(size_t text_bytes) {
    if (text_bytes < 3) {
        fprintf(stderr, "driver: TEXT_BYTES must be at least 3\n");
        exit(2);
    }
    size_t header_length = strlen(HEADERS);
    char *body = allocate(header_length + text_bytes + 1);
    memcpy(body, HEADERS, header_length);

    char *text = body + header_length;
    size_t position = 0;
    while (position < text_bytes) {
        size_t remaining = text_bytes - position;
        size_t line = LINE_TEXT + 2;
        if (remaining <= line) {
            line = remaining;
        } else if (remaining - line < 3) {
            /* Shorten this line so that the last one still contains a character and CRLF. */
            line = remaining - 3;
        }
        memset(text + position, 'x', line - 2);
        text[position + line - 2] = '\r';
        text[position + line - 1] = '\n';
        position += line;
    }
    text[text_bytes] = '\0';
    return body;
}

/* Builds "bench-1@example.test,bench-2@example.test,..." with `count` addresses. */
static char *make_recipients(int count) {
    size_t size = (size_t)count * 32 + 1;
    char *list = allocate(size);
    size_t length = 0;
    list[0] = '\0';
    for (int i = 1; i <= count; i++) {
        length += (size_t)snprintf(list + length, size - length, "%sbench-%d@example.test",
                                   i > 1 ? "," : "", i);
    }
    return list;
}

static char *make_options(const char *host, const char *port) {
    char *options = allocate(strlen(host) + strlen(port) + 64);
    sprintf(options, "host=%s\nport=%s\ntimeout=30", host, port);
    return options;
}

/* Ends the run when a call failed, naming the call and the library's last error. */
static void check(int status, const char *call, long message) {
    if (status == SMTP_OK) {
        return;
    }
    fprintf(stderr, "driver: %s failed at message %ld: %s (%d): %s\n", call, message,
            smtp_status_name(status), status, smtp_last_error_text());
    printf("error=%s\n", smtp_status_name(status));
    exit(1);
}

static int open_session(const char *host, const char *port) {
    char *options = make_options(host, port);
    int session = smtp_open(options);
    free(options);
    if (session <= 0) {
        check(-session, "smtp_open", 0);
    }
    return session;
}

/* Returns a field of /proc/self/status in kB, such as "VmHWM" (the peak resident set
 * size) or "RssFile" (resident pages mapped from files, such as the library's code), or -1
 * when it cannot be read. */
static long status_kb(const char *field) {
    FILE *status = fopen("/proc/self/status", "r");
    if (status == NULL) {
        return -1;
    }
    size_t length = strlen(field);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, field, length) == 0 && line[length] == ':') {
            kb = strtol(line + length + 1, NULL, 10);
            break;
        }
    }
    fclose(status);
    return kb;
}

/* Lowers the peak (VmHWM) to the current resident set size: writing 5 to clear_refs does
 * that since Linux 4.0 (proc(5)). On older kernels the peak stays, so only the first send's
 * figure in run_large is valid there. */
static void reset_peak_resident(void) {
    FILE *clear_refs = fopen("/proc/self/clear_refs", "w");
    if (clear_refs != NULL) {
        fputs("5", clear_refs);
        fclose(clear_refs);
    }
}

static int run_per_connection(const char *host, int port, long count, const char *body) {
    double start = now_seconds();
    for (long i = 0; i < count; i++) {
        check(smtp_send(host, port, NULL, SENDER, "sink@example.test", body), "smtp_send", i);
    }
    printf("messages=%ld seconds=%.6f\n", count, now_seconds() - start);
    return 0;
}

static int run_session(const char *host, const char *port, long count, const char *body) {
    double start = now_seconds();
    int session = open_session(host, port);
    for (long i = 0; i < count; i++) {
        check(smtp_session_send(session, SENDER, "sink@example.test", body), "smtp_session_send", i);
    }
    check(smtp_close(session), "smtp_close", count);
    printf("messages=%ld seconds=%.6f\n", count, now_seconds() - start);
    return 0;
}

struct thread_job {
    const char *host;
    const char *port;
    long count;
    const char *body;
};

static void *run_thread(void *argument) {
    const struct thread_job *job = argument;
    int session = open_session(job->host, job->port);
    for (long i = 0; i < job->count; i++) {
        check(smtp_session_send(session, SENDER, "sink@example.test", job->body),
              "smtp_session_send", i);
    }
    check(smtp_close(session), "smtp_close", job->count);
    return NULL;
}

static int run_threads(const char *host, const char *port, int threads, long per_thread,
                       const char *body) {
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "driver: THREADS must be 1 to 64\n");
        return 2;
    }
    pthread_t ids[64];
    struct thread_job job = {host, port, per_thread, body};
    double start = now_seconds();
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&ids[i], NULL, run_thread, &job) != 0) {
            fprintf(stderr, "driver: pthread_create failed\n");
            return 2;
        }
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
    }
    printf("messages=%ld seconds=%.6f\n", per_thread * threads, now_seconds() - start);
    return 0;
}

/* Sends the body twice on fresh connections. Each send starts from a reset peak, after the
 * buffer was filled, so each difference is the memory the library itself used while
 * sending: the first includes the one-time cost of the first call in a process, the second
 * is what every later call needs. The growth of RssFile during the first send is the part
 * of that one-time cost that is code and data paged in from files, shared with other
 * processes. */
static int run_large(const char *host, int port, size_t text_bytes) {
    char *body = make_body(text_bytes);
    long extra_kb[2];
    double seconds[2];
    long file_before_kb = status_kb("RssFile");
    long file_after_kb = file_before_kb;
    for (int i = 0; i < 2; i++) {
        reset_peak_resident();
        long before_kb = status_kb("VmHWM");
        double start = now_seconds();
        check(smtp_send(host, port, NULL, SENDER, "sink@example.test", body), "smtp_send", i);
        seconds[i] = now_seconds() - start;
        extra_kb[i] = status_kb("VmHWM") - before_kb;
        if (i == 0) {
            file_after_kb = status_kb("RssFile");
        }
    }
    printf("bytes=%zu seconds=%.6f first_extra_kb=%ld second_extra_kb=%ld first_file_kb=%ld\n",
           strlen(body), seconds[0], extra_kb[0], extra_kb[1], file_after_kb - file_before_kb);
    free(body);
    return 0;
}

/* One untimed message first, so one-time costs of the process stay out of the figures. */
static int run_fresh(const char *host, int port, int recipients, long count) {
    char *to = make_recipients(recipients);
    char *body = make_body(1024);
    check(smtp_send(host, port, NULL, SENDER, to, body), "smtp_send", 0);
    printf("ms=");
    for (long i = 1; i <= count; i++) {
        double start = now_seconds();
        check(smtp_send(host, port, NULL, SENDER, to, body), "smtp_send", i);
        printf("%s%.3f", i > 1 ? "," : "", (now_seconds() - start) * 1000.0);
    }
    printf("\n");
    free(to);
    free(body);
    return 0;
}

/* The session's first message is untimed, so the figure is the steady state. */
static int run_steady(const char *host, const char *port, int recipients, long count) {
    char *to = make_recipients(recipients);
    char *body = make_body(1024);
    int session = open_session(host, port);
    check(smtp_session_send(session, SENDER, to, body), "smtp_session_send", 0);
    double start = now_seconds();
    for (long i = 1; i <= count; i++) {
        check(smtp_session_send(session, SENDER, to, body), "smtp_session_send", i);
    }
    double milliseconds = (now_seconds() - start) * 1000.0;
    check(smtp_close(session), "smtp_close", count);
    printf("messages=%ld ms_per_message=%.3f\n", count, milliseconds / (double)count);
    free(to);
    free(body);
    return 0;
}

static long number(const char *text, const char *name) {
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < 1) {
        fprintf(stderr, "driver: %s must be a whole number above 0, not \"%s\"\n", name, text);
        exit(2);
    }
    return value;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: driver MODE HOST PORT ARGUMENTS... (see the top of driver.c)\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *host = argv[2];
    const char *port_text = argv[3];
    int port = (int)number(port_text, "PORT");

    if (strcmp(mode, "per-connection") == 0 && argc == 6) {
        char *body = make_body((size_t)number(argv[5], "TEXT_BYTES"));
        return run_per_connection(host, port, number(argv[4], "COUNT"), body);
    }
    if (strcmp(mode, "session") == 0 && argc == 6) {
        char *body = make_body((size_t)number(argv[5], "TEXT_BYTES"));
        return run_session(host, port_text, number(argv[4], "COUNT"), body);
    }
    if (strcmp(mode, "threads") == 0 && argc == 7) {
        char *body = make_body((size_t)number(argv[6], "TEXT_BYTES"));
        return run_threads(host, port_text, (int)number(argv[4], "THREADS"),
                           number(argv[5], "PER_THREAD"), body);
    }
    if (strcmp(mode, "large") == 0 && argc == 5) {
        return run_large(host, port, (size_t)number(argv[4], "TEXT_BYTES"));
    }
    if (strcmp(mode, "fresh") == 0 && argc == 6) {
        return run_fresh(host, port, (int)number(argv[4], "RECIPIENTS"), number(argv[5], "COUNT"));
    }
    if (strcmp(mode, "steady") == 0 && argc == 6) {
        return run_steady(host, port_text, (int)number(argv[4], "RECIPIENTS"),
                          number(argv[5], "COUNT"));
    }
    fprintf(stderr, "driver: unknown mode or wrong number of arguments: %s\n", mode);
    return 2;
}
