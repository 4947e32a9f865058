//! Announcing the next message on a kept session (`Persistent::send_before`): on a server
//! with PIPELINING but without CHUNKING, the next message's MAIL FROM, RCPT TO and DATA go
//! out with this message's end of data, so each message costs one wait. Each scripted
//! server reads the whole group before it replies, so passing these tests shows that the
//! commands went out together.

mod common;

use common::fake_server::{expect, send as reply, Action, FakeServer, Received};
use mvsmtp::options::Options;
use mvsmtp::request::{RawRequest, Request};
use mvsmtp::session::{self, Delivery, Persistent};
use mvsmtp::transcript::Transcript;

const CAPABILITIES: &str = "250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

fn opening() -> Vec<Action> {
    vec![reply("220 fake ESMTP\r\n"), expect("EHLO "), reply(CAPABILITIES)]
}

fn options(port: u16) -> Options {
    let mut options = Options::default();
    options.set(b"host", b"127.0.0.1").unwrap();
    options.set(b"port", port.to_string().as_bytes()).unwrap();
    options.set(b"timeout", b"3").unwrap();
    options
}

/// Returns `count` messages, each as its recipient and body.
fn messages(count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count).map(|index| (format!("r{index}@example.test"), format!("Subject: {index}\r\n\r\nbody {index}\r\n").into_bytes())).collect()
}

fn request<'a>(options: &Options, message: &'a (String, Vec<u8>)) -> Request<'a> {
    let raw = RawRequest { from: Some(b"a@example.test"), to: Some(message.0.as_bytes()), body: Some(&message.1) };
    Request::validate(raw, options).unwrap()
}

fn open(options: &Options) -> Persistent {
    let open_request = Request::with_envelope(None, Vec::new(), b"", options).unwrap();
    session::open(&open_request, &mut Transcript::new()).unwrap()
}

/// Sends every message, announcing each one's successor, and returns each outcome with
/// its transcript.
fn send_all(options: &Options, messages: &[(String, Vec<u8>)]) -> Vec<(Result<Delivery, mvsmtp::error::Error>, String)> {
    let mut persistent = open(options);
    let requests: Vec<Request<'_>> = messages.iter().map(|message| request(options, message)).collect();
    let mut outcomes = Vec::new();
    for (index, current) in requests.iter().enumerate() {
        let mut transcript = Transcript::new();
        let outcome = persistent.send_before(current, requests.get(index + 1), &mut transcript);
        outcomes.push((outcome, transcript.into_string()));
    }
    persistent.close(&mut Transcript::new());
    outcomes
}

