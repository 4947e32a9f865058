//! Command pipelining (RFC 2920). Each scripted server reads the whole group of commands
//! before it sends any reply, so a client that waited for a reply between commands would
//! stall and time out: passing these tests shows the commands went out together.

mod common;

use common::fake_server::{expect, send as reply, Action, FakeServer};
use mvsmtp::ffi::status::*;

const BODY: &[u8] = b"Subject: pipelined\r\n\r\nbody\r\n";

fn opening() -> Vec<Action> {
    vec![reply("220 fake ESMTP\r\n"), expect("EHLO "), reply("250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n")]
}

fn run(script: Vec<Action>, to: &[u8]) -> (common::Outcome, common::fake_server::Received) {
    assert_eq!(common::set_option("timeout", "3"), SMTP_OK);
    let server = FakeServer::start(script);
    let outcome = common::send("127.0.0.1", server.port(), "a@example.test", to, BODY);
    (outcome, server.finish())
}

#[test]
fn envelope_sent_as_one_group() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:<a@example.test>"),
        expect("RCPT TO:<b@example.test>"),
        expect("RCPT TO:<c@example.test>"),
        expect("DATA"),
        reply("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        Action::ReadData,
        expect("QUIT"),
        reply("250 2.0.0 queued\r\n221 2.0.0 bye\r\n"),
    ]);
    let (outcome, received) = run(script, b"b@example.test,c@example.test");
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert_eq!(outcome.reply_code, 250);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn partial_refusal_in_group() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:<b@example.test>"),
        expect("RCPT TO:<reject@example.test>"),
        expect("DATA"),
        reply("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"),
        Action::ReadData,
        expect("QUIT"),
        reply("250 queued\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, b"b@example.test,reject@example.test");
    assert_eq!(outcome.status, SMTP_PARTIAL, "{}", outcome.error);
    assert!(outcome.error.contains("reject@example.test"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn data_accepted_after_all_recipients_refused() {
    // The server takes DATA although it refused every recipient. The client must end the
    // data phase with an empty message and report the refusals, sending no body.
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        expect("DATA"),
        reply("250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"),
        expect("."),
        reply("554 5.5.1 no valid recipients\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, b"nobody@example.test");
    assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert!(!outcome.transcript.contains("<message body"), "{}", outcome.transcript);
}

#[test]
fn refused_sender_in_group() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        expect("DATA"),
        reply("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, b"b@example.test");
    assert_eq!(outcome.status, SMTP_SENDER_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn closing_reply_in_group_stops() {
    let mut script = opening();
    script.extend([expect("MAIL FROM:"), expect("RCPT TO:"), expect("DATA"), reply("250 ok\r\n421 4.3.2 shutting down\r\n")]);
    let (outcome, received) = run(script, b"b@example.test");
    assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 421);
    assert!(!received.lines.iter().any(|line| line == "QUIT" || line == "."), "{:?}", received.lines);
}

#[test]
fn no_pipelining_without_offer() {
    // Without PIPELINING the client waits for each reply, as the script requires.
    let script = vec![
        reply("220 fake ESMTP\r\n"),
        expect("EHLO "),
        reply("250 fake\r\n"),
        expect("MAIL FROM:"),
        reply("250 ok\r\n"),
        expect("RCPT TO:"),
        reply("250 ok\r\n"),
        expect("DATA"),
        reply("354 go\r\n"),
        Action::ReadData,
        reply("250 queued\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ];
    let (outcome, received) = run(script, b"b@example.test");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}
