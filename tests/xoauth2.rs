//! End-to-end tests of AUTH XOAUTH2 and AUTH LOGIN through the C interface, against the
//! smtp-server in tests/xoauth2/server.mjs, because Postfix offers no XOAUTH2.
//!
//! Every test starts its own server on a port that the system chooses, with a fresh
//! directory for the messages it stores, so the tests can run in parallel. The server uses
//! the certificate of the Postfix test server (MVSMTP_TEST_STATE, default
//! /tmp/mvsmtp-postfix), which is issued for `localhost` and `127.0.0.1`.

mod common;

use std::ffi::{CStr, CString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::Outcome;
use mvsmtp::ffi;
use mvsmtp::ffi::status::*;

const OAUTH_USER: &str = "oauth-user@example.test";
const GOOD_TOKEN: &str = "good-token-123";
const BAD_TOKEN: &str = "expired-token-456";

const LOGIN_USER: &str = "login-user@example.test";
const LOGIN_PASSWORD: &str = "login-pass";
const WRONG_PASSWORD: &str = "wrong-pass-789";

const SENDER: &str = "sender@example.test";
const RECIPIENT: &str = "recipient@example.test";

/// A body with CRLF line endings, as smtp-server stores it, and a line that needs
/// dot-stuffing.
const BODY: &str = "From: Sender <sender@example.test>\r\nSubject: XOAUTH2 test\r\n\r\nHello,\r\n.a line that starts with a dot\r\nend\r\n";

/// How long the server may take to print its port.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// The transcript placeholder for an AUTH argument or a response to a 334 challenge.
const HIDDEN: &str = "<credentials hidden>";

/// Returns the directory with the test certificates, which tests/postfix/test-server.sh creates.
fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var("MVSMTP_TEST_STATE").unwrap_or_else(|_| "/tmp/mvsmtp-postfix".into()))
}