fn assert_clean(received: &Received) {
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn next_envelope_follows_end_of_data() {
    let mut script = opening();
    script.extend([expect("MAIL FROM:<a@example.test>"), expect("RCPT TO:<r0@"), expect("DATA"), reply("250 ok\r\n250 ok\r\n354 go\r\n")]);
    for index in 1..3 {
        script.extend([
            Action::ReadData,
            expect("MAIL FROM:<a@example.test>"),
            expect(["RCPT TO:<r1@", "RCPT TO:<r2@"][index - 1]),
            expect("DATA"),
            reply("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        ]);
    }
    script.extend([Action::ReadData, reply("250 queued\r\n"), expect("QUIT"), reply("221 bye\r\n")]);
    let server = FakeServer::start(script);

    let outcomes = send_all(&options(server.port()), &messages(3));
    let received = server.finish();

    assert_clean(&received);
    for (index, (outcome, transcript)) in outcomes.iter().enumerate() {
        assert!(outcome.is_ok(), "message {index}: {outcome:?}\n{transcript}");
    }
    assert!(outcomes[1].1.contains("went out with the previous message's end of data"), "{}", outcomes[1].1);
    assert!(!received.lines.iter().any(|line| line == "RSET"), "{:?}", received.lines);
}

#[test]
fn rejected_message_keeps_next_envelope() {
    // The server rejects the first message at the end of data. That ends its transaction,
    // so no RSET may follow: the next message's DATA is already accepted and an RSET would
    // become part of its text.
    let mut script = opening();
    script.extend([expect("MAIL FROM:"), expect("RCPT TO:"), expect("DATA"), reply("250 ok\r\n250 ok\r\n354 go\r\n")]);
    script.extend([
        Action::ReadData,
        expect("MAIL FROM:"),
        expect("RCPT TO:<r1@"),
        expect("DATA"),
        reply("554 5.7.1 content rejected\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        Action::ReadData,
        reply("250 queued\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let server = FakeServer::start(script);

    let outcomes = send_all(&options(server.port()), &messages(2));
    let received = server.finish();

    assert_clean(&received);
    assert!(
        matches!(&outcomes[0].0, Err(mvsmtp::error::Error::MessageRejected { reply }) if reply.code == 554),
        "{:?}\n{}",
        outcomes[0].0,
        outcomes[0].1
    );
    assert!(outcomes[1].0.is_ok(), "{:?}\n{}", outcomes[1].0, outcomes[1].1);
    let second_text: Vec<&String> = received.lines.iter().filter(|line| line.starts_with("DATA:")).collect();
    assert!(!second_text.iter().any(|line| line.contains("RSET")), "{second_text:?}");
}

#[test]
fn refused_next_recipient_reported_on_its_turn() {
    let mut script = opening();
    script.extend([expect("MAIL FROM:"), expect("RCPT TO:"), expect("DATA"), reply("250 ok\r\n250 ok\r\n354 go\r\n")]);
    script.extend([
        Action::ReadData,
        expect("MAIL FROM:"),
        expect("RCPT TO:<r1@"),
        expect("DATA"),
        reply("250 queued\r\n250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
        // After the failed envelope the session drops the transaction with RSET.
        expect("RSET"),
        reply("250 ok\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let server = FakeServer::start(script);

    let outcomes = send_all(&options(server.port()), &messages(2));
    let received = server.finish();

    assert_clean(&received);
    assert!(outcomes[0].0.is_ok(), "{:?}", outcomes[0].0);
    assert!(matches!(&outcomes[1].0, Err(mvsmtp::error::Error::RecipientsRejected(_))), "{:?}\n{}", outcomes[1].0, outcomes[1].1);
}

#[test]
fn other_message_than_announced_reconnects() {
    // The caller announces r1 but then sends r2. The first server has already accepted DATA
    // for r1, so the session must close that connection without ending the data, and send
    // r2 on a new connection. Nothing reaches r1.
    let mut first = opening();
    first.extend([expect("MAIL FROM:"), expect("RCPT TO:<r0@"), expect("DATA"), reply("250 ok\r\n250 ok\r\n354 go\r\n")]);
    first.extend([Action::ReadData, expect("MAIL FROM:"), expect("RCPT TO:<r1@"), expect("DATA"), reply("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n")]);
    let mut second = opening();
    second.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:<r2@"),
        expect("DATA"),
        reply("250 ok\r\n250 ok\r\n354 go\r\n"),
        Action::ReadData,
        reply("250 queued\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let server = FakeServer::start_many(vec![first, second]);

    let options = options(server.port());
    let all = messages(3);
    let mut persistent = open(&options);
    let requests: Vec<Request<'_>> = all.iter().map(|message| request(&options, message)).collect();
    let first_outcome = persistent.send_before(&requests[0], Some(&requests[1]), &mut Transcript::new());
    let mut transcript = Transcript::new();
    let other_outcome = persistent.send_before(&requests[2], None, &mut transcript);
    persistent.close(&mut Transcript::new());
    let received = server.finish_all();

    assert!(first_outcome.is_ok(), "{first_outcome:?}");
    assert!(other_outcome.is_ok(), "{other_outcome:?}\n{}", transcript.as_str());
    assert!(transcript.as_str().contains("reconnecting"), "{}", transcript.as_str());
    for connection in &received {
        assert_clean(connection);
    }
    // After the announced DATA, the first connection got nothing more: no ".", no QUIT.
    let after_announced = received[0].lines.iter().skip_while(|line| !line.starts_with("RCPT TO:<r1@")).skip(2).count();
    assert_eq!(after_announced, 0, "{:?}", received[0].lines);
}

#[test]
fn close_with_announced_message_sends_no_quit() {
    let mut script = opening();
    script.extend([expect("MAIL FROM:"), expect("RCPT TO:<r0@"), expect("DATA"), reply("250 ok\r\n250 ok\r\n354 go\r\n")]);
    script.extend([Action::ReadData, expect("MAIL FROM:"), expect("RCPT TO:<r1@"), expect("DATA"), reply("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n")]);
    let server = FakeServer::start(script);

    let options = options(server.port());
    let all = messages(2);
    let mut persistent = open(&options);
    let requests: Vec<Request<'_>> = all.iter().map(|message| request(&options, message)).collect();
    let outcome = persistent.send_before(&requests[0], Some(&requests[1]), &mut Transcript::new());
    persistent.close(&mut Transcript::new());
    let received = server.finish();

    assert!(outcome.is_ok(), "{outcome:?}");
    assert_clean(&received);
    assert_eq!(received.lines.last().map(String::as_str), Some("DATA"), "{:?}", received.lines);
}

#[test]
fn postfix_takes_announced_messages() {
    // Postfix offers CHUNKING, so with chunking=0 the DATA path and its announced
    // envelopes run against a real server.
    let server = common::postfix();
    let mut options = Options::default();
    options.set(b"host", server.host.as_bytes()).unwrap();
    options.set(b"port", server.port.to_string().as_bytes()).unwrap();
    options.set(b"chunking", b"0").unwrap();
    let recipients: Vec<String> = (0..20).map(|index| common::unique_address(&format!("lookahead{index}"))).collect();
    let all: Vec<(String, Vec<u8>)> =
        recipients.iter().enumerate().map(|(index, recipient)| (recipient.clone(), format!("Subject: {index}\r\n\r\nbody {index}\r\n").into_bytes())).collect();

    let outcomes = send_all(&options, &all);

    for (index, (outcome, transcript)) in outcomes.iter().enumerate() {
        assert!(outcome.is_ok(), "message {index}: {outcome:?}\n{transcript}");
    }
    for (index, recipient) in recipients.iter().enumerate() {
        assert_eq!(server.delivered(recipient), format!("Subject: {index}\n\nbody {index}\n").as_bytes());
    }
}
