//! Faults that a real server cannot be made to produce, played by a scripted fake server on
//! 127.0.0.1: silence, dropped connections, 421 at each step, malformed and oversized
//! replies, a refused EHLO and a multi-line greeting.

mod common;

use std::time::{Duration, Instant};

use common::fake_server::{expect, send as reply, Action, FakeServer};
use common::Outcome;
use mvsmtp::ffi::status::*;

const BODY: &[u8] = b"Subject: test\r\n\r\nbody\r\n";

/// Sets the 2-second timeout that every test in this binary uses.
fn short_timeout() {
    assert_eq!(common::set_option("timeout", "2"), SMTP_OK);
}

fn run(script: Vec<Action>) -> (Outcome, common::fake_server::Received) {
    let (outcome, _, received) = run_timed(script);
    (outcome, received)
}

/// Like [`run`], and also returns how long the call took.
fn run_timed(script: Vec<Action>) -> (Outcome, Duration, common::fake_server::Received) {
    short_timeout();
    let server = FakeServer::start(script);
    let started = Instant::now();
    let outcome = common::send("127.0.0.1", server.port(), "a@example.test", b"b@example.test", BODY);
    let elapsed = started.elapsed();
    (outcome, elapsed, server.finish())
}

/// Returns the opening of a normal conversation, up to the reply to EHLO.
fn opening() -> Vec<Action> {
    vec![reply("220 fake.example.test ESMTP\r\n"), expect("EHLO "), reply("250-fake.example.test\r\n250 8BITMIME\r\n")]
}

/// Returns a complete, successful conversation after the opening.
fn transaction() -> Vec<Action> {
    vec![
        expect("MAIL FROM:<a@example.test>"),
        reply("250 2.1.0 Ok\r\n"),
        expect("RCPT TO:<b@example.test>"),
        reply("250 2.1.5 Ok\r\n"),
        expect("DATA"),
        reply("354 go ahead\r\n"),
        Action::ReadData,
        reply("250 2.0.0 queued\r\n"),
        expect("QUIT"),
        reply("221 2.0.0 bye\r\n"),
    ]
}

fn concat(parts: Vec<Vec<Action>>) -> Vec<Action> {
    parts.into_iter().flatten().collect()
}

