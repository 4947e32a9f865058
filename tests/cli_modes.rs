//! The `sendmail` and `mail` modes of the command-line tool and its --json output, run as
//! a user runs them, against the Postfix test server. Each test checks the bytes that
//! Postfix delivered.
//!
//! Each child process gets its environment variables from `Command::env`, so no test
//! changes the environment of this process.

mod common;

use std::ffi::OsStr;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use common::fake_server::{expect, send, Action, FakeServer};
use common::{postfix, unique_address, TestServer};

/// Environment variables that the tool reads. They are removed from every child unless a
/// test sets them, so a value in the developer's shell cannot change the outcome.
const TOOL_VARIABLES: [&str; 4] = ["MVSMTP_PASSWORD", "MVSMTP_OAUTH_TOKEN", "MVSMTP_CONFIG", "MVSMTP_FROM"];

const SENDER: &str = "cli-modes@example.test";

fn tool() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mvsmtp"))
}

/// Runs `program` with `args`, the variables in `env`, and `stdin` as its input.
fn run(program: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(program);
    for variable in TOOL_VARIABLES {
        command.env_remove(variable);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child =
        command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the mvsmtp binary starts");

    // The tool exits without reading standard input when an argument is invalid, so the
    // write may find the pipe closed.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(error.kind(), ErrorKind::BrokenPipe, "writing standard input failed: {error}");
    }
    child.wait_with_output().unwrap()
}

