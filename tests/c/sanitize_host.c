/*
 * sanitize_host.c: a C host program that calls every public function of
 * libmvsmtp against the Postfix test server, so that tests/sanitizers.sh can
 * run it under valgrind (memcheck) and AddressSanitizer.
 *
 *   sanitize_host HOST PORT SUBMISSION_PORT SMTPS_PORT CA_FILE WORK_DIR
 *
 * PORT is plain SMTP, SUBMISSION_PORT requires STARTTLS and AUTH, and
 * SMTPS_PORT requires implicit TLS and AUTH. The login is testuser/testpass
 * and CA_FILE is the test server's CA certificate. WORK_DIR is an existing
 * folder for the attachment, the profile file and the audit log.
 *
 * The cases are:
 *   - a plain message;
 *   - STARTTLS with AUTH, from options;
 *   - implicit TLS with AUTH, from a profile;
 *   - a TLS failure for lack of the CA;
 *   - a composed MIME message with a file attachment, an attachment given as
 *     content, an HTML alternative, Cc and an audit log;
 *   - a refused recipient and a partly refused recipient list;
 *   - a series of invalid arguments and options.
 * After each call the program reads every diagnostic function and checks
 * that they agree. It prints one line per case and "sanitize_host: ok" at
 * the end, and exits 0, or prints each failure and exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mvsmtp.h"

/* Value mark and attribute mark of MultiValue dynamic arrays, as single bytes. */
#define VALUE_MARK "\xFD"
#define ATTRIBUTE_MARK "\xFE"

static int failures;

static const char *host;
static int plain_port;
static int submission_port;
static int smtps_port;
static const char *ca_file;
static const char *work_dir;

static void fail(const char *label, const char *message)
{
    printf("%s: %s\n", label, message);
    failures++;
}

/* Writes a recipient address that no other run uses into buffer. */
static void unique_recipient(char *buffer, size_t size, const char *label)
{
    static unsigned counter;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(buffer, size, "sanitize-%s-%ld-%ld%09ld-%u@example.test", label, (long)getpid(),
             (long)now.tv_sec, now.tv_nsec, counter++);
}

/*
 * Reads the calling thread's reply code, last error and transcript through
 * every function that returns them, and checks that the buffer copies, the
 * lengths and the library-owned strings agree. A too small buffer must get
 * a NUL-terminated prefix of the text.
 */
static void check_diagnostics(const char *label)
{
    const char *error_text = smtp_last_error_text();
    const char *transcript_text = smtp_last_transcript_text();
    int error_length = smtp_last_error(NULL, 0);
    int transcript_length = smtp_last_transcript(NULL, 0);
    char small[8];
    char *copy;

    (void)smtp_last_reply_code();

    if (error_text == NULL || transcript_text == NULL) {
        fail(label, "smtp_last_error_text or smtp_last_transcript_text returned NULL");
        return;
    }
    if (error_length != (int)strlen(error_text))
        fail(label, "smtp_last_error(NULL, 0) differs from strlen(smtp_last_error_text())");
    if (transcript_length != (int)strlen(transcript_text))
        fail(label, "smtp_last_transcript(NULL, 0) differs from strlen(smtp_last_transcript_text())");

    copy = malloc((size_t)error_length + 1);
    if (copy == NULL) {
        fail(label, "malloc failed");
        return;
    }
    if (smtp_last_error(copy, error_length + 1) != error_length || strcmp(copy, error_text) != 0)
        fail(label, "smtp_last_error with a large enough buffer did not copy the whole error");
    free(copy);

    copy = malloc((size_t)transcript_length + 1);
    if (copy == NULL) {
        fail(label, "malloc failed");
        return;
    }
    if (smtp_last_transcript(copy, transcript_length + 1) != transcript_length ||
        strcmp(copy, transcript_text) != 0)
        fail(label, "smtp_last_transcript with a large enough buffer did not copy the whole transcript");
    free(copy);

    /* The cut may end early at a UTF-8 character boundary, so only a prefix is required. */
    memset(small, 'x', sizeof small);
    smtp_last_error(small, (int)sizeof small);
    if (memchr(small, '\0', sizeof small) == NULL || strncmp(small, error_text, strlen(small)) != 0)
        fail(label, "smtp_last_error with an 8-byte buffer did not write a NUL-terminated prefix");

    memset(small, 'x', sizeof small);
    smtp_last_transcript(small, (int)sizeof small);
    if (memchr(small, '\0', sizeof small) == NULL ||
        strncmp(small, transcript_text, strlen(small)) != 0)
        fail(label, "smtp_last_transcript with an 8-byte buffer did not write a NUL-terminated prefix");

    /* A size of 1 leaves room for the NUL only. */
    small[0] = 'x';
    smtp_last_error(small, 1);
    if (small[0] != '\0')
        fail(label, "smtp_last_error with a 1-byte buffer did not write an empty string");
}