#[test]
fn normal_conversation_succeeds() {
    let (outcome, received) = run(concat(vec![opening(), transaction()]));
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn multi_line_greeting_accepted() {
    let script = concat(vec![
        vec![reply("220-fake.example.test ESMTP\r\n220-second line\r\n220 third line\r\n"), expect("EHLO "), reply("250 fake\r\n")],
        transaction(),
    ]);
    let (outcome, received) = run(script);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn refused_ehlo_falls_back_to_helo() {
    let script = concat(vec![
        vec![reply("220 old server\r\n"), expect("EHLO "), reply("502 5.5.2 Command not recognized\r\n"), expect("HELO "), reply("250 old\r\n")],
        transaction(),
    ]);
    let (outcome, received) = run(script);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    // HELO advertises no 8BITMIME, so none is claimed even for an 8-bit body.
    assert!(!outcome.transcript.contains("BODY="), "{}", outcome.transcript);
}

#[test]
fn refused_helo_rejects_hello() {
    let script = vec![
        reply("220 old server\r\n"),
        expect("EHLO "),
        reply("500 5.5.1 unknown\r\n"),
        expect("HELO "),
        reply("550 5.7.1 go away\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ];
    let (outcome, received) = run(script);
    assert_eq!(outcome.status, SMTP_HELLO_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(outcome.error.contains("HELO"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn rejecting_greeting_gets_quit() {
    let (outcome, received) = run(vec![reply("554 5.3.2 no service for you\r\n"), expect("QUIT"), reply("221 bye\r\n")]);
    assert_eq!(outcome.status, SMTP_GREETING_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 554);
    assert!(outcome.error.contains("554 5.3.2 no service for you"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

/// Plays a normal conversation in which the reply at `step` is 421, and checks the status
/// and that the client sent nothing after it.
fn check_421(step: &str, expected_status: i32, script: Vec<Action>) {
    let (outcome, received) = run(script);
    assert_eq!(outcome.status, expected_status, "421 at {step}: {}", outcome.error);
    assert_eq!(outcome.reply_code, 421, "421 at {step}");
    assert!(outcome.error.contains("closing the connection"), "421 at {step}: {}", outcome.error);
    assert!(outcome.error.contains("4.3.2"), "421 at {step}: {}", outcome.error);
    assert!(received.mismatches.is_empty(), "421 at {step}: {:?}", received.mismatches);
    assert!(!received.lines.iter().any(|line| line == "QUIT"), "421 at {step}: the client sent QUIT: {:?}", received.lines);
}

const CLOSING: &str = "421 4.3.2 Service shutting down\r\n";

#[test]
fn closing_at_greeting() {
    check_421("the greeting", SMTP_GREETING_REJECTED, vec![reply(CLOSING)]);
}

#[test]
fn closing_at_ehlo() {
    check_421("EHLO", SMTP_HELLO_REJECTED, vec![reply("220 fake\r\n"), expect("EHLO "), reply(CLOSING)]);
}

#[test]
fn closing_at_mail() {
    check_421("MAIL FROM", SMTP_SENDER_REJECTED, concat(vec![opening(), vec![expect("MAIL FROM:"), reply(CLOSING)]]));
}

#[test]
fn closing_at_rcpt() {
    let script = concat(vec![opening(), vec![expect("MAIL FROM:"), reply("250 ok\r\n"), expect("RCPT TO:"), reply(CLOSING)]]);
    check_421("RCPT TO", SMTP_RECIPIENTS_REJECTED, script);
}

#[test]
fn closing_at_data() {
    let script = concat(vec![
        opening(),
        vec![expect("MAIL FROM:"), reply("250 ok\r\n"), expect("RCPT TO:"), reply("250 ok\r\n"), expect("DATA"), reply(CLOSING)],
    ]);
    check_421("DATA", SMTP_DATA_REJECTED, script);
}

#[test]
fn closing_at_end_of_data() {
    let script = concat(vec![
        opening(),
        vec![
            expect("MAIL FROM:"),
            reply("250 ok\r\n"),
            expect("RCPT TO:"),
            reply("250 ok\r\n"),
            expect("DATA"),
            reply("354 go\r\n"),
            Action::ReadData,
            reply(CLOSING),
        ],
    ]);
    check_421("the end of data", SMTP_MESSAGE_REJECTED, script);
}

#[test]
fn silent_server_times_out() {
    short_timeout();
    let server = FakeServer::start(vec![Action::Pause(Duration::from_secs(4))]);
    let started = Instant::now();
    let outcome = common::send("127.0.0.1", server.port(), "a@example.test", b"b@example.test", BODY);
    let elapsed = started.elapsed();
    assert_eq!(outcome.status, SMTP_TIMEOUT, "{}", outcome.error);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?} with a 2 s timeout");
    assert!(outcome.error.contains("greeting"), "{}", outcome.error);
    server.finish();
}

#[test]
fn silence_after_mail_times_out() {
    let script = concat(vec![opening(), vec![expect("MAIL FROM:"), Action::Pause(Duration::from_secs(4))]]);
    let (outcome, elapsed, _) = run_timed(script);
    assert_eq!(outcome.status, SMTP_TIMEOUT, "{}", outcome.error);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?} with a 2 s timeout");
    assert!(outcome.error.contains("MAIL FROM"), "{}", outcome.error);
}

#[test]
fn slow_drip_reply_bounded() {
    // A server that sends a reply one byte every 300 ms must not stretch one wait past
    // the timeout.
    let mut script = vec![];
    for byte in b"220 slowly arriving" {
        script.push(Action::Send(vec![*byte]));
        script.push(Action::Pause(Duration::from_millis(300)));
    }
    let (outcome, elapsed, _) = run_timed(script);
    assert_eq!(outcome.status, SMTP_TIMEOUT, "{}", outcome.error);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?} with a 2 s timeout");
}

#[test]
fn dropped_mid_reply_loses_connection() {
    let (outcome, _) = run(vec![reply("220 fake\r\n"), expect("EHLO "), reply("250-fake\r\n250-PIPEL"), Action::Close]);
    assert_eq!(outcome.status, SMTP_CONNECTION_LOST, "{}", outcome.error);
    assert!(outcome.error.contains("EHLO"), "{}", outcome.error);
}

#[test]
fn dropped_before_greeting_loses_connection() {
    let (outcome, _) = run(vec![Action::Close]);
    assert_eq!(outcome.status, SMTP_CONNECTION_LOST, "{}", outcome.error);
}

#[test]
fn malformed_greeting_is_protocol_error() {
    let (outcome, received) = run(vec![reply("HTTP/1.1 400 Bad Request\r\n")]);
    assert_eq!(outcome.status, SMTP_PROTOCOL_ERROR, "{}", outcome.error);
    assert!(outcome.error.contains("HTTP/1.1 400"), "{}", outcome.error);
    assert!(received.lines.is_empty(), "the client sent {:?} after a malformed reply", received.lines);
}

#[test]
fn mismatched_continuation_is_protocol_error() {
    let (outcome, _) = run(vec![reply("220 fake\r\n"), expect("EHLO "), reply("250-fake\r\n251 odd\r\n")]);
    assert_eq!(outcome.status, SMTP_PROTOCOL_ERROR, "{}", outcome.error);
}

#[test]
fn oversized_reply_line_is_protocol_error() {
    let mut line = b"220 ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    line.extend_from_slice(b"\r\n");
    let (outcome, _) = run(vec![Action::Send(line)]);
    assert_eq!(outcome.status, SMTP_PROTOCOL_ERROR, "{}", outcome.error);
    assert!(outcome.error.contains("longer than"), "{}", outcome.error);
}

#[test]
fn endless_continuation_is_protocol_error() {
    let lines = "250-more\r\n".repeat(100_000);
    let (outcome, _) = run(vec![reply("220 fake\r\n"), expect("EHLO "), reply(&lines)]);
    assert_eq!(outcome.status, SMTP_PROTOCOL_ERROR, "{}", outcome.error);
    assert!(outcome.error.contains("more than"), "{}", outcome.error);
}

#[test]
fn unsolicited_lines_are_protocol_error() {
    // A reply line that arrives before the client's next command could be taken as that
    // command's reply; the client must stop instead.
    let (outcome, received) = run(vec![reply("220 fake\r\n"), expect("EHLO "), reply("250 fake\r\n250 2.1.0 injected\r\n")]);
    assert_eq!(outcome.status, SMTP_PROTOCOL_ERROR, "{}", outcome.error);
    assert!(!received.lines.iter().any(|line| line.starts_with("MAIL")), "{:?}", received.lines);
}

#[test]
fn non_utf8_reply_text_kept() {
    let script = concat(vec![opening(), vec![expect("MAIL FROM:"), Action::Send(b"550 5.7.1 caf\xe9 \xff refused\r\n".to_vec()), expect("QUIT")]]);
    let (outcome, _) = run(script);
    assert_eq!(outcome.status, SMTP_SENDER_REJECTED, "{}", outcome.error);
    assert!(outcome.error.contains("5.7.1 caf\u{fffd} \u{fffd} refused"), "{}", outcome.error);
}

#[test]
fn failed_quit_keeps_success() {
    let script = concat(vec![
        opening(),
        vec![
            expect("MAIL FROM:"),
            reply("250 ok\r\n"),
            expect("RCPT TO:"),
            reply("250 ok\r\n"),
            expect("DATA"),
            reply("354 go\r\n"),
            Action::ReadData,
            reply("250 2.0.0 queued\r\n"),
            expect("QUIT"),
            Action::Close,
        ],
    ]);
    let (outcome, _) = run(script);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 250);
}

#[test]
fn rejected_message_reports_reply() {
    let script = concat(vec![
        opening(),
        vec![
            expect("MAIL FROM:"),
            reply("250 ok\r\n"),
            expect("RCPT TO:"),
            reply("250 ok\r\n"),
            expect("DATA"),
            reply("354 go\r\n"),
            Action::ReadData,
            reply("554-5.7.1 Message refused:\r\n554 5.7.1 spam detected\r\n"),
            expect("QUIT"),
            reply("221 bye\r\n"),
        ],
    ]);
    let (outcome, received) = run(script);
    assert_eq!(outcome.status, SMTP_MESSAGE_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 554);
    assert!(outcome.error.contains("554 5.7.1 Message refused: / 5.7.1 spam detected"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn data_without_354_rejected() {
    let script = concat(vec![
        opening(),
        vec![
            expect("MAIL FROM:"),
            reply("250 ok\r\n"),
            expect("RCPT TO:"),
            reply("250 ok\r\n"),
            expect("DATA"),
            reply("554 5.5.1 no valid recipients\r\n"),
            expect("QUIT"),
            reply("221 bye\r\n"),
        ],
    ]);
    let (outcome, _) = run(script);
    assert_eq!(outcome.status, SMTP_DATA_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 554);
}

#[test]
fn closed_during_body_reports_late_reply() {
    // A server that refuses part way through the body and closes: the client reports the
    // reply it sent before closing.
    short_timeout();
    let server = FakeServer::start(concat(vec![
        opening(),
        vec![
            expect("MAIL FROM:"),
            reply("250 ok\r\n"),
            expect("RCPT TO:"),
            reply("250 ok\r\n"),
            expect("DATA"),
            reply("354 go\r\n"),
            expect("Subject"),
            reply("552 5.3.4 Message size exceeds fixed limit\r\n"),
            Action::Close,
        ],
    ]));
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 200_000).flatten());
    let outcome = common::send("127.0.0.1", server.port(), "a@example.test", b"b@example.test", &body);
    server.finish();
    assert!(outcome.status == SMTP_MESSAGE_REJECTED || outcome.status == SMTP_CONNECTION_LOST, "{}: {}", outcome.status, outcome.error);
    if outcome.status == SMTP_MESSAGE_REJECTED {
        assert_eq!(outcome.reply_code, 552);
    }
}