/// Returns a path under the system's temporary directory that no other test uses.
fn unique_temp_path(tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("mvsmtp-xoauth2-{tag}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)))
}

/// A running tests/xoauth2/server.mjs. Dropping it kills the server and removes its
/// message directory.
struct AuthServer {
    child: Child,
    // The server stops when its stdin closes, so the pipe stays open for the server's lifetime.
    _stdin: ChildStdin,
    port: u16,
    maildir: PathBuf,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl AuthServer {
    /// Starts the server with plain SMTP and STARTTLS.
    fn plain() -> AuthServer {
        AuthServer::start(false)
    }

    /// Starts the server with implicit TLS from the first byte.
    fn implicit_tls() -> AuthServer {
        AuthServer::start(true)
    }

    fn start(secure: bool) -> AuthServer {
        let project = Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = project.join("tests/xoauth2/server.mjs");
        let package = project.join("tests/xoauth2/node_modules/smtp-server");
        assert!(
            package.is_dir(),
            "{} is missing: run `npm ci --prefix tests/xoauth2` (needs Node.js 20 or later) before these tests",
            package.display()
        );

        let state = state_dir();
        let (cert, key) = (state.join("server.crt"), state.join("server.key"));
        assert!(
            cert.is_file() && key.is_file(),
            "the test certificate {} or its key {} is missing: start the test server with `sudo bash tests/postfix/test-server.sh up`, or set MVSMTP_TEST_STATE to its directory",
            cert.display(),
            key.display()
        );

        let maildir = unique_temp_path("maildir");
        std::fs::create_dir_all(&maildir).unwrap_or_else(|error| panic!("creating {} failed: {error}", maildir.display()));

        let mut command = Command::new("node");
        command.arg(&script).arg("--port").arg("0").arg("--cert").arg(&cert).arg("--key").arg(&key).arg("--maildir").arg(&maildir);
        if secure {
            command.arg("--secure");
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&maildir);
                panic!("starting `node` failed: {error}. Install Node.js 20 or later and run `npm ci --prefix tests/xoauth2`");
            }
        };

        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");

        // The server's log goes to stderr, kept for failure messages.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_copy = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut chunk = [0u8; 4096];
            while let Ok(count) = reader.read(&mut chunk) {
                if count == 0 {
                    break;
                }
                stderr_copy.lock().unwrap().extend_from_slice(&chunk[..count]);
            }
        });

        // The first stdout line gives the port. A thread reads it so the wait can be bounded,
        // and then drains the rest of stdout.
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let first = reader.read_line(&mut line).map(|_| line);
            let _ = sender.send(first);
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        });

        let mut server = AuthServer { child, _stdin: stdin, port: 0, maildir, stderr };
        let first_line = match receiver.recv_timeout(STARTUP_LIMIT) {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => panic!("reading the server's stdout failed: {error}; its stderr:\n{}", server.log()),
            Err(_) => panic!("the server printed no \"listening\" line within {} s; its stderr:\n{}", STARTUP_LIMIT.as_secs(), server.log()),
        };
        server.port = first_line
            .trim_end()
            .strip_prefix("listening 127.0.0.1:")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("expected \"listening 127.0.0.1:PORT\" from the server, got {first_line:?}; its stderr:\n{}", server.log()));
        server
    }

    /// Returns what the server wrote to stderr so far.
    fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Returns the options that reach this server: host, port, TLS mode, the test CA and a
    /// 10-second timeout.
    fn options(&self, tls: &str) -> Vec<String> {
        vec![
            "host=127.0.0.1".into(),
            format!("port={}", self.port),
            format!("tls={tls}"),
            format!("tls_ca_file={}", state_dir().join("ca.crt").display()),
            "timeout=10".into(),
        ]
    }

    /// Returns the paths of the stored messages, sorted.
    fn stored_messages(&self) -> Vec<PathBuf> {
        let entries = std::fs::read_dir(&self.maildir).unwrap_or_else(|error| panic!("reading {} failed: {error}", self.maildir.display()));
        let mut paths: Vec<PathBuf> =
            entries.flatten().map(|entry| entry.path()).filter(|path| path.extension().is_some_and(|ext| ext == "eml")).collect();
        paths.sort();
        paths
    }

    /// Returns the one stored message split into its envelope line (without CRLF) and the
    /// bytes after it. smtp-server stores the message before it replies 250, so no polling is
    /// needed after SMTP_OK.
    fn only_message(&self) -> (String, Vec<u8>) {
        let paths = self.stored_messages();
        assert_eq!(paths.len(), 1, "expected one stored message in {}, found {paths:?}; server log:\n{}", self.maildir.display(), self.log());
        let bytes = std::fs::read(&paths[0]).unwrap_or_else(|error| panic!("reading {} failed: {error}", paths[0].display()));
        let line_end = bytes.windows(2).position(|pair| pair == b"\r\n").expect("the stored message has an envelope line ending in CRLF");
        (String::from_utf8_lossy(&bytes[..line_end]).into_owned(), bytes[line_end + 2..].to_vec())
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// Calls `smtp_send_with` as a C program does and collects the diagnostics.
fn send_with(options: &[String], body: &str) -> Outcome {
    let options = CString::new(options.join("\n")).expect("options have no NUL");
    let from = CString::new(SENDER).unwrap();
    let to = CString::new(RECIPIENT).unwrap();
    let body = CString::new(body).expect("the body has no NUL");

    // SAFETY: every pointer is a live C string owned by this function.
    let status = unsafe { ffi::smtp_send_with(options.as_ptr(), from.as_ptr(), to.as_ptr(), body.as_ptr()) };
    common::collect(status)
}

/// Describes an outcome for failure messages: status name, reply code, error and transcript.
fn describe(outcome: &Outcome) -> String {
    // SAFETY: smtp_status_name returns a static NUL-terminated string.
    let name = unsafe { CStr::from_ptr(ffi::smtp_status_name(outcome.status)) }.to_string_lossy();
    format!("status {name} ({}), reply {}, error {:?}\ntranscript:\n{}", outcome.status, outcome.reply_code, outcome.error, outcome.transcript)
}

/// Returns the forms in which `secret` could leak: as is, in base64, and inside the base64
/// of the XOAUTH2 string and of the PLAIN string of `user`. LOGIN sends the base64 of the
/// password alone, which is the second form.
fn secret_forms(user: &str, secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        BASE64.encode(secret),
        BASE64.encode(format!("user={user}\x01auth=Bearer {secret}\x01\x01")),
        BASE64.encode(format!("\0{user}\0{secret}")),
    ]
}

/// Checks that neither the transcript nor the last error contains `secret` in any form.
fn assert_secret_hidden(outcome: &Outcome, user: &str, secret: &str) {
    for form in secret_forms(user, secret) {
        assert!(!outcome.transcript.contains(&form), "the transcript contains the secret {secret:?} as {form:?}:\n{}", outcome.transcript);
        assert!(!outcome.error.contains(&form), "the last error contains the secret {secret:?} as {form:?}: {}", outcome.error);
    }
}

/// Returns the lines that the client sent after the last EHLO, without their "C: " prefix.
fn commands_after_last_ehlo(transcript: &str) -> Vec<&str> {
    let lines: Vec<&str> = transcript.lines().collect();
    let last_ehlo = lines.iter().rposition(|line| line.starts_with("C: EHLO ")).expect("the transcript has an EHLO");
    lines[last_ehlo + 1..].iter().filter_map(|line| line.strip_prefix("C: ")).collect()
}

