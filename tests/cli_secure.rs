//! The `mvsmtp` command-line tool with TLS, SMTP AUTH, profiles and the audit log, against
//! the Postfix test server's submission port (STARTTLS and AUTH required).
//!
//! Each child process gets its environment variables from `Command::env`, so no test
//! changes the environment of this process.

mod common;

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use common::{postfix, test_state_dir, unique_address, TestServer};

const USER: &str = "testuser";
const PASSWORD: &str = "testpass";
const WRONG_PASSWORD: &str = "Wr0ng-Pass;word";
const SENDER: &str = "cli-secure@example.test";

/// Environment variables that the tool reads. They are removed from every child unless a
/// test sets them, so a value in the developer's shell cannot change the outcome.
const TOOL_VARIABLES: [&str; 3] = ["MVSMTP_PASSWORD", "MVSMTP_OAUTH_TOKEN", "MVSMTP_CONFIG"];

fn submission_port() -> String {
    std::env::var("MVSMTP_TEST_SUBMISSION_PORT").unwrap_or_else(|_| "2587".into())
}

fn ca_file() -> String {
    test_state_dir().join("ca.crt").display().to_string()
}

/// A folder for one test's files, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("cli-secure-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        set_mode(&path, 0o700);
        TempDir(path)
    }

    /// Writes a file with the given permission bits and returns its path.
    fn file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        set_mode(&path, mode);
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `mvsmtp` with `args`, the variables in `env`, and `stdin` as the message.
fn mvsmtp(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvsmtp"));
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
        assert_eq!(error.kind(), ErrorKind::BrokenPipe, "writing the message to mvsmtp failed: {error}");
    }
    child.wait_with_output().unwrap()
}

/// Returns the arguments for the submission port and one recipient, followed by `extra`.
fn submission_args<'a>(server: &'a TestServer, port: &'a str, recipient: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["send", "--host", &server.host, "--port", port, "--from", SENDER, "--to", recipient];
    args.extend_from_slice(extra);
    args
}

fn message_for(recipient: &str, message_id: &str) -> Vec<u8> {
    format!("From: <{SENDER}>\nTo: <{recipient}>\nSubject: cli secure\nMessage-ID: {message_id}\n\nSent by tests/cli_secure.rs.\n")
        .into_bytes()
}

