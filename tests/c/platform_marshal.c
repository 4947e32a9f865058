/*
 * platform_marshal.c: calls libmvsmtp the way each MultiValue platform passes
 * arguments to a C function. tests/platform_marshal.rs compiles it, runs each
 * subcommand against the Postfix test server and checks what Postfix
 * delivered.
 *
 * Subcommands:
 *   callc HOST PORT FROM COMPOSED_TO READY_TO ATTACHMENT_FILE
 *       UniData CALLC: every argument is a string, passed as a fresh copy that
 *       is overwritten and freed right after the call, and results are read
 *       only through the functions that return strings. The port goes into
 *       the options as the text "port=PORT". Sends a composed message with
 *       the file as its attachment to COMPOSED_TO, a ready message to
 *       READY_TO, and one message to reject@example.test only.
 *   gci HOST PORT FROM TO
 *       UniVerse GCI and D3: the error and the transcript are read into
 *       buffers of fixed size that the caller allocated. Sends a ready message
 *       to TO, then one to reject@example.test only, and checks the buffer
 *       contract after each.
 *   marks 8bit|utf8 HOST PORT FROM READY_TO1 READY_TO2 COMPOSED_TO1 COMPOSED_TO2
 *       Sends a ready message to READY_TO1 and READY_TO2 and a composed one to
 *       COMPOSED_TO1 and COMPOSED_TO2, with the single-byte marks (0xFE, 0xFD,
 *       0xFC) or with their UTF-8 forms (U+F8FE, U+F8FD, U+F8FC). The 8-bit
 *       form passes its accented text in ISO-8859-1 with the option
 *       charset=ISO-8859-1, as a system without NLS would, and the UTF-8 form
 *       in UTF-8. Both forms must deliver the same content.
 *   defce HOST PORT FROM TO
 *       jBASE DEFCE: INT and STRING arguments and results only. Sets the
 *       timeout option, sends a ready message to TO, and reads each status
 *       back through smtp_status_name.
 *
 * Each subcommand prints one line per failed check and exits 1, or prints
 * "NAME: ok" and exits 0.
 *
 * NOTE: the argument passing imitates each platform as mvbasic/README.md
 * describes it. This program has not been run inside those platforms.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mvsmtp.h"

/* --------------------------------------------------------------- helpers */

static int failure_count = 0;

/* Prints one failed check as a line of its own and counts it. */
static void fail(const char *format, ...)
{
    va_list arguments;

    va_start(arguments, format);
    vprintf(format, arguments);
    va_end(arguments);
    putchar('\n');
    failure_count++;
}