/* Checks the status and reply code of the call just made, then its diagnostics. */
static void expect(const char *label, int status, int expected_status, int expected_reply)
{
    char message[512];
    int reply = smtp_last_reply_code();

    if (status != expected_status) {
        snprintf(message, sizeof message, "status %d (%s), expected %d (%s); error: %s", status,
                 smtp_status_name(status), expected_status, smtp_status_name(expected_status),
                 smtp_last_error_text());
        fail(label, message);
    }
    if (expected_reply >= 0 && reply != expected_reply) {
        snprintf(message, sizeof message, "reply code %d, expected %d; error: %s", reply,
                 expected_reply, smtp_last_error_text());
        fail(label, message);
    }
    check_diagnostics(label);
    printf("%s: %s, reply %d\n", label, smtp_status_name(status), reply);
}

static int write_file(const char *path, const char *contents, mode_t mode)
{
    FILE *file = fopen(path, "w");

    if (file == NULL)
        return 0;
    if (fputs(contents, file) == EOF) {
        fclose(file);
        return 0;
    }
    if (fclose(file) != 0)
        return 0;
    return chmod(path, mode) == 0;
}

/* ------------------------------------------------------------------ cases */

static void send_plain(void)
{
    char recipient[160];
    char body[512];

    unique_recipient(recipient, sizeof recipient, "plain");
    snprintf(body, sizeof body,
             "From: <sanitize@example.test>\r\nTo: <%s>\r\nSubject: plain message\r\n\r\n"
             ".leading dot\nbare LF line\rbare CR line" ATTRIBUTE_MARK "after an attribute mark",
             recipient);
    expect("plain", smtp_send(host, plain_port, "sanitize.example.test", "sanitize@example.test",
                              recipient, body),
           SMTP_OK, 250);
}

static void send_starttls_auth(void)
{
    char recipient[160];
    char options[1024];

    unique_recipient(recipient, sizeof recipient, "starttls");
    snprintf(options, sizeof options,
             "host=%s\nport=%d\ntls=starttls\ntls_ca_file=%s\nuser=testuser\npassword=testpass\n"
             "helo=sanitize.example.test",
             host, submission_port, ca_file);
    expect("STARTTLS and AUTH", smtp_send_with(options, "sanitize@example.test", recipient,
                                               "Subject: STARTTLS and AUTH\r\n\r\ntext\r\n"),
           SMTP_OK, 250);
}

static void send_implicit_tls_profile(void)
{
    char recipient[160];
    char path[512];
    char profile[1024];

    snprintf(path, sizeof path, "%s/mvsmtp.conf", work_dir);
    snprintf(profile, sizeof profile,
             "# written by sanitize_host\n[smtps]\nhost = %s\nport = %d\ntls = implicit\n"
             "tls_ca_file = %s\nuser = testuser\npassword = testpass\n",
             host, smtps_port, ca_file);
    if (!write_file(path, profile, 0600) || setenv("MVSMTP_CONFIG", path, 1) != 0) {
        fail("implicit TLS profile", "failed to write the profile file");
        return;
    }

    unique_recipient(recipient, sizeof recipient, "smtps");
    expect("implicit TLS profile",
           smtp_send_with("profile=smtps" ATTRIBUTE_MARK "helo=sanitize.example.test",
                          "sanitize@example.test", recipient,
                          "Subject: implicit TLS from a profile\r\n\r\ntext\r\n"),
           SMTP_OK, 250);
}

