//! `mvsmtp outbox DIR`, run as a user runs it. Deliveries and the rejections that Postfix
//! makes (`reject@` gets 550 and `tempfail@` gets 450) run against the Postfix test server.
//! Rejections after the data, lost connections and a server that cannot be reached run
//! against the scripted fake server.
//!
//! Each message carries a unique recipient, so a test finds its own deliveries among those
//! of the tests that run at the same time.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::fake_server::{expect, send, Action, FakeServer};
use common::{empty_test_dir, postfix, unique_address, TestServer};

/// Environment variables that the tool reads, removed from every child so that a value in
/// the developer's shell cannot change the outcome.
const TOOL_VARIABLES: [&str; 3] = ["MVSMTP_PASSWORD", "MVSMTP_OAUTH_TOKEN", "MVSMTP_CONFIG"];

const SENDER: &str = "outbox@example.test";

const EXIT_REJECTED: i32 = 65;
const EXIT_DIRECTORY_ERROR: i32 = 74;
const EXIT_RETRY: i32 = 75;
const EXIT_CONFIGURATION_ERROR: i32 = 78;

fn outbox_command(dir: &Path, port: u16, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvsmtp"));
    for variable in TOOL_VARIABLES {
        command.env_remove(variable);
    }
    command.args(["outbox", "--host", "127.0.0.1", "--port", &port.to_string(), "--timeout", "10"]).args(extra).arg(dir);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Runs `mvsmtp outbox` on `dir` against 127.0.0.1:`port` and waits for it.
fn run_outbox(dir: &Path, port: u16, extra: &[&str]) -> Output {
    outbox_command(dir, port, extra).output().expect("the mvsmtp binary starts")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An outbox directory for one test, removed when the test ends.
struct Outbox(PathBuf);

impl Outbox {
    fn new(tag: &str) -> Outbox {
        Outbox(empty_test_dir("outbox", tag))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, contents: &str) {
        fs::write(self.0.join(name), contents).unwrap();
    }

    /// Lists the names of the files in the outbox itself or one of its subdirectories.
    fn names(&self, subdir: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.0.join(subdir))
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().unwrap().is_file())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.0.join(relative)).unwrap_or_else(|error| panic!("reading {relative} failed: {error}"))
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Builds a ready-made message from SENDER to `to`, with `extra` header lines.
fn message(to: &str, extra: &str, text: &str) -> String {
    format!("From: Outbox Test <{SENDER}>\nTo: {to}\n{extra}Subject: {text}\n\n{text}\n")
}

/// Returns the header section of a delivered message, up to its first empty line.
fn header_section(message: &[u8]) -> String {
    String::from_utf8_lossy(message).split("\n\n").next().unwrap_or_default().to_owned()
}

/// Returns a port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Returns the start of a fake server session without PIPELINING, so each command gets its
/// own reply.
fn greeting() -> Vec<Action> {
    vec![send("220 fake.example.test ESMTP\r\n"), expect("EHLO"), send("250 fake.example.test\r\n")]
}

/// Returns the exchange of one message up to the end of its data, which gets `final_reply`.
fn message_exchange(final_reply: &str) -> Vec<Action> {
    vec![
        expect("MAIL FROM:<outbox@example.test>"),
        send("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:"),
        send("250 2.1.5 Ok\r\n"),
        expect("DATA"),
        send("354 Go ahead\r\n"),
        Action::ReadData,
        send(final_reply),
    ]
}

/// Writes one message to someone@example.test for each of `names` into a new outbox, runs
/// `mvsmtp outbox` on it against the fake server, and checks that the server's script held.
fn run_scripted(tag: &str, fake: FakeServer, names: &[&str]) -> (Outbox, Output) {
    let outbox = Outbox::new(tag);
    for name in names {
        outbox.write(name, &message("someone@example.test", "", name));
    }

    let output = run_outbox(outbox.path(), fake.port(), &[]);

    let received = fake.finish();
    assert!(received.mismatches.is_empty(), "{:?}\n{}", received.mismatches, describe(&output));
    (outbox, output)
}

// Postfix

#[test]
fn outbox_delivers_every_file() {
    let server = postfix();
    let outbox = Outbox::new("deliver");
    let (first, second, third) = (unique_address("outbox-first"), unique_address("outbox-second"), unique_address("outbox-third"));
    let (cc, bcc) = (unique_address("outbox-cc"), unique_address("outbox-bcc"));
    outbox.write("0001.eml", &message(&first, &format!("Cc: Copy <{cc}>\nBcc: {bcc}\n"), "first"));
    outbox.write("0002.eml", &message(&second, "", "second"));
    outbox.write("0003.eml", &message(&third, "", "third"));
    let unfinished = message(&unique_address("outbox-unfinished"), "", "unfinished");
    outbox.write("0004.eml.tmp", &unfinished);
    outbox.write(".hidden", &message(&unique_address("outbox-hidden"), "", "hidden"));

    let output = run_outbox(outbox.path(), server.port, &[]);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("mvsmtp outbox: 3 sent, 0 failed, 0 left for retry, in "), "{}", describe(&output));
    assert_eq!(stderr.lines().count(), 1, "{}", describe(&output));
    assert_eq!(outbox.names("sent"), ["0001.eml", "0002.eml", "0003.eml"]);
    assert!(outbox.names("failed").is_empty());
    assert_eq!(outbox.names("."), [".hidden", ".mvsmtp-outbox.lock", "0004.eml.tmp"]);
    assert_eq!(outbox.read("0004.eml.tmp"), unfinished);

    for (recipient, text) in [(&first, "first"), (&cc, "first"), (&bcc, "first"), (&second, "second"), (&third, "third")] {
        let delivered = server.delivered_raw(recipient);
        let head = header_section(&delivered);
        assert!(head.starts_with(&format!("Return-Path: <{SENDER}>\n")), "{recipient}: {head}");
        assert!(head.contains(&format!("\nSubject: {text}")), "{recipient}: {head}");
        assert!(!head.contains("Bcc"), "{recipient}: {head}");
    }
}