fn unique_message_id() -> String {
    let address = unique_address("message-id");
    format!("<{address}>")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Describes a finished child for assertion messages.
fn describe(output: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Returns the password as written and in the base64 forms that AUTH PLAIN and AUTH LOGIN send.
fn secret_forms(password: &str) -> Vec<String> {
    vec![
        password.to_string(),
        BASE64.encode(password),
        BASE64.encode(format!("\0{USER}\0{password}")),
        BASE64.encode(format!("{USER}\0{USER}\0{password}")),
    ]
}

fn assert_no_secret(place: &str, text: &str, password: &str) {
    for form in secret_forms(password) {
        assert!(!text.contains(&form), "{place} contains {form:?}:\n{text}");
    }
}

/// Returns the text of a configuration file with one profile for the submission port.
fn profile_config(server: &TestServer, name: &str) -> String {
    format!(
        "# Written by tests/cli_secure.rs.\n[{name}]\nhost = {host}\nport = {port}\ntls = starttls\nuser = {USER}\npassword = {PASSWORD}\ntls_ca_file = {ca}\ntimeout = 10\n",
        host = server.host,
        port = submission_port(),
        ca = ca_file()
    )
}

// Delivery with credentials

#[test]
fn password_file_delivers() {
    let server = postfix();
    let port = submission_port();
    let dir = TempDir::new("password-file");
    let password_file = dir.file("password", &format!("{PASSWORD}\n"), 0o600);
    let password_path = password_file.display().to_string();
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-password-file");
    let message = message_for(&recipient, &unique_message_id());

    // No --tls: with credentials on a port other than 465 and 587, the default is starttls.
    let args = submission_args(&server, &port, &recipient, &["--user", USER, "--password-file", &password_path, "-o", &ca_option]);
    let output = mvsmtp(&args, &[], &message);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(output.stdout.is_empty(), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));
    assert_eq!(server.delivered(&recipient), message);

    let stored = text(&server.delivered_raw(&recipient));
    assert!(stored.contains("(using TLSv1."), "{stored}");
    assert!(stored.contains("(Authenticated sender: testuser@example.test)"), "{stored}");
}

#[test]
fn password_from_environment_delivers() {
    let server = postfix();
    let port = submission_port();
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-password-env");
    let message = message_for(&recipient, &unique_message_id());

    let args = submission_args(&server, &port, &recipient, &["--tls", "starttls", "--user", USER, "-o", &ca_option]);
    let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", PASSWORD)], &message);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.delivered(&recipient), message);
}

#[test]
fn wrong_password_exits_16() {
    let server = postfix();
    let port = submission_port();
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-wrong-password");

    let args = submission_args(&server, &port, &recipient, &["--user", USER, "-o", &ca_option, "--transcript"]);
    let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", WRONG_PASSWORD)], b"Subject: x\n\nx\n");

    assert_eq!(output.status.code(), Some(16), "SMTP_AUTH_FAILED is 16; {}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("SMTP_AUTH_FAILED (reply 535)"), "{stderr}");
    assert_no_secret("stderr", &stderr, WRONG_PASSWORD);
    assert_no_secret("the transcript", &text(&output.stdout), WRONG_PASSWORD);
}

#[test]
fn password_file_wins_over_environment() {
    let server = postfix();
    let port = submission_port();
    let dir = TempDir::new("password-precedence");
    let password_file = dir.file("password", &format!("{PASSWORD}\r\nsecond line is ignored\n"), 0o600);
    let password_path = password_file.display().to_string();
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-password-precedence");
    let message = message_for(&recipient, &unique_message_id());

    let args = submission_args(&server, &port, &recipient, &["--user", USER, "--password-file", &password_path, "-o", &ca_option]);
    let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", WRONG_PASSWORD)], &message);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(server.delivered(&recipient), message);
}

// Secrets on the command line and in the output

#[test]
fn password_option_refused() {
    let secret = "Visible-In-ps";
    for option in
        [format!("password={secret}"), format!("PASSWORD={secret}"), format!(" password ={secret}"), format!("oauth_token={secret}")]
    {
        let output = mvsmtp(
            &["send", "--host", "127.0.0.1", "--from", SENDER, "--to", "to@example.test", "--transcript", "-o", &option],
            &[],
            b"x\n",
        );

        assert_eq!(output.status.code(), Some(2), "-o {option}: {}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("SMTP_INVALID_ARGUMENT"), "-o {option}: {stderr}");
        assert!(stderr.contains("with ps"), "-o {option}: {stderr}");
        assert!(!stderr.contains(secret), "-o {option}: {stderr}");
        assert!(output.stdout.is_empty(), "-o {option} connected: {}", describe(&output));
    }
}

#[test]
fn transcript_hides_password() {
    let server = postfix();
    let port = submission_port();
    let ca_option = format!("tls_ca_file={}", ca_file());
    for mechanism in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let recipient = unique_address(&format!("cli-transcript-{}", mechanism.to_lowercase()));
        let auth_option = format!("auth={mechanism}");

        let args = submission_args(&server, &port, &recipient, &["--user", USER, "-o", &ca_option, "-o", &auth_option, "--transcript"]);
        let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", PASSWORD)], &message_for(&recipient, &unique_message_id()));

        assert_eq!(output.status.code(), Some(0), "{mechanism}: {}", describe(&output));
        let transcript = text(&output.stdout);
        assert!(transcript.contains(&format!("C: AUTH {mechanism}")), "{mechanism}: {transcript}");
        assert!(transcript.contains("S: 235 "), "{mechanism}: {transcript}");
        assert_no_secret("the transcript", &transcript, PASSWORD);
        assert_no_secret("stderr", &text(&output.stderr), PASSWORD);
    }
}

// Profiles

#[test]
fn profile_from_config_delivers() {
    let server = postfix();
    let dir = TempDir::new("profile");
    let config = dir.file("mvsmtp.conf", &profile_config(&server, "cli-secure"), 0o600);
    let config_path = config.display().to_string();
    let recipient = unique_address("cli-profile");
    let message = message_for(&recipient, &unique_message_id());

    let args = ["send", "--profile", "cli-secure", "--from", SENDER, "--to", &recipient, "--transcript"];
    let output = mvsmtp(&args, &[("MVSMTP_CONFIG", &config_path)], &message);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let transcript = text(&output.stdout);
    assert!(transcript.contains("C: STARTTLS"), "{transcript}");
    assert!(transcript.contains("C: AUTH "), "{transcript}");
    assert_no_secret("the transcript", &transcript, PASSWORD);
    assert_eq!(server.delivered(&recipient), message);
}

#[test]
fn profile_readable_by_others_refused() {
    let server = postfix();
    let dir = TempDir::new("profile-0644");
    let config = dir.file("mvsmtp.conf", &profile_config(&server, "cli-secure"), 0o644);
    let config_path = config.display().to_string();
    let recipient = unique_address("cli-profile-0644");

    let args = ["send", "--profile", "cli-secure", "--from", SENDER, "--to", &recipient, "--transcript"];
    let output = mvsmtp(&args, &[("MVSMTP_CONFIG", &config_path)], b"Subject: x\n\nx\n");

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("chmod 600 {config_path}")), "{stderr}");
    assert_no_secret("stderr", &stderr, PASSWORD);
    assert!(!text(&output.stdout).contains("Connected"), "{}", describe(&output));
}