static void send_without_ca(void)
{
    char options[256];

    /* The test server's certificate comes from a private CA that only CA_FILE contains. */
    snprintf(options, sizeof options, "host=%s\nport=%d\ntls=implicit\nuser=testuser\npassword=testpass",
             host, smtps_port);
    expect("TLS without the CA", smtp_send_with(options, "sanitize@example.test", "rcpt@example.test",
                                                "Subject: never sent\r\n\r\ntext\r\n"),
           SMTP_TLS_FAILED, 0);
}

static void send_composed(void)
{
    char recipient[160];
    char copy_recipient[160];
    char attachment_path[512];
    char html_path[512];
    char options[2048];
    char attachments[1024];

    snprintf(attachment_path, sizeof attachment_path, "%s/report.csv", work_dir);
    snprintf(html_path, sizeof html_path, "%s/body.html", work_dir);
    if (!write_file(attachment_path, "id,amount\n1,10.50\n2,\xc3\xa9t\xc3\xa9\n", 0644) ||
        !write_file(html_path, "<p>Hello <b>HTML</b></p>\n", 0644)) {
        fail("composed message", "failed to write the attachment files");
        return;
    }

    unique_recipient(recipient, sizeof recipient, "composed");
    unique_recipient(copy_recipient, sizeof copy_recipient, "composed-cc");
    snprintf(options, sizeof options,
             "host=%s\nport=%d\nhelo=sanitize.example.test\ncc=Copy <%s>\n"
             "reply_to=replies@example.test\nhtml_file=%s\nlog_file=%s/audit.log\n"
             "header=X-Sanitizer: memcheck and ASan",
             host, plain_port, copy_recipient, html_path, work_dir);
    /* A file with its own name and type, then content given in place of a path. */
    snprintf(attachments, sizeof attachments,
             "%s" VALUE_MARK "Report \xc3\xa9t\xc3\xa9.csv" VALUE_MARK "text/csv" ATTRIBUTE_MARK
             "" VALUE_MARK "notes.txt" VALUE_MARK "" VALUE_MARK "first line\xFCsecond line",
             attachment_path);
    expect("composed message",
           smtp_send_message(options, "Sanitizer <sanitize@example.test>", recipient,
                             "Composed \xc3\xa9t\xc3\xa9 message" ATTRIBUTE_MARK "second part",
                             "Line one" ATTRIBUTE_MARK "Line two, caf\xc3\xa9", attachments),
           SMTP_OK, 250);
}

static void send_refused(void)
{
    char recipient[160];
    char recipients[400];
    char options[256];

    snprintf(options, sizeof options, "host=%s\nport=%d\nhelo=sanitize.example.test", host, plain_port);

    expect("refused recipient",
           smtp_send_with(options, "sanitize@example.test", "reject@example.test",
                          "Subject: refused\r\n\r\ntext\r\n"),
           SMTP_RECIPIENTS_REJECTED, 550);

    unique_recipient(recipient, sizeof recipient, "partial");
    snprintf(recipients, sizeof recipients, "%s, reject@example.test" VALUE_MARK "tempfail@example.test",
             recipient);
    expect("partly refused recipients",
           smtp_send_with(options, "sanitize@example.test", recipients,
                          "Subject: partly refused\r\n\r\ntext\r\n"),
           SMTP_PARTIAL, 550);
}

