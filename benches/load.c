/*
 * Measures the cost of loading a shared library in a fresh process: dlopen, then the first
 * call. It is not linked against the library, so nothing is loaded before the clock starts.
 * Prints one line of key=value pairs (milliseconds) for benches/bench.py.
 *
 *   load LIBRARY version SYMBOL   dlopen, then call SYMBOL, a `const char *(void)` function
 *                                 such as smtp_version or curl_version
 *   load LIBRARY send HOST PORT   dlopen libmvsmtp, then smtp_send twice; the second call
 *                                 shows what a send costs once the library is warm
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef const char *(*text_function)(void);
typedef int (*send_function)(const char *, int, const char *, const char *, const char *,
                             const char *);

static const char BODY[] = "From: <bench@example.test>\r\nTo: <sink@example.test>\r\n"
                           "Subject: load\r\n\r\nFirst call after dlopen.\r\n";

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static void *open_library(const char *path) {
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        fprintf(stderr, "load: dlopen failed: %s\n", dlerror());
        exit(1);
    }
    return library;
}

static void *find_symbol(void *library, const char *name) {
    void *symbol = dlsym(library, name);
    if (symbol == NULL) {
        fprintf(stderr, "load: symbol %s not found: %s\n", name, dlerror());
        exit(1);
    }
    return symbol;
}

static int measure_version(const char *path, const char *name) {
    double start = now_ms();
    void *library = open_library(path);
    double opened = now_ms();
    text_function version = (text_function)find_symbol(library, name);
    const char *text = version();
    double called = now_ms();
    if (text == NULL) {
        fprintf(stderr, "load: %s returned NULL\n", name);
        return 1;
    }
    printf("dlopen_ms=%.3f first_call_ms=%.3f total_ms=%.3f\n", opened - start,
           called - opened, called - start);
    return 0;
}

static int measure_send(const char *path, const char *host, int port) {
    double start = now_ms();
    void *library = open_library(path);
    double opened = now_ms();
    send_function send = (send_function)find_symbol(library, "smtp_send");
    int first = send(host, port, NULL, "bench@example.test", "sink@example.test", BODY);
    double first_done = now_ms();
    int second = send(host, port, NULL, "bench@example.test", "sink@example.test", BODY);
    double second_done = now_ms();
    if (first != 0 || second != 0) {
        fprintf(stderr, "load: smtp_send returned %d, then %d\n", first, second);
        return 1;
    }
    printf("dlopen_ms=%.3f first_call_ms=%.3f total_ms=%.3f second_call_ms=%.3f\n",
           opened - start, first_done - opened, first_done - start, second_done - first_done);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[2], "version") == 0) {
        return measure_version(argv[1], argv[3]);
    }
    if (argc == 5 && strcmp(argv[2], "send") == 0) {
        return measure_send(argv[1], argv[3], atoi(argv[4]));
    }
    fprintf(stderr, "usage: load LIBRARY version SYMBOL | load LIBRARY send HOST PORT\n");
    return 2;
}