#[test]
fn outbox_transcript_option() {
    let server = postfix();
    let outbox = Outbox::new("transcript");
    let recipient = unique_address("outbox-transcript");
    outbox.write("a", &message(&recipient, "", "secret body words"));
    outbox.write("b", &message("reject@example.test", "", "rejected"));

    let output = run_outbox(outbox.path(), server.port, &["--transcript"]);

    assert_eq!(output.status.code(), Some(EXIT_REJECTED), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("== opening the session\n"), "{stdout}");
    assert!(stdout.contains("C: EHLO "), "{stdout}");
    assert!(stdout.contains("== a\n"), "{stdout}");
    assert!(stdout.contains(&format!("C: RCPT TO:<{recipient}>")), "{stdout}");
    assert!(stdout.contains("== b\n"), "{stdout}");
    assert!(stdout.contains("S: 550 5.1.1 <reject@example.test>"), "{stdout}");
    assert!(!stdout.contains("secret body words"), "{stdout}");
    server.delivered(&recipient);

    // With --json, the transcript goes into the entry of each file that was not sent.
    outbox.write("c", &message("reject@example.test", "", "rejected again"));
    let output = run_outbox(outbox.path(), server.port, &["--transcript", "--json"]);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    let transcript = value["files"][0]["transcript"].as_str().unwrap_or_else(|| panic!("no transcript: {value}"));
    assert!(transcript.contains("S: 550 5.1.1 <reject@example.test>"), "{value}");
}

#[test]
fn outbox_from_overrides_headers() {
    let server = postfix();
    let outbox = Outbox::new("from");
    let recipient = unique_address("outbox-bounces");
    outbox.write("message", &message(&recipient, "", "bounces"));

    let output = run_outbox(outbox.path(), server.port, &["--from", "bounces@example.test"]);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let head = header_section(&server.delivered_raw(&recipient));
    assert!(head.starts_with("Return-Path: <bounces@example.test>\n"), "{head}");
    assert!(head.contains(&format!("\nFrom: Outbox Test <{SENDER}>")), "{head}");
}

