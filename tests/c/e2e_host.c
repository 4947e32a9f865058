/*
 * e2e_host.c: a C host program that calls libmvsmtp the way a database
 * process does, with default signal dispositions. tests/c_programs.rs
 * compiles and runs it.
 *
 * Subcommands:
 *   send HOST PORT FROM TO BODYFILE
 *       Sends the file's bytes as the message body and prints
 *       "status=N reply=R", then "error=TEXT", then the transcript.
 *       Exits 0 whenever the call ran, so the caller checks the status.
 *   sigpipe
 *       A local scripted server closes the connection while a 16 MB body is
 *       being written, once with RST and once with FIN followed by RST.
 *       Checks that the process survives (SIGPIPE is not ignored here) and
 *       that smtp_send returns SMTP_CONNECTION_LOST.
 *   timeout
 *       A local server accepts and never sends its greeting. Checks that
 *       smtp_send returns SMTP_TIMEOUT within 3 seconds with timeout 2.
 *   threads
 *       Two threads fail argument checks in a loop, and each checks that
 *       smtp_last_error_text() describes its own failure.
 * The check subcommands print "NAME: ok" and exit 0, or print each failure
 * and exit 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mvsmtp.h"

/* ---------------------------------------------------------------- helpers */

/* Returns 1 if needle occurs in haystack, ignoring ASCII case. */
static int contains_ignore_case(const char *haystack, const char *needle)
{
    size_t needle_length = strlen(needle);
    const char *start;

    if (haystack == NULL)
        return 0;
    for (start = haystack; *start != '\0'; start++) {
        size_t i = 0;
        while (i < needle_length && start[i] != '\0' &&
               tolower((unsigned char)start[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == needle_length)
            return 1;
    }
    return needle_length == 0;
}

static double monotonic_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Returns 1 if SIGPIPE currently has its default disposition (terminate). */
static int sigpipe_is_default(void)
{
    struct sigaction current;

    if (sigaction(SIGPIPE, NULL, &current) != 0)
        return 0;
    return current.sa_handler == SIG_DFL;
}

/*
 * Restores the default SIGPIPE disposition and unblocks the signal, because
 * an ignored or blocked signal is inherited from the parent process (the
 * Rust test harness ignores SIGPIPE). Returns 1 if the disposition is now
 * the default.
 */
static int reset_sigpipe(void)
{
    sigset_t pipe_set;

    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigprocmask(SIG_UNBLOCK, &pipe_set, NULL);
    return sigpipe_is_default();
}

/* ------------------------------------------------------ scripted servers */

/* Buffered line reader for the scripted server's side of the connection. */
struct line_reader {
    int fd;
    char buffer[8192];
    size_t length;
};

/*
 * Reads one LF-terminated line into line without its CR LF ending.
 * Returns 1 on success, 0 on end of stream, error or an over-long line.
 */
static int read_line(struct line_reader *reader, char *line, size_t size)
{
    for (;;) {
        char *newline = memchr(reader->buffer, '\n', reader->length);
        ssize_t count;

        if (newline != NULL) {
            size_t line_length = (size_t)(newline - reader->buffer);
            size_t consumed = line_length + 1;

            if (line_length > 0 && reader->buffer[line_length - 1] == '\r')
                line_length--;
            if (line_length >= size)
                return 0;
            memcpy(line, reader->buffer, line_length);
            line[line_length] = '\0';
            memmove(reader->buffer, reader->buffer + consumed,
                    reader->length - consumed);
            reader->length -= consumed;
            return 1;
        }

        if (reader->length == sizeof reader->buffer)
            return 0;
        count = recv(reader->fd, reader->buffer + reader->length,
                     sizeof reader->buffer - reader->length, 0);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return 0;
        reader->length += (size_t)count;
    }
}

/* Sends the whole string. MSG_NOSIGNAL keeps the server alive if the client left. */
static int send_text(int fd, const char *text)
{
    size_t remaining = strlen(text);

    while (remaining > 0) {
        ssize_t count = send(fd, text, remaining, MSG_NOSIGNAL);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return 0;
        text += count;
        remaining -= (size_t)count;
    }
    return 1;
}

/*
 * How the scripted server ends the connection while the body arrives.
 * CLOSE_WITH_RESET sends RST at once, so the client's blocked write fails
 * with ECONNRESET, and only a later write on that socket raises SIGPIPE.
 * CLOSE_AFTER_FIN first sends FIN, which moves the client to CLOSE_WAIT, and
 * then closes with unread data, which sends RST. Linux reports that RST to a
 * socket in CLOSE_WAIT as EPIPE, so the write that is blocked at that moment
 * raises SIGPIPE unless the library suppresses it.
 */
enum close_mode { CLOSE_WITH_RESET, CLOSE_AFTER_FIN };

/* Bytes of the body that the scripted server reads before it closes. */
#define BODY_BYTES_BEFORE_CLOSE 4096

/*
 * Plays an SMTP server up to the middle of the message body, then closes
 * the connection. Returns the child's exit code: 0 if the client got as far
 * as the body, 2 if it sent something unexpected or left early.
 */
static int run_closing_server(int client, enum close_mode mode)
{
    struct line_reader reader;
    char line[1024];
    size_t body_bytes;

    reader.fd = client;
    reader.length = 0;

    if (!send_text(client, "220 fake ESMTP\r\n"))
        return 2;

    for (;;) {
        if (!read_line(&reader, line, sizeof line))
            return 2;

        if (strncmp(line, "EHLO ", 5) == 0) {
            send_text(client, "250-fake\r\n250 8BITMIME\r\n");
        } else if (strncmp(line, "MAIL", 4) == 0 || strncmp(line, "RCPT", 4) == 0) {
            send_text(client, "250 OK\r\n");
        } else if (strcmp(line, "DATA") == 0) {
            send_text(client, "354 go\r\n");
            break;
        } else {
            send_text(client, "500 unexpected command\r\n");
            return 2;
        }
    }

    /* Bytes after the DATA line that are already buffered count as body. */
    body_bytes = reader.length;
    while (body_bytes < BODY_BYTES_BEFORE_CLOSE) {
        ssize_t count = recv(client, reader.buffer, sizeof reader.buffer, 0);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return 2;
        body_bytes += (size_t)count;
    }

    if (mode == CLOSE_WITH_RESET) {
        /* A zero linger time makes close() send RST instead of FIN. */
        struct linger reset;
        reset.l_onoff = 1;
        reset.l_linger = 0;
        setsockopt(client, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    } else {
        /* Give the FIN 200 ms to arrive before close() sends RST. */
        struct timespec pause;
        pause.tv_sec = 0;
        pause.tv_nsec = 200 * 1000 * 1000;
        shutdown(client, SHUT_WR);
        nanosleep(&pause, NULL);
    }
    close(client);
    return 0;
}

/* Accepts the connection and waits, without a greeting, until the client leaves. */
static int run_silent_server(int client)
{
    char buffer[512];

    for (;;) {
        ssize_t count = recv(client, buffer, sizeof buffer, 0);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            break;
    }
    close(client);
    return 0;
}

enum server_script { SCRIPT_CLOSE_WITH_RESET, SCRIPT_CLOSE_AFTER_FIN, SCRIPT_SILENT };

/*
 * Listens on 127.0.0.1 with a port chosen by the kernel, then forks a child
 * that accepts one connection and runs the script. Returns the port, or 0
 * on failure. The child exits after at most 30 seconds in any case.
 */
static int start_server(enum server_script script, pid_t *child_pid)
{
    struct sockaddr_in address;
    socklen_t address_length = sizeof address;
    int listener;
    pid_t pid;

    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) {
        perror("socket");
        return 0;
    }

    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &address_length) != 0) {
        perror("bind/listen/getsockname");
        close(listener);
        return 0;
    }

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        close(listener);
        return 0;
    }

    if (pid == 0) {
        int client;
        int code;

        alarm(30);
        client = accept(listener, NULL, NULL);
        close(listener);
        if (client < 0)
            _exit(3);

        switch (script) {
        case SCRIPT_CLOSE_WITH_RESET:
            code = run_closing_server(client, CLOSE_WITH_RESET);
            break;
        case SCRIPT_CLOSE_AFTER_FIN:
            code = run_closing_server(client, CLOSE_AFTER_FIN);
            break;
        default:
            code = run_silent_server(client);
            break;
        }
        _exit(code);
    }

    close(listener);
    *child_pid = pid;
    return ntohs(address.sin_port);
}

