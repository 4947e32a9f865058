//! The `mvsmtp` command-line tool, run as a user runs it, against the Postfix test server.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{postfix, unique_address};

fn mvsmtp(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mvsmtp"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mvsmtp binary starts");
    // The tool may exit before reading its input, for example on an invalid argument.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "writing the message to mvsmtp failed: {error}");
    }
    child.wait_with_output().unwrap()
}

#[test]
fn send_delivers_stdin() {
    let server = postfix();
    let recipient = unique_address("cli");
    let port = server.port.to_string();
    let message = b"Subject: from the command line\n\nHello from mvsmtp.\n";
    let output = mvsmtp(&["send", "--host", &server.host, "--port", &port, "--from", "cli@example.test", "--to", &recipient], message);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty());
    assert!(output.stderr.is_empty());
    assert_eq!(server.delivered(&recipient), message);
}

#[test]
fn transcript_printed_on_request() {
    let server = postfix();
    let recipient = unique_address("cli-transcript");
    let port = server.port.to_string();
    let output = mvsmtp(
        &["send", "--host", &server.host, "--port", &port, "--from", "cli@example.test", "--to", &recipient, "--transcript"],
        b"Subject: t\n\nsecret words\n",
    );
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(transcript.contains("S: 220 "), "{transcript}");
    assert!(transcript.contains(&format!("C: RCPT TO:<{recipient}>")), "{transcript}");
    assert!(!transcript.contains("secret words"), "{transcript}");
}

#[test]
fn exit_status_is_status_code() {
    let server = postfix();
    let recipient = unique_address("cli-partial");
    let port = server.port.to_string();
    let output = mvsmtp(
        &["send", "--host", &server.host, "--port", &port, "--from", "cli@example.test", "--to", &recipient, "--to", "reject@example.test"],
        b"Subject: p\n\nx\n",
    );
    assert_eq!(output.status.code(), Some(1), "SMTP_PARTIAL is 1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SMTP_PARTIAL"), "{stderr}");
    assert!(stderr.contains("reject@example.test"), "{stderr}");
    server.delivered(&recipient);
}

#[test]
fn value_mark_byte_separates_recipients() {
    use std::os::unix::ffi::OsStrExt;

    let server = postfix();
    let (first, second) = (unique_address("cli-mark1"), unique_address("cli-mark2"));
    let mut to = first.as_bytes().to_vec();
    to.push(0xFD);
    to.extend_from_slice(second.as_bytes());
    let output = Command::new(env!("CARGO_BIN_EXE_mvsmtp"))
        .args(["send", "--host", &server.host, "--port", &server.port.to_string(), "--from", "cli@example.test", "--to"])
        .arg(std::ffi::OsStr::from_bytes(&to))
        .arg("--file")
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    server.delivered(&first);
    server.delivered(&second);
}

#[test]
fn invalid_recipient_exits_2() {
    let output = mvsmtp(&["send", "--host", "127.0.0.1", "--from", "a@example.test", "--to", "no-at-sign"], b"x\n");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SMTP_INVALID_ARGUMENT"), "{stderr}");
    assert!(stderr.contains("no-at-sign"), "{stderr}");
}

#[test]
fn bad_timeout_exits_2() {
    let output = mvsmtp(&["send", "--host", "127.0.0.1", "--from", "a@example.test", "--to", "b@example.test", "--timeout", "soon"], b"x\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("timeout"));
}

#[test]
fn negative_port_named() {
    let output = mvsmtp(&["send", "--host", "127.0.0.1", "--port", "-1", "--from", "a@example.test", "--to", "b@example.test"], b"x\n");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("option port"), "{stderr}");
}

#[test]
fn missing_option_exits_2() {
    let output = mvsmtp(&["send", "--host", "127.0.0.1"], b"");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn statuses_listed() {
    let output = mvsmtp(&["statuses"], b"");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("  5  SMTP_TIMEOUT"), "{text}");
    assert!(text.contains(" 99  SMTP_INTERNAL_ERROR"), "{text}");
}

#[test]
fn subject_composes_message() {
    let server = postfix();
    let (recipient, hidden) = (unique_address("cli-compose"), unique_address("cli-bcc"));
    let folder = std::env::temp_dir().join(format!("mvsmtp-cli-compose-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let attachment = folder.join("report.pdf");
    std::fs::write(&attachment, b"%PDF-1.4 not really a PDF").unwrap();
    let html = folder.join("body.html");
    std::fs::write(&html, "<p>Hello</p>\n").unwrap();

    let attach = format!("{};name=Report 2026.pdf", attachment.display());
    let port = server.port.to_string();
    let output = mvsmtp(
        &[
            "send", "--host", &server.host, "--port", &port, "--from", "Billing <billing@example.test>", "--to", &recipient,
            "--bcc", &hidden, "--subject", "Invoice 42 \u{2013} \u{e9}t\u{e9}", "--attach", &attach, "--html",
            html.to_str().unwrap(), "--header", "X-Invoice: 42",
        ],
        b"Dear customer,\nyour invoice is attached.\n",
    );
    std::fs::remove_dir_all(&folder).unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    let delivered = String::from_utf8_lossy(&server.delivered(&recipient)).into_owned();
    assert!(delivered.contains("Subject: =?utf-8?"), "{delivered}");
    assert!(delivered.contains("X-Invoice: 42"), "{delivered}");
    assert!(delivered.contains("multipart/alternative"), "{delivered}");
    assert!(delivered.contains("Content-Type: application/pdf"), "{delivered}");
    assert!(delivered.contains("filename=\"Report 2026.pdf\""), "{delivered}");
    assert!(!delivered.contains(&hidden), "the Bcc address shows in the message: {delivered}");
    server.delivered(&hidden);
}

#[test]
fn attach_without_subject_refused() {
    let output = mvsmtp(&["send", "--host", "127.0.0.1", "--from", "a@example.test", "--to", "b@example.test", "--attach", "/etc/hostname"], b"x\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--subject"));
}