#[test]
fn outbox_sorts_rejections() {
    let server = postfix();
    let outbox = Outbox::new("refusals");
    let accepted = unique_address("outbox-partial");
    outbox.write("1-rejected", &message("reject@example.test", "", "rejected"));
    outbox.write("2-tempfail", &message("tempfail@example.test", "", "tempfail"));
    outbox.write("3-partial", &message(&format!("{accepted}, reject@example.test"), "", "partial"));
    outbox.write("4-no-sender", "To: someone@example.test\nSubject: no sender\n\ntext\n");

    let output = run_outbox(outbox.path(), server.port, &[]);

    assert_eq!(output.status.code(), Some(EXIT_RETRY), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\nmvsmtp outbox: 1 sent (1 partly rejected), 2 failed, 1 left for retry, in "), "{stderr}");
    assert!(stderr.contains("mvsmtp: 2-tempfail: SMTP_RECIPIENTS_REJECTED (reply 450): "), "{stderr}");
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock", "2-tempfail"]);
    assert_eq!(outbox.names("failed"), ["1-rejected", "1-rejected.reason", "4-no-sender", "4-no-sender.reason"]);
    assert_eq!(outbox.names("sent"), ["3-partial", "3-partial.reason"]);

    let rejected = outbox.read("failed/1-rejected.reason");
    assert!(rejected.starts_with("status: SMTP_RECIPIENTS_REJECTED\nreply: 550 5.1.1 "), "{rejected}");
    assert!(rejected.contains("\nerror: The server rejected every recipient: <reject@example.test>"), "{rejected}");
    assert!(rejected.contains("\nrejected: <reject@example.test> (550 5.1.1 "), "{rejected}");

    let no_sender = outbox.read("failed/4-no-sender.reason");
    assert!(no_sender.starts_with("status: SMTP_INVALID_ARGUMENT\nreply: \nerror: No envelope sender: pass --from ADDRESS"), "{no_sender}");

    let partial = outbox.read("sent/3-partial.reason");
    assert!(partial.starts_with("status: SMTP_PARTIAL\nreply: 250 "), "{partial}");
    assert!(partial.contains("\nrejected: <reject@example.test> (550 5.1.1 "), "{partial}");
    assert!(!partial.contains(&accepted), "{partial}");
    server.delivered(&accepted);
}

#[test]
fn outbox_rejection_exit_status() {
    let server = postfix();
    let outbox = Outbox::new("rejected-only");
    outbox.write("rejected", &message("reject@example.test", "", "rejected"));
    let accepted = unique_address("outbox-beside-rejected");
    outbox.write("accepted", &message(&accepted, "", "accepted"));

    let output = run_outbox(outbox.path(), server.port, &[]);

    assert_eq!(output.status.code(), Some(EXIT_REJECTED), "{}", describe(&output));
    assert_eq!(outbox.names("failed"), ["rejected", "rejected.reason"]);
    assert_eq!(outbox.names("sent"), ["accepted"]);
    server.delivered(&accepted);
}

#[test]
fn outbox_keeps_earlier_sent_file() {
    let server = postfix();
    let outbox = Outbox::new("same-name");
    let (earlier, later) = (unique_address("outbox-earlier"), unique_address("outbox-later"));
    outbox.write("statement", &message(&earlier, "", "earlier"));
    assert_eq!(run_outbox(outbox.path(), server.port, &[]).status.code(), Some(0));
    outbox.write("statement", &message(&later, "", "later"));

    let output = run_outbox(outbox.path(), server.port, &[]);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(outbox.names("sent"), ["statement", "statement.1"]);
    assert!(outbox.read("sent/statement").contains(&earlier));
    assert!(outbox.read("sent/statement.1").contains(&later));
}

#[test]
fn outbox_json_lists_problems() {
    let server = postfix();
    let outbox = Outbox::new("json");
    outbox.write("a", &message(&unique_address("outbox-json"), "", "json"));
    outbox.write("b", &message("reject@example.test", "", "rejected"));

    let output = run_outbox(outbox.path(), server.port, &["--json"]);

    assert_eq!(output.status.code(), Some(EXIT_REJECTED), "{}", describe(&output));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", describe(&output)));
    assert_eq!(value["status"], EXIT_REJECTED);
    assert_eq!(value["error"], "");
    assert_eq!((value["sent"].as_u64(), value["failed"].as_u64(), value["left"].as_u64()), (Some(1), Some(1), Some(0)));
    let files = value["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{value}");
    assert_eq!(files[0]["name"], "b");
    assert_eq!(files[0]["result"], "failed");
    assert_eq!(files[0]["moved_to"], "failed/b");
    assert_eq!(files[0]["status_name"], "SMTP_RECIPIENTS_REJECTED");
    assert_eq!(files[0]["reply_code"], 550);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "only the summary goes to stderr: {stderr}");
}