#[test]
fn unknown_profile_names_file() {
    let server = postfix();
    let dir = TempDir::new("profile-unknown");
    let config = dir.file("mvsmtp.conf", &profile_config(&server, "cli-secure"), 0o600);
    let config_path = config.display().to_string();

    let args = ["send", "--profile", "absent", "--from", SENDER, "--to", "to@example.test"];
    let output = mvsmtp(&args, &[("MVSMTP_CONFIG", &config_path)], b"x\n");

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("\"absent\""), "{stderr}");
    assert!(stderr.contains(&config_path), "{stderr}");
}

#[test]
fn arguments_override_profile() {
    let server = postfix();
    let dir = TempDir::new("profile-override");
    let config = dir.file("mvsmtp.conf", &profile_config(&server, "cli-secure"), 0o600);
    let config_path = config.display().to_string();
    let recipient = unique_address("cli-profile-override");

    // The profile's password is right, so only MVSMTP_PASSWORD can make AUTH fail.
    let args = ["send", "--profile", "cli-secure", "--from", SENDER, "--to", &recipient];
    let output = mvsmtp(&args, &[("MVSMTP_CONFIG", &config_path), ("MVSMTP_PASSWORD", WRONG_PASSWORD)], b"Subject: x\n\nx\n");

    assert_eq!(output.status.code(), Some(16), "{}", describe(&output));
}

// Audit log

/// Reads the audit log and returns its lines, failing unless each ends in LF.
fn audit_lines(path: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("reading {} failed: {error}", path.display()));
    assert!(log.ends_with('\n'), "{log:?}");
    log.lines().map(str::to_string).collect()
}

#[test]
fn log_file_gets_audit_line() {
    let server = postfix();
    let port = submission_port();
    let dir = TempDir::new("audit");
    let log_path = dir.path("audit.log");
    let log_option = format!("log_file={}", log_path.display());
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-audit");
    let message_id = unique_message_id();

    let args = submission_args(&server, &port, &recipient, &["--user", USER, "-o", &ca_option, "-o", &log_option]);
    let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", PASSWORD)], &message_for(&recipient, &message_id));

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let lines = audit_lines(&log_path);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert!(line.contains(&format!(" server={}:{port} ", server.host)), "{line}");
    assert!(line.contains(&format!(" from=<{SENDER}> ")), "{line}");
    assert!(line.contains(&format!(" to=<{recipient}>:250 ")), "{line}");
    assert!(line.contains(" status=SMTP_OK "), "{line}");
    assert!(line.contains(" reply=\"250 "), "{line}");
    assert!(line.ends_with(&format!(" message-id={message_id}")), "{line}");
    assert_no_secret("the audit line", line, PASSWORD);
    server.delivered(&recipient);
}