/* Waits for the scripted server and returns its exit code, or -1 if it was killed. */
static int reap_server(pid_t pid)
{
    int wait_status;

    while (waitpid(pid, &wait_status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    return -1;
}

/* ------------------------------------------------------------ subcommands */

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    long size;
    char *contents;

    if (file == NULL)
        return NULL;
    if (fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0 ||
        fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return NULL;
    }

    contents = malloc((size_t)size + 1);
    if (contents != NULL && fread(contents, 1, (size_t)size, file) != (size_t)size) {
        free(contents);
        contents = NULL;
    }
    fclose(file);
    if (contents != NULL)
        contents[size] = '\0';
    return contents;
}

static int command_send(int argc, char **argv)
{
    char *body;
    int status;

    if (argc != 7) {
        fprintf(stderr, "usage: %s send HOST PORT FROM TO BODYFILE\n", argv[0]);
        return 2;
    }

    body = read_file(argv[6]);
    if (body == NULL) {
        fprintf(stderr, "failed to read the body file %s\n", argv[6]);
        return 2;
    }

    smtp_set_option("timeout", "20");
    status = smtp_send(argv[2], atoi(argv[3]), NULL, argv[4], argv[5], body);
    free(body);

    printf("status=%d reply=%d\n", status, smtp_last_reply_code());
    printf("error=%s\n", smtp_last_error_text());
    printf("transcript:\n%s\n", smtp_last_transcript_text());
    return 0;
}

/* Size of the body in the SIGPIPE check: far more than any socket buffer. */
#define LARGE_BODY_SIZE (16u * 1024u * 1024u)

static char *make_large_body(void)
{
    const char *headers = "Subject: large body\r\n\r\n";
    size_t headers_length = strlen(headers);
    char *body = malloc(LARGE_BODY_SIZE + 1);
    size_t i;

    if (body == NULL)
        return NULL;
    memcpy(body, headers, headers_length);
    for (i = headers_length; i < LARGE_BODY_SIZE; i++)
        body[i] = (i % 78 == 77) ? '\n' : 'x';
    body[LARGE_BODY_SIZE] = '\0';
    return body;
}

/* Runs one SIGPIPE scenario and returns the number of failed checks. */
static int check_closed_during_body(enum server_script script, const char *label,
                                    const char *body)
{
    int failures = 0;
    pid_t server_pid;
    int port;
    int status;
    int server_code;
    const char *error;

    port = start_server(script, &server_pid);
    if (port == 0) {
        printf("sigpipe (%s): failed to start the scripted server\n", label);
        return 1;
    }

    status = smtp_send("127.0.0.1", port, "client.example.test", "sender@example.test",
                       "rcpt@example.test", body);

    /* Reaching this line means that SIGPIPE did not kill the process. */
    error = smtp_last_error_text();
    if (status != SMTP_CONNECTION_LOST) {
        printf("sigpipe (%s): status %d (%s), expected %d (SMTP_CONNECTION_LOST); error: %s\n",
               label, status, smtp_status_name(status), SMTP_CONNECTION_LOST,
               error != NULL ? error : "(null)");
        failures++;
    }
    if (!contains_ignore_case(error, "body") && !contains_ignore_case(error, "data")) {
        printf("sigpipe (%s): last error does not mention the body or DATA step: %s\n",
               label, error != NULL ? error : "(null)");
        failures++;
    }
    if (!sigpipe_is_default()) {
        printf("sigpipe (%s): smtp_send changed the process-wide SIGPIPE disposition\n",
               label);
        failures++;
    }

    server_code = reap_server(server_pid);
    if (server_code != 0) {
        printf("sigpipe (%s): scripted server exited with %d, so the client did not "
               "reach the body; transcript:\n%s\n",
               label, server_code, smtp_last_transcript_text());
        failures++;
    }
    return failures;
}

static int command_sigpipe(void)
{
    int failures = 0;
    char *body;

    smtp_set_option("timeout", "5");

    body = make_large_body();
    if (body == NULL) {
        printf("sigpipe: failed to allocate the 16 MB body\n");
        return 1;
    }

    failures += check_closed_during_body(SCRIPT_CLOSE_WITH_RESET, "reset", body);
    failures += check_closed_during_body(SCRIPT_CLOSE_AFTER_FIN, "FIN, then reset", body);
    free(body);

    if (failures != 0)
        return 1;
    printf("sigpipe: ok\n");
    return 0;
}

static int command_timeout(void)
{
    int failures = 0;
    pid_t server_pid;
    int port;
    int status;
    double started;
    double elapsed;

    if (smtp_set_option("timeout", "2") != SMTP_OK) {
        printf("timeout: smtp_set_option(\"timeout\", \"2\") failed: %s\n",
               smtp_last_error_text());
        return 1;
    }

    port = start_server(SCRIPT_SILENT, &server_pid);
    if (port == 0) {
        printf("timeout: failed to start the scripted server\n");
        return 1;
    }

    started = monotonic_seconds();
    status = smtp_send("127.0.0.1", port, "client.example.test", "sender@example.test",
                       "rcpt@example.test", "Subject: timeout\r\n\r\nnever sent\r\n");
    elapsed = monotonic_seconds() - started;

    /* The silent server waits for the client to close; kill it in case the
     * library kept the connection open. */
    kill(server_pid, SIGKILL);
    reap_server(server_pid);

    if (status != SMTP_TIMEOUT) {
        printf("timeout: status %d (%s), expected %d (SMTP_TIMEOUT); error: %s\n",
               status, smtp_status_name(status), SMTP_TIMEOUT, smtp_last_error_text());
        failures++;
    }
    if (elapsed > 3.0) {
        printf("timeout: smtp_send took %.2f s with timeout 2, expected at most 3 s\n",
               elapsed);
        failures++;
    }
    if (elapsed < 1.5) {
        printf("timeout: smtp_send returned after %.2f s with timeout 2, expected about 2 s\n",
               elapsed);
        failures++;
    }

    if (failures != 0)
        return 1;
    printf("timeout: ok (%.2f s)\n", elapsed);
    return 0;
}

#define THREAD_ITERATIONS 20

/* One thread's failing call and the text that its own last error must contain. */
struct thread_case {
    const char *label;
    const char *to;
    const char *body;
    const char *expected_in_error;
    const char *foreign_in_error;
    int failures;
};

static void *run_thread_case(void *argument)
{
    struct thread_case *test = argument;
    int i;

    for (i = 0; i < THREAD_ITERATIONS; i++) {
        char copied[512];
        int status = smtp_send("127.0.0.1", 2525, "client.example.test",
                               "sender@example.test", test->to, test->body);
        const char *error = smtp_last_error_text();

        if (status != SMTP_INVALID_ARGUMENT) {
            printf("threads (%s): call %d returned %d (%s), expected SMTP_INVALID_ARGUMENT\n",
                   test->label, i, status, smtp_status_name(status));
            test->failures++;
        }
        if (!contains_ignore_case(error, test->expected_in_error)) {
            printf("threads (%s): call %d error does not mention \"%s\": %s\n",
                   test->label, i, test->expected_in_error, error != NULL ? error : "(null)");
            test->failures++;
        }
        if (contains_ignore_case(error, test->foreign_in_error)) {
            printf("threads (%s): call %d error mentions the other thread's \"%s\": %s\n",
                   test->label, i, test->foreign_in_error, error);
            test->failures++;
        }
        if (smtp_last_reply_code() != 0) {
            printf("threads (%s): call %d reply code %d, expected 0 (no reply)\n",
                   test->label, i, smtp_last_reply_code());
            test->failures++;
        }

        smtp_last_error(copied, (int)sizeof copied);
        if (error != NULL && strncmp(copied, error, sizeof copied - 1) != 0) {
            printf("threads (%s): call %d smtp_last_error copied \"%s\", "
                   "smtp_last_error_text returned \"%s\"\n",
                   test->label, i, copied, error);
            test->failures++;
        }
    }
    return NULL;
}

static int command_threads(void)
{
    struct thread_case recipient_case = {
        "invalid recipient", "no-at-sign", "Subject: threads\r\n\r\ntext\r\n",
        "no-at-sign", "body", 0
    };
    struct thread_case body_case = {
        "NULL body", "rcpt@example.test", NULL, "body", "no-at-sign", 0
    };
    pthread_t recipient_thread;
    pthread_t body_thread;

    if (pthread_create(&recipient_thread, NULL, run_thread_case, &recipient_case) != 0 ||
        pthread_create(&body_thread, NULL, run_thread_case, &body_case) != 0) {
        printf("threads: pthread_create failed\n");
        return 1;
    }
    pthread_join(recipient_thread, NULL);
    pthread_join(body_thread, NULL);

    if (recipient_case.failures != 0 || body_case.failures != 0)
        return 1;
    printf("threads: ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    /* Undo an inherited SIG_IGN so that a write to a closed socket would
     * kill this process unless the library guards against SIGPIPE itself. */
    if (!reset_sigpipe()) {
        printf("SIGPIPE disposition is not SIG_DFL after signal(SIGPIPE, SIG_DFL)\n");
        return 1;
    }

    if (argc >= 2 && strcmp(argv[1], "send") == 0)
        return command_send(argc, argv);
    if (argc == 2 && strcmp(argv[1], "sigpipe") == 0)
        return command_sigpipe();
    if (argc == 2 && strcmp(argv[1], "timeout") == 0)
        return command_timeout();
    if (argc == 2 && strcmp(argv[1], "threads") == 0)
        return command_threads();

    fprintf(stderr, "usage: %s send HOST PORT FROM TO BODYFILE | sigpipe | timeout | threads\n",
            argv[0]);
    return 2;
}