// The fake server

#[test]
fn outbox_end_of_data_replies() {
    let mut script = greeting();
    script.extend(message_exchange("554 5.7.1 Message rejected as spam\r\n"));
    script.extend([expect("RSET"), send("250 2.0.0 Ok\r\n")]);
    script.extend(message_exchange("451 4.3.0 Try again later\r\n"));
    script.extend([expect("RSET"), send("250 2.0.0 Ok\r\n")]);
    script.extend(message_exchange("250 2.0.0 Ok: queued\r\n"));
    script.extend([expect("QUIT"), send("221 2.0.0 Bye\r\n")]);

    let (outbox, output) = run_scripted("end-of-data", FakeServer::start(script), &["a", "b", "c"]);

    assert_eq!(output.status.code(), Some(EXIT_RETRY), "{}", describe(&output));
    assert_eq!(outbox.names("failed"), ["a", "a.reason"]);
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock", "b"]);
    assert_eq!(outbox.names("sent"), ["c"]);
    let reason = outbox.read("failed/a.reason");
    assert!(reason.starts_with("status: SMTP_MESSAGE_REJECTED\nreply: 554 5.7.1 Message rejected as spam\nerror: "), "{reason}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mvsmtp: b: SMTP_MESSAGE_REJECTED (reply 451): "), "{stderr}");
    assert!(stderr.contains("Left in the outbox for the next run."), "{stderr}");
}

#[test]
fn outbox_stops_without_connection() {
    // The first message loses its connection before the reply to its data. The session
    // then reconnects for the second, and finds nothing listening, so the run stops.
    let mut script = greeting();
    script.extend(message_exchange("").into_iter().take(7));
    script.push(Action::Close);

    let (outbox, output) = run_scripted("lost", FakeServer::start(script), &["a", "b", "c"]);

    assert_eq!(output.status.code(), Some(EXIT_RETRY), "{}", describe(&output));
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock", "a", "b", "c"]);
    assert!(outbox.names("sent").is_empty());
    assert!(outbox.names("failed").is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mvsmtp: a: SMTP_CONNECTION_LOST: "), "{stderr}");
    assert!(stderr.contains("The run stopped; this file and the rest stay"), "{stderr}");
    assert!(stderr.contains("mvsmtp outbox: 0 sent, 0 failed, 3 left for retry, in "), "{stderr}");
}

#[test]
fn outbox_stops_after_repeated_losses() {
    // Every connection is lost after the data, so the run stops at the third message and
    // never tries the fourth.
    let lost_after_data = || {
        let mut script = greeting();
        script.extend(message_exchange("").into_iter().take(7));
        script.push(Action::Close);
        script
    };
    let fake = FakeServer::start_many(vec![lost_after_data(), lost_after_data(), lost_after_data()]);
    let outbox = Outbox::new("repeated-losses");
    for name in ["a", "b", "c", "d"] {
        outbox.write(name, &message("someone@example.test", "", name));
    }

    let output = run_outbox(outbox.path(), fake.port(), &["--json"]);

    let connections = fake.finish_all();
    assert_eq!(output.status.code(), Some(EXIT_RETRY), "{}", describe(&output));
    for (index, received) in connections.iter().enumerate() {
        assert!(received.mismatches.is_empty(), "connection {index}: {:?}", received.mismatches);
    }
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock", "a", "b", "c", "d"]);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["left"], 4, "{value}");
    let results: Vec<&str> = value["files"].as_array().unwrap().iter().map(|file| file["name"].as_str().unwrap()).collect();
    assert_eq!(results, ["a", "b", "c"], "{value}");
    assert!(value["error"].as_str().unwrap().contains("3 messages in a row failed"), "{value}");
}

#[test]
fn outbox_wrong_password_is_configuration_error() {
    // A rejected password stops the run with its own exit status, so a scheduler can tell
    // it from a server that is down. The messages stay for the run after the fix.
    let outbox = Outbox::new("wrong-password");
    outbox.write("a", &message("someone@example.test", "", "a"));
    let submission_port: u16 = std::env::var("MVSMTP_TEST_SUBMISSION_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(2587);
    let ca_option = format!("tls_ca_file={}", common::test_state_dir().join("ca.crt").display());

    let output = outbox_command(outbox.path(), submission_port, &["-o", &ca_option, "-o", "user=testuser", "--json"])
        .env("MVSMTP_PASSWORD", "wrong password")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(EXIT_CONFIGURATION_ERROR), "{}", describe(&output));
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock", "a"]);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(value["error"].as_str().unwrap().starts_with("SMTP_AUTH_FAILED: "), "{value}");
    assert_eq!(value["left"], 1, "{value}");
}

#[test]
fn outbox_unreachable_server() {
    let outbox = Outbox::new("unreachable");
    outbox.write("a", &message("someone@example.test", "", "a"));

    let output = run_outbox(outbox.path(), closed_port(), &[]);

    assert_eq!(output.status.code(), Some(EXIT_RETRY), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("mvsmtp: SMTP_CONNECT_FAILED: Connecting to 127.0.0.1 port "), "{stderr}");
    assert!(stderr.contains("Nothing was sent; the file stays in "), "{stderr}");
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock", "a"]);
}

#[test]
fn outbox_empty_needs_no_server() {
    let outbox = Outbox::new("empty");
    outbox.write("draft.tmp", "not finished");

    let output = run_outbox(outbox.path(), closed_port(), &[]);

    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("mvsmtp outbox: 0 sent, 0 failed, 0 left for retry, in "));
}