/// Runs `mvsmtp MODE` with the test server's host and port, followed by `args`.
fn run_mode(server: &TestServer, mode: &str, args: &[&str], stdin: &[u8]) -> Output {
    let port = server.port.to_string();
    let mut all = vec![mode, "--host", &server.host, "--port", &port];
    all.extend_from_slice(args);
    run(tool(), &all, &[], stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Describes a finished child for assertion messages.
fn describe(output: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Parses the standard output as exactly one JSON object.
fn json(output: &Output) -> Value {
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("stdout is not one JSON object ({error}): {}", describe(output)));
    assert!(value.is_object(), "{}", describe(output));
    value
}

/// A folder for one test's files, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("cli-modes-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Writes a file with the given permission bits and returns its path.
    fn file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;

        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// Creates a symbolic link named `name` to the mvsmtp binary and returns its path.
    fn tool_link(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        std::os::unix::fs::symlink(tool(), &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Returns the header section of a delivered message, up to its first empty line.
fn header_section(message: &[u8]) -> String {
    let message = text(message);
    message.split("\n\n").next().unwrap_or_default().to_owned()
}

// sendmail

#[test]
fn sendmail_t_reads_to_cc_bcc() {
    let server = postfix();
    let to = unique_address("sm-t-to");
    let (cc, cc_named) = (unique_address("sm-t-cc"), unique_address("sm-t-cc-named"));
    let (bcc, bcc_folded) = (unique_address("sm-t-bcc"), unique_address("sm-t-bcc-folded"));

    let kept_head = format!(
        "From: Modes Test <{SENDER}>\nTo: \"Doe, Jane\" <{to}>\nCc: (team) {cc},\n  \"Named (not a comment)\" <{cc_named}>\nSubject: sendmail -t\n"
    );
    let bcc_lines = format!("Bcc: {bcc},\n\t{bcc_folded}\n");
    let body = "Body line\n.\n..two dots\nBcc: a body line is not a header\n";
    let message = format!("{kept_head}{bcc_lines}X-After-Bcc: kept\n\n{body}");
    let expected = format!("{kept_head}X-After-Bcc: kept\n\n{body}");

    let output = run_mode(&server, "sendmail", &["-t"], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));
    // Postfix also removes Bcc headers, so sendmail_t_sends_no_bcc_header checks the bytes
    // on the wire.
    for recipient in [&to, &cc, &cc_named, &bcc, &bcc_folded] {
        let delivered = server.delivered(recipient);
        assert_eq!(without_added_headers(&text(&delivered)), expected, "the message delivered to {recipient}");
    }
}

/// Returns the script of a server that accepts one message for `recipients` recipients.
fn accepting_script(recipients: usize) -> Vec<Action> {
    let mut script = vec![send("220 fake.example.test ESMTP\r\n"), expect("EHLO"), send("250-fake.example.test\r\n250 8BITMIME\r\n")];
    script.extend([expect("MAIL FROM:"), send("250 2.1.0 Ok\r\n")]);
    for _ in 0..recipients {
        script.extend([expect("RCPT TO:"), send("250 2.1.5 Ok\r\n")]);
    }
    script.extend([expect("DATA"), send("354 Go ahead\r\n"), Action::ReadData, send("250 2.0.0 Ok: queued\r\n")]);
    script.extend([expect("QUIT"), send("221 2.0.0 Bye\r\n")]);
    script
}

/// Returns the message lines that a fake server received, without the "DATA:" marks.
fn data_lines(lines: &[String]) -> Vec<&str> {
    lines.iter().filter_map(|line| line.strip_prefix("DATA:")).collect()
}

#[test]
fn sendmail_t_sends_no_bcc_header() {
    let fake = FakeServer::start(accepting_script(3));
    let port = fake.port().to_string();
    let message = "From: <a@example.test>\nTo: <to@example.test>\nBcc: one@example.test,\n two@example.test\nSubject: s\n\nBcc: body line\n";

    let output = run(tool(), &["sendmail", "-t", "--host", "127.0.0.1", "--port", &port], &[], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let received = fake.finish();
    assert!(received.mismatches.is_empty(), "{:#?}", received.mismatches);
    let commands = received.commands();
    for recipient in ["to@example.test", "one@example.test", "two@example.test"] {
        assert!(commands.contains(&format!("RCPT TO:<{recipient}>")), "{commands:#?}");
    }
    let lines = data_lines(&received.lines);
    assert!(lines[0].starts_with("Date: "), "{lines:?}");
    assert!(lines[1].starts_with("Message-ID: <"), "{lines:?}");
    assert_eq!(lines[2..], ["From: <a@example.test>", "To: <to@example.test>", "Subject: s", "", "Bcc: body line"]);
}

#[test]
fn sendmail_keeps_bcc_without_t() {
    let fake = FakeServer::start(accepting_script(1));
    let port = fake.port().to_string();
    let message = "From: <a@example.test>\nBcc: one@example.test\nSubject: s\n\n.\n";

    let output = run(tool(), &["sendmail", "--host", "127.0.0.1", "--port", &port, "to@example.test"], &[], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let received = fake.finish();
    assert!(received.mismatches.is_empty(), "{:#?}", received.mismatches);
    assert!(received.commands().contains(&"RCPT TO:<to@example.test>".to_owned()), "{:#?}", received.lines);
    // The lone "." line goes out dot-stuffed, so it does not end the message.
    let lines = data_lines(&received.lines);
    assert!(lines[0].starts_with("Date: "), "{lines:?}");
    assert!(lines[1].starts_with("Message-ID: <"), "{lines:?}");
    assert_eq!(lines[2..], ["From: <a@example.test>", "Bcc: one@example.test", "Subject: s", "", ".."]);
}

#[test]
fn sendmail_t_adds_arguments() {
    let server = postfix();
    let (in_header, in_argument) = (unique_address("sm-t-header"), unique_address("sm-t-argument"));
    let message = format!("From: <{SENDER}>\nTo: {in_header}\nSubject: header and argument\n\nx\n");

    let output = run_mode(&server, "sendmail", &["-t", &in_argument], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(without_added_headers(&text(&server.delivered(&in_header))), message);
    assert_eq!(without_added_headers(&text(&server.delivered(&in_argument))), message);
}

#[test]
fn sendmail_f_sets_return_path() {
    let server = postfix();
    let recipient = unique_address("sm-f");
    let bounce = unique_address("sm-f-bounce");
    let message = format!("From: Someone Else <other@example.test>\nTo: <{recipient}>\nSubject: -f\n\nx\n");

    let output = run_mode(&server, "sendmail", &["-f", &bounce, &recipient], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stored = text(&server.delivered_raw(&recipient));
    assert!(stored.starts_with(&format!("Return-Path: <{bounce}>\n")), "{stored}");
    assert_eq!(without_added_headers(&text(&server.delivered(&recipient))), message);
}

#[test]
fn sendmail_sender_from_header() {
    let server = postfix();
    let recipient = unique_address("sm-from-header");
    let from = unique_address("sm-from");
    let message = format!("From: \"Accounts, Billing\" <{from}>\nSubject: sender from header\n\nx\n");

    let output = run_mode(&server, "sendmail", &[&recipient], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stored = text(&server.delivered_raw(&recipient));
    assert!(stored.starts_with(&format!("Return-Path: <{from}>\n")), "{stored}");
}

#[test]
fn sendmail_sender_header_when_from_has_two() {
    let server = postfix();
    let recipient = unique_address("sm-sender-header");
    let sender = unique_address("sm-sender");
    let message = format!("From: a@example.test, b@example.test\nSender: <{sender}>\nSubject: two authors\n\nx\n");

    let output = run_mode(&server, "sendmail", &[&recipient], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stored = text(&server.delivered_raw(&recipient));
    assert!(stored.starts_with(&format!("Return-Path: <{sender}>\n")), "{stored}");
}

#[test]
fn sendmail_without_sender_exits_2() {
    let server = postfix();
    let output = run_mode(&server, "sendmail", &["to@example.test"], b"Subject: no From header\n\nx\n");

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("SMTP_INVALID_ARGUMENT"), "{stderr}");
    assert!(stderr.contains("-f ADDRESS"), "{stderr}");
}

#[test]
fn sendmail_recipients_as_arguments() {
    let server = postfix();
    let (first, second, third) = (unique_address("sm-arg1"), unique_address("sm-arg2"), unique_address("sm-arg3"));
    let in_header_only = unique_address("sm-header-only");
    let list = format!("{second}, {third}");
    // Without -t the headers name no recipient.
    let message = format!("From: <{SENDER}>\nTo: <{in_header_only}>\nCc: <{in_header_only}>\nSubject: arguments\n\nx\n");

    let output = run_mode(&server, "sendmail", &["-oi", &first, &list], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    for recipient in [&first, &second, &third] {
        assert_eq!(without_added_headers(&text(&server.delivered(recipient))), message, "the message delivered to {recipient}");
    }
    assert!(server.try_delivered(&in_header_only, Duration::from_secs(2)).is_none(), "a header address got the message without -t");
}

#[test]
fn sendmail_ignored_flags_accepted() {
    let server = postfix();
    let recipient = unique_address("sm-ignored");
    let message = format!("From: <{SENDER}>\nSubject: ignored flags\n\nx\n");
    let flags = ["-i", "-oi", "-odi", "-odb", "-oem", "-oee", "-oep", "-oeq", "-oew", "-om", "-m", "-v", "-bm"];

    let mut args: Vec<&str> = flags.to_vec();
    args.push(&recipient);
    let output = run_mode(&server, "sendmail", &args, message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(without_added_headers(&text(&server.delivered(&recipient))), message);
}

#[test]
fn sendmail_full_name_adds_from() {
    let server = postfix();
    let recipient = unique_address("sm-full-name");
    let message = "Subject: no From header\n\nx\n";

    let output = run_mode(&server, "sendmail", &["-F", "Jo Doe", "-f", SENDER, &recipient], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(without_added_headers(&text(&server.delivered(&recipient))), format!("From: \"Jo Doe\" <{SENDER}>\n{message}"));
}

#[test]
fn sendmail_refused_recipient_exits_11() {
    let server = postfix();
    let message = format!("From: <{SENDER}>\nSubject: refused\n\nx\n");

    let output = run_mode(&server, "sendmail", &["reject@example.test"], message.as_bytes());

    assert_eq!(output.status.code(), Some(11), "SMTP_RECIPIENTS_REJECTED is 11; {}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("SMTP_RECIPIENTS_REJECTED (reply 550)"), "{stderr}");
    assert!(stderr.contains("reject@example.test"), "{stderr}");
}

#[test]
fn sendmail_bad_flags_exit_2() {
    for flag in ["-q", "-bs", "-bp", "-oQ/tmp/queue", "-N", "-X", "--queue"] {
        let output = run(tool(), &["sendmail", flag, "never", "to@example.test"], &[], b"Subject: x\n\nx\n");

        assert_eq!(output.status.code(), Some(2), "{flag}: {}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&format!(" {flag}")), "{flag}: {stderr}");
        assert!(output.stdout.is_empty(), "{flag}: {}", describe(&output));
    }
}

#[test]
fn sendmail_password_option_refused() {
    let output = run(tool(), &["sendmail", "--host", "127.0.0.1", "--option", "password=Visible-In-ps", "to@example.test"], &[], b"x\n");

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("with ps"), "{stderr}");
    assert!(!stderr.contains("Visible-In-ps"), "{stderr}");
}

// mail

#[test]
fn mail_composes_with_cc_bcc_attachment() {
    let server = postfix();
    let dir = TempDir::new("mail-attach");
    let pdf = dir.file("report.pdf", b"%PDF-1.4 not really a PDF", 0o600);
    let csv = dir.file("figures.csv", b"month,total\n11,42\n", 0o600);
    let (to, cc, bcc) = (unique_address("mail-to"), unique_address("mail-cc"), unique_address("mail-bcc"));
    let from = unique_address("mail-from");
    let from_header = format!("Reports <{from}>");

    let args = ["-s", "Month end", "-c", &cc, "-b", &bcc, "-r", &from_header, "-a", pdf.to_str().unwrap(), "-a", csv.to_str().unwrap(), &to];
    let output = run_mode(&server, "mail", &args, b"Dear team,\nthe figures are attached.\n");

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));

    let stored = text(&server.delivered_raw(&to));
    assert!(stored.starts_with(&format!("Return-Path: <{from}>\n")), "{stored}");
    let delivered = server.delivered(&to);
    let headers = header_section(&delivered);
    assert!(headers.contains("\nSubject: Month end\n"), "{headers}");
    assert!(headers.contains(&format!("From: \"Reports\" <{from}>")), "{headers}");
    assert!(headers.contains(&format!("To: <{to}>")), "{headers}");
    assert!(headers.contains(&format!("Cc: <{cc}>")), "{headers}");
    assert!(headers.contains("Message-ID: <"), "{headers}");

    let delivered = text(&delivered);
    assert!(delivered.contains("Dear team,\nthe figures are attached.\n"), "{delivered}");
    assert!(delivered.contains("Content-Type: application/pdf"), "{delivered}");
    assert!(delivered.contains("filename=\"report.pdf\""), "{delivered}");
    assert!(delivered.contains("Content-Type: text/csv"), "{delivered}");
    assert!(delivered.contains("filename=\"figures.csv\""), "{delivered}");
    assert!(!delivered.contains(&bcc), "the Bcc address shows in the message: {delivered}");

    server.delivered(&cc);
    let hidden = text(&server.delivered(&bcc));
    assert!(!hidden.contains(&bcc), "the Bcc address shows in its own copy: {hidden}");
}

#[test]
fn mail_field_marks_become_line_breaks() {
    let server = postfix();
    let dir = TempDir::new("mail-marks");
    let (to, cc, bcc) = (unique_address("mail-marks-to"), unique_address("mail-marks-cc"), unique_address("mail-marks-bcc"));
    // A record written by a MultiValue system without NLS: attributes end in byte 0xFE.
    let record = dir.file("record.txt", b"Invoice 42\xfeAmount due: 12.50\xfe\xfeThank you.", 0o600);

    // The way ScarletDME's SENDMAIL statement calls it: mail -s "subject" -c cc -b bcc to < file.
    let port = server.port.to_string();
    let mut command = Command::new(tool());
    for variable in TOOL_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .args(["mail", "--host", &server.host, "--port", &port, "-s", "Invoice 42", "-c", &cc, "-b", &bcc, &to])
        .env("MVSMTP_FROM", SENDER)
        .stdin(std::fs::File::open(&record).unwrap())
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let delivered = text(&server.delivered(&to));
    assert!(delivered.contains("\nSubject: Invoice 42\n"), "{delivered}");
    assert!(delivered.contains("\n\nInvoice 42\nAmount due: 12.50\n\nThank you."), "{delivered}");
    assert!(!delivered.contains('\u{fffd}'), "{delivered}");
    server.delivered(&cc);
    server.delivered(&bcc);
}

#[test]
fn mail_from_environment() {
    let server = postfix();
    let to = unique_address("mail-env-from");
    let from = unique_address("mail-env-sender");
    let port = server.port.to_string();

    let args = ["mail", "--host", &server.host, "--port", &port, "-s", "sender from MVSMTP_FROM", &to];
    let output = run(tool(), &args, &[("MVSMTP_FROM", &from)], b"x\n");

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stored = text(&server.delivered_raw(&to));
    assert!(stored.starts_with(&format!("Return-Path: <{from}>\n")), "{stored}");
    assert!(header_section(&server.delivered(&to)).contains(&format!("From: <{from}>")), "{stored}");
}

#[test]
fn mail_without_sender_exits_2() {
    let server = postfix();
    let output = run_mode(&server, "mail", &["-s", "no sender", "to@example.test"], b"x\n");

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("-r ADDRESS"), "{stderr}");
    assert!(stderr.contains("MVSMTP_FROM"), "{stderr}");
}

#[test]
fn mail_refused_recipient_exits_11() {
    let server = postfix();
    let output = run_mode(&server, "mail", &["-s", "refused", "-r", SENDER, "reject@example.test"], b"x\n");

    assert_eq!(output.status.code(), Some(11), "SMTP_RECIPIENTS_REJECTED is 11; {}", describe(&output));
    assert!(text(&output.stderr).contains("SMTP_RECIPIENTS_REJECTED"), "{}", describe(&output));
}

#[test]
fn mail_bad_flags_exit_2() {
    for flag in ["-E", "-x", "--queue"] {
        let output = run(tool(), &["mail", "-s", "x", "-r", SENDER, flag, "to@example.test"], &[], b"x\n");

        assert_eq!(output.status.code(), Some(2), "{flag}: {}", describe(&output));
        assert!(text(&output.stderr).contains(flag), "{flag}: {}", describe(&output));
    }
}

// Links named sendmail and mail

#[test]
fn sendmail_link_runs_sendmail_mode() {
    let server = postfix();
    let dir = TempDir::new("link-sendmail");
    let link = dir.tool_link("sendmail");
    let recipient = unique_address("link-sendmail");
    let message = format!("From: <{SENDER}>\nTo: <{recipient}>\nSubject: through a link\n\nx\n");
    let port = server.port.to_string();

    let output = run(&link, &["-t", "-i", "--host", &server.host, "--port", &port], &[], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(without_added_headers(&text(&server.delivered(&recipient))), message);
}

#[test]
fn mail_link_runs_mail_mode() {
    let server = postfix();
    let dir = TempDir::new("link-mail");
    let link = dir.tool_link("mail");
    let recipient = unique_address("link-mail");
    let port = server.port.to_string();

    let args = ["-s", "through a link", "-r", SENDER, "--host", &server.host, "--port", &port, &recipient];
    let output = run(&link, &args, &[], b"Sent through a link named mail.\n");

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let delivered = text(&server.delivered(&recipient));
    assert!(delivered.contains("\nSubject: through a link\n"), "{delivered}");
    assert!(delivered.contains("Sent through a link named mail.\n"), "{delivered}");
}

// The default profile

fn default_profile_config(dir: &TempDir, server: &TestServer) -> String {
    let config = format!("# Written by tests/cli_modes.rs.\n[default]\nhost = {}\nport = {}\ntimeout = 10\n", server.host, server.port);
    dir.file("mvsmtp.conf", config.as_bytes(), 0o600).display().to_string()
}

#[test]
fn default_profile_used_without_host() {
    let server = postfix();
    let dir = TempDir::new("default-profile");
    let config = default_profile_config(&dir, &server);
    let env = [("MVSMTP_CONFIG", config.as_str())];

    let recipient = unique_address("default-profile-sendmail");
    let message = format!("From: <{SENDER}>\nSubject: default profile\n\nx\n");
    let output = run(tool(), &["sendmail", &recipient], &env, message.as_bytes());
    assert_eq!(output.status.code(), Some(0), "sendmail: {}", describe(&output));
    assert_eq!(without_added_headers(&text(&server.delivered(&recipient))), message);

    let recipient = unique_address("default-profile-mail");
    let output = run(tool(), &["mail", "-s", "default profile", "-r", SENDER, &recipient], &env, b"x\n");
    assert_eq!(output.status.code(), Some(0), "mail: {}", describe(&output));
    server.delivered(&recipient);
}

#[test]
fn default_profile_missing_exits_2() {
    let server = postfix();
    let dir = TempDir::new("default-profile-missing");
    let config = format!("[other]\nhost = {}\n", server.host);
    let config_path = dir.file("mvsmtp.conf", config.as_bytes(), 0o600).display().to_string();

    let output = run(tool(), &["sendmail", "-f", SENDER, "to@example.test"], &[("MVSMTP_CONFIG", &config_path)], b"x\n");

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("profile \"default\""), "{stderr}");
    assert!(stderr.contains("--host"), "{stderr}");
    assert!(stderr.contains(&config_path), "{stderr}");
}

// --json

#[test]
fn json_success_has_message_id() {
    let server = postfix();
    let recipient = unique_address("json-ok");
    let message_id = format!("<{}>", unique_address("json-message-id"));
    let message = format!("From: <{SENDER}>\nTo: <{recipient}>\nMessage-ID: {message_id}\nSubject: json\n\nx\n");

    let output = run_mode(&server, "sendmail", &["-t", "--json"], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));
    let result = json(&output);
    assert_eq!(result["status"], 0);
    assert_eq!(result["status_name"], "SMTP_OK");
    assert_eq!(result["reply_code"], 250);
    assert_eq!(result["error"], "");
    assert_eq!(result["message_id"], message_id.as_str());
    assert!(result.get("transcript").is_none(), "{result}");
    server.delivered(&recipient);
}

#[test]
fn json_carries_transcript() {
    let server = postfix();
    let recipient = unique_address("json-transcript");
    let message = format!("From: <{SENDER}>\nSubject: json transcript\n\nsecret words\n");

    let output = run_mode(&server, "sendmail", &["--json", "--transcript", &recipient], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let result = json(&output);
    let transcript = result["transcript"].as_str().unwrap_or_else(|| panic!("no transcript string: {result}"));
    assert!(transcript.contains(&format!("C: RCPT TO:<{recipient}>\n")), "{transcript}");
    assert!(transcript.contains("S: 250 2.0.0 Ok"), "{transcript}");
    assert!(!transcript.contains("secret words"), "{transcript}");
    // The message had no Message-ID, so the one added for it is reported.
    let message_id = result["message_id"].as_str().unwrap_or_else(|| panic!("no message_id: {result}"));
    assert!(message_id.ends_with("@example.test>"), "{result}");
    server.delivered(&recipient);
}

#[test]
fn json_refusal_keeps_stderr_empty() {
    let server = postfix();
    let message = format!("From: <{SENDER}>\nSubject: json refused\n\nx\n");

    let output = run_mode(&server, "sendmail", &["--json", "reject@example.test"], message.as_bytes());

    assert_eq!(output.status.code(), Some(11), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));
    let result = json(&output);
    assert_eq!(result["status"], 11);
    assert_eq!(result["status_name"], "SMTP_RECIPIENTS_REJECTED");
    assert_eq!(result["reply_code"], 550);
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("reject@example.test"), "{error}");
}

#[test]
fn json_for_composed_mail() {
    let server = postfix();
    let recipient = unique_address("json-mail");

    let output = run_mode(&server, "mail", &["--json", "-s", "json mail", "-r", SENDER, &recipient], b"x\n");

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let result = json(&output);
    assert_eq!(result["status_name"], "SMTP_OK");
    assert!(result.get("message_id").is_none(), "composed messages report no message_id: {result}");
    server.delivered(&recipient);
}

#[test]
fn json_for_send_subcommand() {
    let server = postfix();
    let recipient = unique_address("json-send");
    let message_id = format!("<{}>", unique_address("json-send-id"));
    let message = format!("Message-ID: {message_id}\nSubject: json send\n\nx\n");
    let port = server.port.to_string();

    let args = ["send", "--host", &server.host, "--port", &port, "--from", SENDER, "--to", &recipient, "--json", "--transcript"];
    let output = run(tool(), &args, &[], message.as_bytes());

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let result = json(&output);
    assert_eq!(result["status"], 0);
    assert_eq!(result["message_id"], message_id.as_str());
    let transcript = result["transcript"].as_str().unwrap();
    assert!(transcript.contains("C: DATA") || transcript.contains("C: BDAT"), "{result}");
    server.delivered(&recipient);
}

#[test]
fn json_reports_usage_errors() {
    let cases: [&[&str]; 3] = [
        &["sendmail", "--json", "-q", "to@example.test"],
        &["mail", "--json", "-s", "x", "to@example.test"],
        &["send", "--json", "--host", "127.0.0.1", "--to", "to@example.test"],
    ];
    for args in cases {
        let output = run(tool(), args, &[], b"x\n");

        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", describe(&output));
        let result = json(&output);
        assert_eq!(result["status"], 2, "{args:?}");
        assert_eq!(result["status_name"], "SMTP_INVALID_ARGUMENT", "{args:?}");
        assert_eq!(result["reply_code"], 0, "{args:?}");
        assert!(!result["error"].as_str().unwrap().is_empty(), "{args:?}: {result}");
        assert!(!output.stderr.is_empty(), "{args:?}: the tool's own argument errors also go to stderr");
    }
}

// Help

#[test]
fn help_describes_modes() {
    let cases: [(&[&str], &[&str]); 4] = [
        (&["sendmail", "--help"], &["-t ", "-f ADDRESS", "-F NAME", "-oi", "--password-file FILE", "--json", "profile \"default\""]),
        (&["help", "sendmail"], &["-bm"]),
        (&["mail", "--help"], &["-s SUBJECT", "-c ADDRESSES", "-b ADDRESSES", "-r ADDRESS", "-a FILE", "MVSMTP_FROM", "--transcript"]),
        (&["--help"], &["sendmail", "mail", "send", "statuses"]),
    ];
    for (args, expected) in cases {
        let output = run(tool(), args, &[], b"");

        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", describe(&output));
        let help = text(&output.stdout);
        for phrase in expected {
            assert!(help.contains(phrase), "{args:?} does not mention {phrase:?}:\n{help}");
        }
    }
}

#[test]
fn help_through_link() {
    let dir = TempDir::new("link-help");
    let link = dir.tool_link("mailx");

    let output = run(&link, &["--help"], &[], b"");

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(text(&output.stdout).contains("-s SUBJECT"), "{}", describe(&output));
    assert_eq!(link.file_name(), Some(OsStr::new("mailx")));
}

/// Returns a delivered message without the Date and Message-ID lines that the sendmail
/// mode adds at the top of a message that has neither, and checks that both are there.
fn without_added_headers(delivered: &str) -> String {
    let mut parts = delivered.splitn(3, '\n');
    let date = parts.next().unwrap_or("");
    let message_id = parts.next().unwrap_or("");
    assert!(date.starts_with("Date: "), "no Date line added: {delivered}");
    assert!(message_id.starts_with("Message-ID: <"), "no Message-ID line added: {delivered}");
    parts.next().unwrap_or("").to_owned()
}