static void send_invalid(void)
{
    char options[256];
    char long_option[8192];

    snprintf(options, sizeof options, "host=%s\nport=%d", host, plain_port);

    expect("NULL host", smtp_send(NULL, plain_port, NULL, "a@example.test", "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("NULL body", smtp_send(host, plain_port, NULL, "a@example.test", "b@example.test", NULL),
           SMTP_INVALID_ARGUMENT, 0);
    expect("port out of range", smtp_send(host, 70000, NULL, "a@example.test", "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("recipient without @", smtp_send(host, plain_port, NULL, "a@example.test", "no-at-sign", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("empty recipient list", smtp_send(host, plain_port, NULL, "a@example.test", " , ;", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("CR LF in the sender",
           smtp_send(host, plain_port, NULL, "a@example.test\r\nRCPT TO:<x@example.test>",
                     "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("unknown option in a call",
           smtp_send_with("host=127.0.0.1\nno_such_option=1", "a@example.test", "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("options without host", smtp_send_with("port=25", "a@example.test", "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("missing profile file",
           smtp_send_with("profile=no_such_profile_anywhere", "a@example.test", "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("missing attachment file",
           smtp_send_message(options, "a@example.test", "b@example.test", "s", "t",
                             "/nonexistent/mvsmtp-sanitize/attachment.pdf"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("NULL subject",
           smtp_send_message(options, "a@example.test", "b@example.test", NULL, "t", NULL),
           SMTP_INVALID_ARGUMENT, 0);
    expect("unknown charset",
           smtp_send_message("host=127.0.0.1\ncharset=no-such-charset", "a@example.test",
                             "b@example.test", "s", "t", NULL),
           SMTP_INVALID_ARGUMENT, 0);

    /* An option line of 8 KB with an unknown name must be rejected like a short one. */
    memset(long_option, 'x', sizeof long_option - 1);
    long_option[sizeof long_option - 1] = '\0';
    memcpy(long_option, "nosuch=", 7);
    expect("long unknown option",
           smtp_send_with(long_option, "a@example.test", "b@example.test", "x"),
           SMTP_INVALID_ARGUMENT, 0);

    expect("smtp_set_option NULL name", smtp_set_option(NULL, "1"), SMTP_INVALID_ARGUMENT, 0);
    expect("smtp_set_option NULL value", smtp_set_option("timeout", NULL), SMTP_INVALID_ARGUMENT, 0);
    expect("smtp_set_option unknown name", smtp_set_option("no_such_option", "1"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("smtp_set_option timeout 0", smtp_set_option("timeout", "0"), SMTP_INVALID_ARGUMENT, 0);
    expect("smtp_set_option header injection", smtp_set_option("header", "X-A: 1\r\nBcc: x@example.test"),
           SMTP_INVALID_ARGUMENT, 0);
    expect("smtp_set_option reserved header", smtp_set_option("header", "Subject: replaced"),
           SMTP_INVALID_ARGUMENT, 0);
}

static void check_static_strings(void)
{
    const char *version = smtp_version();
    int status;

    if (version == NULL || version[0] == '\0')
        fail("smtp_version", "returned NULL or an empty string");

    for (status = -2; status <= 100; status++) {
        const char *name = smtp_status_name(status);
        if (name == NULL || strncmp(name, "SMTP_", 5) != 0) {
            fail("smtp_status_name", "returned NULL or a name without the SMTP_ prefix");
            break;
        }
    }
    if (strcmp(smtp_status_name(12345), "SMTP_UNKNOWN_STATUS") != 0)
        fail("smtp_status_name", "an unknown status is not SMTP_UNKNOWN_STATUS");
    printf("static strings: version %s\n", version != NULL ? version : "(null)");
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT SUBMISSION_PORT SMTPS_PORT CA_FILE WORK_DIR\n", argv[0]);
        return 2;
    }
    host = argv[1];
    plain_port = atoi(argv[2]);
    submission_port = atoi(argv[3]);
    smtps_port = atoi(argv[4]);
    ca_file = argv[5];
    work_dir = argv[6];

    /* Process-wide defaults for every call below. */
    expect("smtp_set_option timeout", smtp_set_option("timeout", "20"), SMTP_OK, 0);
    expect("smtp_set_option header", smtp_set_option("HEADER", "X-Set-By: smtp_set_option"), SMTP_OK, 0);

    send_plain();
    send_starttls_auth();
    send_implicit_tls_profile();
    send_without_ca();
    send_composed();
    send_refused();
    send_invalid();
    check_static_strings();

    /* An empty value restores the default and removes the extra headers. */
    expect("smtp_set_option reset header", smtp_set_option("header", ""), SMTP_OK, 0);

    if (failures != 0) {
        printf("sanitize_host: %d failures\n", failures);
        return 1;
    }
    printf("sanitize_host: ok\n");
    return 0;
}