#[test]
fn outbox_invalid_arguments() {
    let outbox = Outbox::new("invalid");
    let missing = outbox.path().join("missing");
    let output = run_outbox(&missing, closed_port(), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used"), "{}", describe(&output));

    let output = run_outbox(outbox.path(), closed_port(), &["-o", "password=secret"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("secret"), "{}", describe(&output));
    assert!(!outbox.path().join("sent").exists(), "the directory was touched before the options were checked");
}

#[test]
fn outbox_subdirectory_name_taken() {
    let outbox = Outbox::new("name-taken");
    outbox.write("failed", &message("someone@example.test", "", "a file named failed"));

    let output = run_outbox(outbox.path(), closed_port(), &[]);

    assert_eq!(output.status.code(), Some(EXIT_DIRECTORY_ERROR), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failed exists but is not a directory"), "{stderr}");
    assert!(stderr.contains("Rename the file."), "{stderr}");
}

#[test]
fn outbox_second_run_rejected() {
    // The first run holds the lock while the fake server delays its greeting.
    let mut script = vec![Action::Pause(Duration::from_secs(2))];
    script.extend(greeting());
    script.extend(message_exchange("250 2.0.0 Ok: queued\r\n"));
    script.extend([expect("QUIT"), send("221 2.0.0 Bye\r\n")]);
    let fake = FakeServer::start(script);
    let outbox = Outbox::new("lock");
    outbox.write("a", &message("someone@example.test", "", "a"));

    let first = outbox_command(outbox.path(), fake.port(), &[]).spawn().unwrap();
    // The lock is taken before sent/ is created.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !outbox.path().join("sent").exists() {
        assert!(Instant::now() < deadline, "the first run never created sent/");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let second = run_outbox(outbox.path(), fake.port(), &[]);
    let second_took = started.elapsed();
    let first = first.wait_with_output().unwrap();

    assert_eq!(second.status.code(), Some(EXIT_RETRY), "{}", describe(&second));
    assert!(String::from_utf8_lossy(&second.stderr).contains("Another mvsmtp outbox run holds the lock"), "{}", describe(&second));
    assert!(String::from_utf8_lossy(&second.stderr).contains("nothing sent; the files in the outbox, if any, were not touched"), "{}", describe(&second));
    assert!(second_took < Duration::from_secs(1), "the second run waited {second_took:?}");
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let received = fake.finish();
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert_eq!(received.commands().iter().filter(|line| line.starts_with("MAIL FROM")).count(), 1);
    assert_eq!(outbox.names("sent"), ["a"]);
}

// Kill safety

/// A small deterministic generator (SplitMix64), so a failing run can be repeated with the
/// seed it prints.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Finds the delivered files of the recipients in `recipients`, and returns how many each
/// recipient got, with the paths of the files.
fn find_deliveries(server: &TestServer, recipients: &HashMap<String, usize>) -> (Vec<usize>, Vec<PathBuf>) {
    let mut counts = vec![0; recipients.len()];
    let mut paths = Vec::new();
    let Ok(entries) = fs::read_dir(server.maildir.join("new")) else { return (counts, paths) };
    for entry in entries.flatten() {
        let Ok(bytes) = fs::read(entry.path()) else { continue };
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned();
        let recipient = head.lines().find_map(|line| line.strip_prefix("X-Original-To: "));
        if let Some(index) = recipient.and_then(|recipient| recipients.get(recipient)) {
            counts[*index] += 1;
            paths.push(entry.path());
        }
    }
    (counts, paths)
}

#[test]
fn outbox_survives_kills() {
    const MESSAGES: usize = 300;
    const KILLS: usize = 5;
    let seed: u64 = std::env::var("MVSMTP_TEST_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(20_261_204);
    let mut random = SplitMix(seed);
    eprintln!("outbox_survives_kills: seed {seed} (set MVSMTP_TEST_SEED to repeat a run)");
    let server = postfix();
    let outbox = Outbox::new("kills");
    let tag = unique_address("outbox-kill").replace('@', "-at-");

    let mut recipients = HashMap::new();
    for index in 0..MESSAGES {
        let recipient = format!("{tag}-{index:03}@example.test");
        outbox.write(&format!("{index:03}.eml"), &message(&recipient, &format!("Message-ID: <{tag}-{index}@example.test>\n"), "kill"));
        recipients.insert(recipient, index);
    }

    // Each run is killed once the number of files in sent/ reaches its kill point, and
    // after a further random delay of up to 3 ms, about one message's time, so the kills
    // land at different steps of the exchange.
    let mut kill_points: Vec<usize> = (0..KILLS).map(|_| 10 + (random.next() % (MESSAGES as u64 - 20)) as usize).collect();
    kill_points.sort_unstable();
    let started = Instant::now();
    let mut kills = 0;
    for kill_point in kill_points {
        let mut child: Child = outbox_command(outbox.path(), server.port, &[]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let sent_count = || fs::read_dir(outbox.path().join("sent")).map_or(0, Iterator::count);
        while sent_count() < kill_point && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "seed {seed}: the run never reached {kill_point} sent messages");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(random.next() % 3000));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
    }
    assert_eq!(kills, KILLS, "seed {seed}: some runs ended before their kill point");
    let output = run_outbox(outbox.path(), server.port, &[]);
    assert_eq!(output.status.code(), Some(0), "seed {seed}: {}", describe(&output));
    assert_eq!(outbox.names("sent").len(), MESSAGES, "seed {seed}");
    assert_eq!(outbox.names("."), [".mvsmtp-outbox.lock"], "seed {seed}");

    // Postfix delivers in the background: wait until every message has arrived and the
    // count has been still for a second, so late duplicates are counted too.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_total = 0;
    let mut still_since = Instant::now();
    let (counts, paths) = loop {
        let (counts, paths) = find_deliveries(&server, &recipients);
        let total: usize = counts.iter().sum();
        if total != last_total {
            last_total = total;
            still_since = Instant::now();
        }
        let complete = counts.iter().all(|&count| count > 0);
        if (complete && still_since.elapsed() >= Duration::from_secs(1)) || Instant::now() >= deadline {
            break (counts, paths);
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    let lost: Vec<usize> = (0..MESSAGES).filter(|&index| counts[index] == 0).collect();
    assert!(lost.is_empty(), "seed {seed}: messages never delivered: {lost:?}");
    let duplicates: usize = counts.iter().map(|count| count - 1).sum();
    eprintln!("outbox_survives_kills: {kills} kills, {duplicates} duplicate deliveries, {:?}", started.elapsed());
    assert!(duplicates <= kills, "seed {seed}: {duplicates} duplicate deliveries after {kills} kills");
    assert!(started.elapsed() < Duration::from_secs(60), "seed {seed}: the test took {:?}", started.elapsed());

    // The deliveries are removed after a pass, so the maildir that other tests search stays small.
    for path in paths {
        let _ = fs::remove_file(path);
    }
}