/* Ends the subcommand: "NAME: ok" and 0, or 1 after failed checks. */
static int finish(const char *name)
{
    if (failure_count != 0) {
        printf("%s: %d failed checks\n", name, failure_count);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

static void *allocate(size_t size)
{
    void *memory = malloc(size);

    if (memory == NULL) {
        printf("out of memory allocating %lu bytes\n", (unsigned long)size);
        exit(1);
    }
    return memory;
}

/* Returns a copy of text in memory that the caller frees. */
static char *copy_string(const char *text)
{
    size_t length = strlen(text);
    char *copy = allocate(length + 1);

    memcpy(copy, text, length + 1);
    return copy;
}

/* Returns the printf-style formatted text in memory that the caller frees. */
static char *format_text(const char *format, ...)
{
    va_list arguments;
    va_list second_pass;
    int length;
    char *text;

    va_start(arguments, format);
    va_copy(second_pass, arguments);
    length = vsnprintf(NULL, 0, format, arguments);
    va_end(arguments);
    if (length < 0) {
        printf("vsnprintf failed for the format \"%s\"\n", format);
        exit(1);
    }

    text = allocate((size_t)length + 1);
    vsnprintf(text, (size_t)length + 1, format, second_pass);
    va_end(second_pass);
    return text;
}

/*
 * Joins items with a separator, as BASIC builds a dynamic array with
 * ARRAY<-1> = ITEM. Returns memory that the caller frees.
 */
static char *join(const char *separator, const char *const *items, size_t count)
{
    size_t separator_length = strlen(separator);
    size_t total = 1;
    size_t i;
    char *joined;
    char *end;

    for (i = 0; i < count; i++)
        total += strlen(items[i]) + separator_length;

    joined = allocate(total);
    end = joined;
    for (i = 0; i < count; i++) {
        size_t length = strlen(items[i]);
        if (i > 0) {
            memcpy(end, separator, separator_length);
            end += separator_length;
        }
        memcpy(end, items[i], length);
        end += length;
    }
    *end = '\0';
    return joined;
}

static int contains(const char *text, const char *part)
{
    return text != NULL && strstr(text, part) != NULL;
}

static const char *show(const char *text)
{
    return text != NULL ? text : "(NULL)";
}

/* The marks of a dynamic array, as single bytes or in their UTF-8 forms. */
struct marks {
    const char *name;
    const char *attribute;
    const char *value;
    const char *subvalue;
};

/* Single-byte marks, as on systems without NLS. */
static const struct marks MARKS_8BIT = { "8-bit", "\xFE", "\xFD", "\xFC" };

/* U+F8FE, U+F8FD and U+F8FC encoded in UTF-8, as on NLS systems. */
static const struct marks MARKS_UTF8 = {
    "UTF-8", "\xEF\xA3\xBE", "\xEF\xA3\xBD", "\xEF\xA3\xBC"
};

/*
 * Returns a ready message (headers, an empty line, the text) as a dynamic
 * array of lines. tests/platform_marshal.rs expects exactly these lines, and
 * the line that starts with a dot checks the dot-stuffing.
 */
static char *ready_message(const char *attribute_mark, const char *from,
                           const char *to_header, const char *message_id,
                           const char *subject)
{
    char *from_line = format_text("From: Platform test <%s>", from);
    char *to_line = format_text("To: %s", to_header);
    char *subject_line = format_text("Subject: %s", subject);
    char *message_id_line = format_text("Message-ID: <%s>", message_id);
    const char *lines[9];
    char *message;

    lines[0] = from_line;
    lines[1] = to_line;
    lines[2] = subject_line;
    lines[3] = "Date: Mon, 01 Jan 2024 00:00:00 +0000";
    lines[4] = message_id_line;
    lines[5] = "";
    lines[6] = "First line of the text.";
    lines[7] = ".A line that starts with a dot.";
    lines[8] = "Last line.";
    message = join(attribute_mark, lines, 9);

    free(from_line);
    free(to_line);
    free(subject_line);
    free(message_id_line);
    return message;
}

/* Returns the options list host, port and timeout, separated by attribute marks. */
static char *server_options(const char *attribute_mark, const char *host,
                            const char *port_text, const char *extra_option)
{
    char *host_option = format_text("host=%s", host);
    char *port_option = format_text("port=%s", port_text);
    const char *options[4];
    size_t count = 3;
    char *list;

    options[0] = host_option;
    options[1] = port_option;
    options[2] = "timeout=20";
    if (extra_option != NULL)
        options[count++] = extra_option;
    list = join(attribute_mark, options, count);

    free(host_option);
    free(port_option);
    return list;
}

/* ------------------------------------------------------- UniData CALLC */

/* A string argument as CALLC passes it: a fresh copy sized with strlen. */
static char *callc_argument(const char *text)
{
    return copy_string(text);
}

/*
 * Overwrites and frees an argument copy once the call has returned, as the
 * platform reuses that memory, so a pointer that the library kept would now
 * read '#' characters.
 */
static void callc_release(char *argument)
{
    memset(argument, '#', strlen(argument));
    free(argument);
}

/*
 * Copies a returned string with strlen into memory that the caller owns, as
 * CALLC does right after the call. A NULL result counts as a failed check.
 */
static char *callc_result(const char *returned, const char *function_name)
{
    if (returned == NULL) {
        fail("callc: %s returned NULL", function_name);
        return copy_string("");
    }
    return copy_string(returned);
}

/* The results that a CALLC caller reads after one send: the status and three copied strings. */
struct callc_outcome {
    int status;
    char *status_name;
    char *error;
    char *transcript;
};

/* Reads the results of the call that just returned, as separate CALLC calls. */
static struct callc_outcome callc_collect(int status)
{
    struct callc_outcome outcome;

    outcome.status = status;
    outcome.error = callc_result(smtp_last_error_text(), "smtp_last_error_text");
    outcome.transcript = callc_result(smtp_last_transcript_text(),
                                      "smtp_last_transcript_text");
    outcome.status_name = callc_result(smtp_status_name(status), "smtp_status_name");
    return outcome;
}

static void callc_free(struct callc_outcome *outcome)
{
    free(outcome->status_name);
    free(outcome->error);
    free(outcome->transcript);
}

static struct callc_outcome callc_send_with(const char *options, const char *from,
                                            const char *to, const char *body)
{
    char *options_copy = callc_argument(options);
    char *from_copy = callc_argument(from);
    char *to_copy = callc_argument(to);
    char *body_copy = callc_argument(body);
    int status = smtp_send_with(options_copy, from_copy, to_copy, body_copy);

    callc_release(options_copy);
    callc_release(from_copy);
    callc_release(to_copy);
    callc_release(body_copy);
    return callc_collect(status);
}

static struct callc_outcome callc_send_message(const char *options, const char *from,
                                               const char *to, const char *subject,
                                               const char *body, const char *attachments)
{
    char *options_copy = callc_argument(options);
    char *from_copy = callc_argument(from);
    char *to_copy = callc_argument(to);
    char *subject_copy = callc_argument(subject);
    char *body_copy = callc_argument(body);
    char *attachments_copy = callc_argument(attachments);
    int status = smtp_send_message(options_copy, from_copy, to_copy, subject_copy,
                                   body_copy, attachments_copy);

    callc_release(options_copy);
    callc_release(from_copy);
    callc_release(to_copy);
    callc_release(subject_copy);
    callc_release(body_copy);
    callc_release(attachments_copy);
    return callc_collect(status);
}

/* Checks a CALLC send that must succeed, and that RCPT TO named the recipient. */
static void check_callc_success(const char *label, const struct callc_outcome *outcome,
                                const char *recipient)
{
    char *rcpt_line = format_text("C: RCPT TO:<%s>", recipient);

    if (outcome->status != SMTP_OK)
        fail("callc (%s): status %d, expected SMTP_OK; error: %s\ntranscript:\n%s",
             label, outcome->status, outcome->error, outcome->transcript);
    if (strcmp(outcome->status_name, "SMTP_OK") != 0)
        fail("callc (%s): smtp_status_name returned \"%s\", expected \"SMTP_OK\"",
             label, outcome->status_name);
    if (strcmp(outcome->error, "") != 0)
        fail("callc (%s): smtp_last_error_text returned \"%s\" after a success, expected \"\"",
             label, outcome->error);
    if (!contains(outcome->transcript, rcpt_line))
        fail("callc (%s): transcript has no line \"%s\":\n%s", label, rcpt_line,
             outcome->transcript);
    if (!contains(outcome->transcript, "C: <message body"))
        fail("callc (%s): transcript has no message body line:\n%s", label, outcome->transcript);
    free(rcpt_line);
}

static int command_callc(int argc, char **argv)
{
    const struct marks *marks = &MARKS_8BIT;
    const char *host;
    const char *port_text;
    const char *from;
    const char *composed_to;
    const char *ready_to;
    const char *attachment_file;
    const char *body_lines[4];
    char *options;
    char *sender;
    char *body;
    char *attachments;
    char *ready;
    struct callc_outcome composed;
    struct callc_outcome sent;
    struct callc_outcome rejected;

    if (argc != 8) {
        fprintf(stderr, "usage: %s callc HOST PORT FROM COMPOSED_TO READY_TO ATTACHMENT_FILE\n",
                argv[0]);
        return 2;
    }
    host = argv[2];
    port_text = argv[3];
    from = argv[4];
    composed_to = argv[5];
    ready_to = argv[6];
    attachment_file = argv[7];

    /* The port is a number in BASIC, passed as the text of an option. */
    options = server_options(marks->attribute, host, port_text, NULL);
    sender = format_text("Platform test <%s>", from);

    body_lines[0] = "Dear reader,";
    body_lines[1] = "";
    body_lines[2] = "this message was composed from string arguments only.";
    body_lines[3] = "Regards";
    body = join(marks->attribute, body_lines, 4);
    attachments = format_text("%s%sledger-2024.bin", attachment_file, marks->value);

    composed = callc_send_message(options, sender, composed_to, "CALLC composed message",
                                  body, attachments);
    check_callc_success("smtp_send_message", &composed, composed_to);

    ready = ready_message(marks->attribute, from, ready_to, ready_to, "CALLC ready message");
    sent = callc_send_with(options, from, ready_to, ready);
    check_callc_success("smtp_send_with", &sent, ready_to);

    rejected = callc_send_with(options, from, "reject@example.test", ready);
    if (rejected.status != SMTP_RECIPIENTS_REJECTED)
        fail("callc (reject): status %d (%s), expected SMTP_RECIPIENTS_REJECTED; error: %s",
             rejected.status, rejected.status_name, rejected.error);
    if (strcmp(rejected.status_name, "SMTP_RECIPIENTS_REJECTED") != 0)
        fail("callc (reject): smtp_status_name returned \"%s\", expected "
             "\"SMTP_RECIPIENTS_REJECTED\"", rejected.status_name);
    if (!contains(rejected.error, "reject@example.test"))
        fail("callc (reject): error text does not name reject@example.test: %s", rejected.error);
    if (!contains(rejected.error, "550"))
        fail("callc (reject): error text does not contain the reply code 550: %s",
             rejected.error);
    if (!contains(rejected.transcript, "C: RCPT TO:<reject@example.test>"))
        fail("callc (reject): transcript has no RCPT TO for reject@example.test:\n%s",
             rejected.transcript);
    if (!contains(rejected.transcript, "S: 550"))
        fail("callc (reject): transcript has no 550 reply:\n%s", rejected.transcript);
    printf("callc: error text of the rejected call: %s\n", rejected.error);

    callc_free(&composed);
    callc_free(&sent);
    callc_free(&rejected);
    free(options);
    free(sender);
    free(body);
    free(attachments);
    free(ready);
    return finish("callc");
}

/* -------------------------------------------------- UniVerse GCI and D3 */

/* Bytes after each caller buffer that must keep the sentinel. */
#define GUARD_SIZE 16
#define SENTINEL 0xA5

typedef int (*buffer_reader)(char *buffer, int size);
typedef const char *(*text_reader)(void);

/* Returns size + GUARD_SIZE bytes, all set to SENTINEL. */
static char *allocate_guarded(size_t size)
{
    char *buffer = allocate(size + GUARD_SIZE);

    memset(buffer, SENTINEL, size + GUARD_SIZE);
    return buffer;
}

/* Checks that the GUARD_SIZE bytes after the first size bytes still contain SENTINEL. */
static void check_guard(const char *label, const char *buffer, size_t size)
{
    size_t i;

    for (i = size; i < size + GUARD_SIZE; i++) {
        if ((unsigned char)buffer[i] != SENTINEL) {
            fail("%s: byte %lu, %lu bytes past the end of the buffer of size %lu, "
                 "was overwritten with 0x%02X",
                 label, (unsigned long)i, (unsigned long)(i - size + 1), (unsigned long)size,
                 (unsigned)(unsigned char)buffer[i]);
            return;
        }
    }
}

/* Returns where text of the given length is cut to fit size bytes with the NUL. */
static size_t expected_cut(const char *text, size_t length, size_t size)
{
    size_t cut;

    if (length < size)
        return length;
    cut = size - 1;
    /* A byte 10xxxxxx continues a UTF-8 character, so the text is cut before it. */
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/*
 * Reads a text into a caller buffer of size bytes, as GCI and D3 callers do,
 * and checks the buffer contract. The function must return the full length,
 * write a NUL within the size, cut the text at a character boundary, and
 * write nothing past the size. A cut text is read again into a buffer of the
 * returned length + 1. Returns the whole text as read through the buffers,
 * in memory that the caller frees, and sets *was_cut.
 */
static char *read_through_buffer(const char *label, buffer_reader read_buffer,
                                 text_reader read_text, int size, int *was_cut)
{
    const char *library_text = read_text();
    size_t text_length;
    char *buffer = allocate_guarded((size_t)size);
    int length;
    char *whole;

    if (library_text == NULL) {
        fail("%s: the _text function returned NULL", label);
        library_text = "";
    }
    text_length = strlen(library_text);

    length = read_buffer(buffer, size);
    if (length < 0 || (size_t)length != text_length)
        fail("%s (size %d): returned %d, but the text is %lu bytes long",
             label, size, length, (unsigned long)text_length);

    if (memchr(buffer, '\0', (size_t)size) == NULL) {
        fail("%s (size %d): no NUL within the buffer", label, size);
    } else {
        size_t copied = strlen(buffer);
        size_t cut = expected_cut(library_text, text_length, (size_t)size);

        if (memcmp(buffer, library_text, copied) != 0)
            fail("%s (size %d): the buffer holds \"%s\", which does not start the text \"%s\"",
                 label, size, buffer, library_text);
        if (copied != cut)
            fail("%s (size %d): %lu bytes were copied, expected %lu of the %lu-byte text",
                 label, size, (unsigned long)copied, (unsigned long)cut,
                 (unsigned long)text_length);
    }
    check_guard(label, buffer, (size_t)size);

    *was_cut = text_length >= (size_t)size;
    if (!*was_cut || length < 0)
        return buffer;
    free(buffer);

    /* The caller's retry, sized by the returned length. */
    buffer = allocate_guarded((size_t)length + 1);
    if (read_buffer(buffer, length + 1) != length)
        fail("%s (retry with size %d): returned a different length", label, length + 1);
    if (memchr(buffer, '\0', (size_t)length + 1) == NULL) {
        fail("%s (retry with size %d): no NUL within the buffer", label, length + 1);
        whole = copy_string("");
    } else {
        if (strcmp(buffer, library_text) != 0)
            fail("%s (retry with size %d): the buffer holds \"%s\", but the text is \"%s\"",
                 label, length + 1, buffer, library_text);
        whole = copy_string(buffer);
    }
    check_guard(label, buffer, (size_t)length + 1);
    free(buffer);
    return whole;
}

/* Checks that a size of 0 or a NULL buffer only returns the length. */
static void check_length_query(const char *label, buffer_reader read_buffer,
                               text_reader read_text)
{
    size_t text_length = strlen(show(read_text()));
    char *buffer = allocate_guarded(0);
    int length;

    length = read_buffer(NULL, 0);
    if (length < 0 || (size_t)length != text_length)
        fail("%s (NULL, 0): returned %d, expected the length %lu",
             label, length, (unsigned long)text_length);

    length = read_buffer(buffer, 0);
    if (length < 0 || (size_t)length != text_length)
        fail("%s (buffer, 0): returned %d, expected the length %lu",
             label, length, (unsigned long)text_length);
    check_guard(label, buffer, 0);
    free(buffer);
}

/* The buffer sizes that a GCI or D3 caller might declare, smallest first. */
static const int GCI_SIZES[] = { 1, 16, 256 };
#define GCI_SIZE_COUNT (sizeof GCI_SIZES / sizeof GCI_SIZES[0])

/*
 * Reads the last error and transcript through buffers of every size in
 * GCI_SIZES. Returns the whole error and transcript in memory that the
 * caller frees.
 */
static void read_diagnostics(const char *step, char **error, char **transcript)
{
    size_t i;

    *error = NULL;
    *transcript = NULL;
    for (i = 0; i < GCI_SIZE_COUNT; i++) {
        char *label;
        char *text;
        int was_cut;

        label = format_text("gci (%s) smtp_last_error", step);
        text = read_through_buffer(label, smtp_last_error, smtp_last_error_text, GCI_SIZES[i],
                                   &was_cut);
        free(*error);
        *error = text;
        free(label);

        label = format_text("gci (%s) smtp_last_transcript", step);
        text = read_through_buffer(label, smtp_last_transcript, smtp_last_transcript_text,
                                   GCI_SIZES[i], &was_cut);
        if (!was_cut)
            fail("%s (size %d): the transcript fits, so the cut text was not checked",
                 label, GCI_SIZES[i]);
        free(*transcript);
        *transcript = text;
        free(label);
    }

    check_length_query("gci smtp_last_error", smtp_last_error, smtp_last_error_text);
    check_length_query("gci smtp_last_transcript", smtp_last_transcript,
                       smtp_last_transcript_text);
}

static int command_gci(int argc, char **argv)
{
    const char *host;
    int port;
    const char *from;
    const char *to;
    char *body;
    char *error;
    char *transcript;
    int status;
    int was_cut;

    if (argc != 6) {
        fprintf(stderr, "usage: %s gci HOST PORT FROM TO\n", argv[0]);
        return 2;
    }
    host = argv[2];
    port = atoi(argv[3]);
    from = argv[4];
    to = argv[5];
    smtp_set_option("timeout", "20");

    body = ready_message(MARKS_8BIT.attribute, from, to, to, "GCI ready message");
    status = smtp_send(host, port, "", from, to, body);
    read_diagnostics("success", &error, &transcript);
    if (status != SMTP_OK)
        fail("gci: smtp_send returned %d (%s), expected SMTP_OK; error: %s\ntranscript:\n%s",
             status, smtp_status_name(status), error, transcript);
    if (strcmp(error, "") != 0)
        fail("gci: the error after a success is \"%s\", expected \"\"", error);
    if (!contains(transcript, "C: <message body"))
        fail("gci: the transcript read through buffers has no message body line:\n%s", transcript);
    free(error);
    free(transcript);

    status = smtp_send(host, port, "", from, "reject@example.test", body);
    read_diagnostics("reject", &error, &transcript);
    if (status != SMTP_RECIPIENTS_REJECTED)
        fail("gci: smtp_send to reject@example.test returned %d (%s), "
             "expected SMTP_RECIPIENTS_REJECTED", status, smtp_status_name(status));
    if (!contains(error, "reject@example.test") || !contains(error, "550"))
        fail("gci: the error read through buffers does not name reject@example.test "
             "and 550: %s", error);
    if (!contains(transcript, "C: RCPT TO:<reject@example.test>"))
        fail("gci: the transcript read through buffers has no RCPT TO for "
             "reject@example.test:\n%s", transcript);
    free(error);
    free(transcript);

    /* The rejection's error line is longer than 16 bytes, so this read is cut. */
    error = read_through_buffer("gci (reject) smtp_last_error", smtp_last_error,
                                smtp_last_error_text, 16, &was_cut);
    if (!was_cut)
        fail("gci: the error \"%s\" fits in 16 bytes, so the cut text was not checked",
             error);
    printf("gci: error text of the rejected call: %s\n", error);
    free(error);

    free(body);
    return finish("gci");
}

/* --------------------------------------------------- both forms of marks */

/* Checks a send that must succeed, and that RCPT TO named each recipient. */
static void check_marks_success(const char *label, int status, const char *first,
                                const char *second)
{
    const char *transcript = show(smtp_last_transcript_text());
    char *first_line = format_text("C: RCPT TO:<%s>", first);
    char *second_line = format_text("C: RCPT TO:<%s>", second);

    if (status != SMTP_OK)
        fail("%s: status %d (%s), expected SMTP_OK; error: %s\ntranscript:\n%s",
             label, status, smtp_status_name(status), show(smtp_last_error_text()),
             transcript);
    if (!contains(transcript, first_line) || !contains(transcript, second_line))
        fail("%s: the value mark did not split the recipients into \"%s\" and \"%s\":\n%s",
             label, first_line, second_line, transcript);
    free(first_line);
    free(second_line);
}

static int command_marks(int argc, char **argv)
{
    const struct marks *marks;
    const char *host;
    const char *port_text;
    const char *from;
    const char *ready_first;
    const char *ready_second;
    const char *composed_first;
    const char *composed_second;
    const char *charset_option;
    const char *accented;
    const char *body_lines[6];
    const char *attachment_lines[2];
    char *label;
    char *options;
    char *composed_options;
    char *sender;
    char *to;
    char *ready;
    char *subject;
    char *bill_line;
    char *body;
    char *json_content;
    char *text_content;
    char *attachments;
    int status;

    if (argc != 10) {
        fprintf(stderr, "usage: %s marks 8bit|utf8 HOST PORT FROM READY_TO1 READY_TO2 "
                "COMPOSED_TO1 COMPOSED_TO2\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[2], "8bit") == 0) {
        marks = &MARKS_8BIT;
        /* A system without NLS keeps text in an 8-bit code page. */
        charset_option = "charset=ISO-8859-1";
        accented = "caf\xE9 cr\xE8" "me";
    } else if (strcmp(argv[2], "utf8") == 0) {
        marks = &MARKS_UTF8;
        charset_option = NULL;
        accented = "caf\xC3\xA9 cr\xC3\xA8" "me";
    } else {
        fprintf(stderr, "marks: the form must be 8bit or utf8, not \"%s\"\n", argv[2]);
        return 2;
    }
    host = argv[3];
    port_text = argv[4];
    from = argv[5];
    ready_first = argv[6];
    ready_second = argv[7];
    composed_first = argv[8];
    composed_second = argv[9];

    /* A ready message: options, recipients and lines separated by marks. */
    options = server_options(marks->attribute, host, port_text, NULL);
    to = format_text("Marks Reader <%s>%s%s", ready_first, marks->value, ready_second);
    ready = ready_message(marks->attribute, from, "undisclosed-recipients:;",
                          "marks-ready@example.test", "Marks ready message");
    status = smtp_send_with(options, from, to, ready);
    label = format_text("marks (%s) smtp_send_with", marks->name);
    check_marks_success(label, status, ready_first, ready_second);
    if (contains(smtp_last_transcript_text(), "BODY=8BITMIME"))
        fail("%s: MAIL FROM announced BODY=8BITMIME, but the body is ASCII once its "
             "attribute marks are line breaks:\n%s", label, smtp_last_transcript_text());
    free(label);
    free(to);

    /* A composed message with an in-memory attachment per attribute. */
    composed_options = server_options(marks->attribute, host, port_text, charset_option);
    sender = format_text("Platform test <%s>", from);
    to = format_text("Marks Reader <%s>%s%s", composed_first, marks->value, composed_second);
    subject = format_text("Marks composed message, %s", accented);
    bill_line = format_text("the bill for %s is 4.20 EUR.", accented);

    body_lines[0] = "Dear reader,";
    body_lines[1] = "";
    body_lines[2] = bill_line;
    body_lines[3] = "";
    body_lines[4] = "Regards,";
    body_lines[5] = "Accounts";
    body = join(marks->attribute, body_lines, 6);

    /* Subvalue marks are the line breaks of in-memory content. */
    json_content = format_text("{%s  \"invoice\": 42,%s  \"amount\": \"4.20\"%s}",
                               marks->subvalue, marks->subvalue, marks->subvalue);
    text_content = format_text("line 1%sline 2", marks->subvalue);

    /* Values: path (empty for in-memory content), file name, content type, content. */
    attachment_lines[0] = format_text("%stotals.json%sapplication/json%s%s", marks->value,
                                      marks->value, marks->value, json_content);
    attachment_lines[1] = format_text("%sreadme.txt%stext/plain%s%s", marks->value,
                                      marks->value, marks->value, text_content);
    attachments = join(marks->attribute, attachment_lines, 2);

    status = smtp_send_message(composed_options, sender, to, subject, body, attachments);
    label = format_text("marks (%s) smtp_send_message", marks->name);
    check_marks_success(label, status, composed_first, composed_second);
    free(label);

    free(options);
    free(composed_options);
    free(sender);
    free(to);
    free(ready);
    free(subject);
    free(bill_line);
    free(body);
    free(json_content);
    free(text_content);
    free((char *)attachment_lines[0]);
    free((char *)attachment_lines[1]);
    free(attachments);
    return finish("marks");
}

/* ---------------------------------------------------------- jBASE DEFCE */

/* Compares a status name that a DEFCE STRING function returned. */
static void check_status_name(const char *step, const char *name, const char *expected)
{
    if (name == NULL || strcmp(name, expected) != 0)
        fail("defce (%s): status name \"%s\", expected \"%s\"; error: %s",
             step, show(name), expected, show(smtp_last_error_text()));
}

static int command_defce(int argc, char **argv)
{
    const char *host;
    int port;
    const char *from;
    const char *to;
    char *body;
    const char *name;

    if (argc != 6) {
        fprintf(stderr, "usage: %s defce HOST PORT FROM TO\n", argv[0]);
        return 2;
    }
    host = argv[2];
    port = atoi(argv[3]);
    from = argv[4];
    to = argv[5];

    name = smtp_status_name(smtp_set_option("timeout", "7"));
    check_status_name("timeout 7", name, "SMTP_OK");

    body = ready_message(MARKS_8BIT.attribute, from, to, to, "DEFCE ready message");
    name = smtp_status_name(smtp_send(host, port, "", from, to, body));
    check_status_name("send", name, "SMTP_OK");
    if (smtp_last_reply_code() != 250)
        fail("defce (send): reply code %d, expected 250", smtp_last_reply_code());

    name = smtp_status_name(smtp_set_option("timeout", "0"));
    check_status_name("timeout 0", name, "SMTP_INVALID_ARGUMENT");
    if (!contains(smtp_last_error_text(), "timeout"))
        fail("defce (timeout 0): the error does not name the option: %s",
             show(smtp_last_error_text()));

    name = smtp_status_name(smtp_send(host, port, "", from, "reject@example.test", body));
    check_status_name("reject", name, "SMTP_RECIPIENTS_REJECTED");
    if (smtp_last_reply_code() != 550)
        fail("defce (reject): reply code %d, expected 550", smtp_last_reply_code());

    name = smtp_status_name(smtp_set_option("timeout", ""));
    check_status_name("default timeout", name, "SMTP_OK");
    check_status_name("unknown number", smtp_status_name(12345), "SMTP_UNKNOWN_STATUS");

    free(body);
    return finish("defce");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "callc") == 0)
        return command_callc(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "gci") == 0)
        return command_gci(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "marks") == 0)
        return command_marks(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "defce") == 0)
        return command_defce(argc, argv);

    fprintf(stderr, "usage: %s callc|gci|marks|defce ARGUMENTS (see the comment at the top "
            "of tests/c/platform_marshal.c)\n", argv[0]);
    return 2;
}