#[test]
fn log_file_created_private() {
    use std::os::unix::fs::PermissionsExt;

    let server = postfix();
    let port = server.port.to_string();
    let dir = TempDir::new("audit-mode");
    let log_path = dir.path("audit.log");
    let log_option = format!("log_file={}", log_path.display());
    let recipient = unique_address("cli-audit-mode");

    let args = ["send", "--host", &server.host, "--port", &port, "--from", SENDER, "--to", &recipient, "-o", &log_option];
    let output = mvsmtp(&args, &[], b"Subject: no message id\n\nx\n");

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let mode = std::fs::metadata(&log_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the audit log was created with mode {mode:o}");
    let lines = audit_lines(&log_path);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(!lines[0].contains("message-id="), "{}", lines[0]);
    server.delivered(&recipient);
}

#[test]
fn log_file_records_partial() {
    let server = postfix();
    let port = submission_port();
    let dir = TempDir::new("audit-partial");
    let log_path = dir.path("audit.log");
    let log_option = format!("log_file={}", log_path.display());
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-audit-partial");

    let args =
        submission_args(&server, &port, &recipient, &["--to", "reject@example.test", "--user", USER, "-o", &ca_option, "-o", &log_option]);
    let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", PASSWORD)], &message_for(&recipient, &unique_message_id()));

    assert_eq!(output.status.code(), Some(1), "SMTP_PARTIAL is 1; {}", describe(&output));
    let lines = audit_lines(&log_path);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert!(line.contains(&format!(" to=<{recipient}>:250,<reject@example.test>:550 ")), "{line}");
    assert!(line.contains(" status=SMTP_PARTIAL "), "{line}");
    server.delivered(&recipient);
}

#[test]
fn log_file_records_auth_failure() {
    let server = postfix();
    let port = submission_port();
    let dir = TempDir::new("audit-auth");
    let log_path = dir.path("audit.log");
    let log_option = format!("log_file={}", log_path.display());
    let ca_option = format!("tls_ca_file={}", ca_file());
    let recipient = unique_address("cli-audit-auth");

    let args = submission_args(&server, &port, &recipient, &["--user", USER, "-o", &ca_option, "-o", &log_option]);
    let output = mvsmtp(&args, &[("MVSMTP_PASSWORD", WRONG_PASSWORD)], b"Subject: x\n\nx\n");

    assert_eq!(output.status.code(), Some(16), "{}", describe(&output));
    let lines = audit_lines(&log_path);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert!(line.contains(&format!(" to=<{recipient}>:0 ")), "{line}");
    assert!(line.contains(" status=SMTP_AUTH_FAILED "), "{line}");
    assert!(line.contains(" reply=\"535 "), "{line}");
    assert_no_secret("the audit line", line, WRONG_PASSWORD);
}

#[test]
fn log_file_appends_one_line_per_message() {
    let server = postfix();
    let port = server.port.to_string();
    let dir = TempDir::new("audit-append");
    let log_path = dir.path("audit.log");
    let log_option = format!("log_file={}", log_path.display());
    let recipients = [unique_address("cli-audit-first"), unique_address("cli-audit-second")];

    for recipient in &recipients {
        let args = ["send", "--host", &server.host, "--port", &port, "--from", SENDER, "--to", recipient, "-o", &log_option];
        let output = mvsmtp(&args, &[], b"Subject: append\n\nx\n");
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    }

    let lines = audit_lines(&log_path);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (line, recipient) in lines.iter().zip(&recipients) {
        assert!(line.contains(&format!(" to=<{recipient}>:250 ")), "{line}");
    }
}