fn xoauth2_options(server: &AuthServer, tls: &str, token: &str) -> Vec<String> {
    let mut options = server.options(tls);
    options.push(format!("user={OAUTH_USER}"));
    options.push(format!("oauth_token={token}"));
    options
}

fn login_options(server: &AuthServer, password: &str) -> Vec<String> {
    let mut options = server.options("starttls");
    options.push("auth=LOGIN".into());
    options.push(format!("user={LOGIN_USER}"));
    options.push(format!("password={password}"));
    options
}

#[test]
fn xoauth2_over_starttls() {
    let server = AuthServer::plain();
    let outcome = send_with(&xoauth2_options(&server, "starttls", GOOD_TOKEN), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\nserver log:\n{}", describe(&outcome), server.log());

    assert!(outcome.transcript.contains("C: STARTTLS"), "no STARTTLS before AUTH:\n{}", outcome.transcript);
    assert!(outcome.transcript.contains(&format!("C: AUTH XOAUTH2 {HIDDEN}")), "no hidden AUTH XOAUTH2 line:\n{}", outcome.transcript);
    assert_secret_hidden(&outcome, OAUTH_USER, GOOD_TOKEN);

    let (envelope, body) = server.only_message();
    assert!(
        envelope.contains(&format!("from=<{SENDER}> to=<{RECIPIENT}> ")),
        "the envelope line has the wrong sender or recipients: {envelope}"
    );
    assert!(
        envelope.ends_with(&format!("user={OAUTH_USER} secure=true")),
        "the message was not stored as authenticated over TLS: {envelope}"
    );
    assert_eq!(String::from_utf8_lossy(&body), BODY, "the stored body differs from the body sent");
}

#[test]
fn auto_picks_xoauth2() {
    let server = AuthServer::plain();
    let mut options = xoauth2_options(&server, "starttls", GOOD_TOKEN);
    options.push("auth=auto".into());

    let outcome = send_with(&options, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\nserver log:\n{}", describe(&outcome), server.log());
    assert!(
        outcome.transcript.contains(&format!("C: AUTH XOAUTH2 {HIDDEN}")),
        "auth=auto with only oauth_token did not choose XOAUTH2:\n{}",
        outcome.transcript
    );

    let (envelope, _) = server.only_message();
    assert!(envelope.ends_with(&format!("user={OAUTH_USER} secure=true")), "the message was not stored as {OAUTH_USER}: {envelope}");
}

#[test]
fn bad_token_fails() {
    let server = AuthServer::plain();
    let outcome = send_with(&xoauth2_options(&server, "starttls", BAD_TOKEN), BODY);

    assert_eq!(outcome.status, SMTP_AUTH_FAILED, "{}", describe(&outcome));
    assert_eq!(outcome.reply_code, 535, "the deciding reply is not the final 535:\n{}", describe(&outcome));
    assert!(outcome.error.contains("401"), "the last error lacks the status of the server's JSON error: {}", outcome.error);
    assert!(outcome.error.contains("bearer"), "the last error lacks the schemes of the server's JSON error: {}", outcome.error);

    // After the 334 with the JSON error, the client must send an empty response, which the
    // transcript shows as hidden, and only then get the 535.
    let lines: Vec<&str> = outcome.transcript.lines().collect();
    let challenge = lines.iter().position(|line| line.starts_with("S: 334 "));
    assert!(challenge.is_some(), "no 334 challenge in the transcript:\n{}", outcome.transcript);
    let next_client_line = lines[challenge.unwrap() + 1..].iter().find(|line| line.starts_with("C: "));
    assert_eq!(next_client_line, Some(&"C: <credentials hidden>"), "the 334 was not answered with a hidden response:\n{}", outcome.transcript);
    assert!(!outcome.transcript.contains("C: MAIL FROM"), "MAIL FROM was sent after a failed AUTH:\n{}", outcome.transcript);

    assert_secret_hidden(&outcome, OAUTH_USER, BAD_TOKEN);
    assert!(server.stored_messages().is_empty(), "a message was stored after a failed AUTH");
}

#[test]
fn login_succeeds() {
    let server = AuthServer::plain();
    let outcome = send_with(&login_options(&server, LOGIN_PASSWORD), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\nserver log:\n{}", describe(&outcome), server.log());

    assert!(outcome.transcript.contains("C: AUTH LOGIN\n"), "no AUTH LOGIN line:\n{}", outcome.transcript);
    let hidden_responses = outcome.transcript.lines().filter(|line| *line == format!("C: {HIDDEN}")).count();
    assert_eq!(hidden_responses, 2, "expected two hidden responses (user name and password):\n{}", outcome.transcript);
    assert_secret_hidden(&outcome, LOGIN_USER, LOGIN_PASSWORD);

    let (envelope, body) = server.only_message();
    assert!(envelope.ends_with(&format!("user={LOGIN_USER} secure=true")), "the message was not stored as {LOGIN_USER}: {envelope}");
    assert_eq!(String::from_utf8_lossy(&body), BODY, "the stored body differs from the body sent");
}

#[test]
fn wrong_login_password_fails() {
    let server = AuthServer::plain();
    let outcome = send_with(&login_options(&server, WRONG_PASSWORD), BODY);

    assert_eq!(outcome.status, SMTP_AUTH_FAILED, "{}", describe(&outcome));
    assert_eq!(outcome.reply_code, 535, "the deciding reply is not 535:\n{}", describe(&outcome));
    assert!(!outcome.transcript.contains("C: MAIL FROM"), "MAIL FROM was sent after a failed AUTH:\n{}", outcome.transcript);
    assert_secret_hidden(&outcome, LOGIN_USER, WRONG_PASSWORD);
    assert!(server.stored_messages().is_empty(), "a message was stored after a failed AUTH");
}

#[test]
fn xoauth2_over_implicit_tls() {
    let server = AuthServer::implicit_tls();
    let outcome = send_with(&xoauth2_options(&server, "implicit", GOOD_TOKEN), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\nserver log:\n{}", describe(&outcome), server.log());

    assert!(!outcome.transcript.contains("C: STARTTLS"), "STARTTLS was sent on an implicit TLS connection:\n{}", outcome.transcript);
    assert!(outcome.transcript.contains(&format!("C: AUTH XOAUTH2 {HIDDEN}")), "no hidden AUTH XOAUTH2 line:\n{}", outcome.transcript);

    let (envelope, body) = server.only_message();
    assert!(
        envelope.ends_with(&format!("user={OAUTH_USER} secure=true")),
        "the message was not stored as authenticated over TLS: {envelope}"
    );
    assert_eq!(String::from_utf8_lossy(&body), BODY, "the stored body differs from the body sent");
}

#[test]
fn unoffered_mechanism_unavailable() {
    let server = AuthServer::plain();
    let mut options = login_options(&server, LOGIN_PASSWORD);
    options.retain(|option| !option.starts_with("auth="));
    options.push("auth=PLAIN".into());

    let outcome = send_with(&options, BODY);
    assert_eq!(outcome.status, SMTP_AUTH_UNAVAILABLE, "{}", describe(&outcome));
    assert!(outcome.error.contains("PLAIN"), "the last error does not name the requested mechanism: {}", outcome.error);
    assert!(outcome.error.contains("LOGIN XOAUTH2"), "the last error does not list the offered mechanisms: {}", outcome.error);

    let sent = commands_after_last_ehlo(&outcome.transcript);
    assert_eq!(sent, ["QUIT"], "something other than QUIT was sent after EHLO:\n{}", outcome.transcript);
    assert_secret_hidden(&outcome, LOGIN_USER, LOGIN_PASSWORD);
}

#[test]
fn audit_line_hides_secrets() {
    let server = AuthServer::plain();
    let log_file = unique_temp_path("audit.log");

    let mut good = xoauth2_options(&server, "starttls", GOOD_TOKEN);
    good.push(format!("log_file={}", log_file.display()));
    let outcome = send_with(&good, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\nserver log:\n{}", describe(&outcome), server.log());

    let mut bad = xoauth2_options(&server, "starttls", BAD_TOKEN);
    bad.push(format!("log_file={}", log_file.display()));
    let outcome = send_with(&bad, BODY);
    assert_eq!(outcome.status, SMTP_AUTH_FAILED, "{}", describe(&outcome));

    let log = std::fs::read_to_string(&log_file);
    let _ = std::fs::remove_file(&log_file);
    let log = log.unwrap_or_else(|error| panic!("reading the audit log {} failed: {error}", log_file.display()));

    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "expected one audit line per call:\n{log}");
    assert!(lines[0].contains("status=SMTP_OK"), "the first audit line is not the successful call: {}", lines[0]);
    assert!(lines[1].contains("status=SMTP_AUTH_FAILED"), "the second audit line is not the failed call: {}", lines[1]);

    for secret in [GOOD_TOKEN, BAD_TOKEN] {
        for form in secret_forms(OAUTH_USER, secret) {
            assert!(!log.contains(&form), "the audit log contains the secret {secret:?} as {form:?}:\n{log}");
        }
    }
}
