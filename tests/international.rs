//! International addresses (RFC 6531) and the SIZE extension (RFC 1870): against Postfix,
//! which offers SMTPUTF8 and SIZE, and a fake server that offers neither or a small limit.

mod common;

use common::fake_server::{expect, send as reply, Action, FakeServer};
use common::{postfix, send, unique_address};
use mvsmtp::ffi::status::*;

const BODY: &[u8] = b"Subject: international\r\n\r\nhello\r\n";

/// Returns a unique recipient whose local part and domain are not ASCII.
fn utf8_recipient(tag: &str) -> String {
    let ascii = unique_address(tag);
    let local = ascii.split('@').next().unwrap();
    format!("jos\u{e9}-{local}@b\u{fc}cher.example.test")
}

#[test]
fn smtputf8_used_when_offered() {
    let server = postfix();
    let recipient = utf8_recipient("utf8");
    let outcome = send(&server.host, server.port, "s\u{e9}nder@example.test", recipient.as_bytes(), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(outcome.transcript.contains("SMTPUTF8\n"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains(&format!("C: RCPT TO:<{recipient}>")), "{}", outcome.transcript);
    assert_eq!(server.delivered(&recipient), b"Subject: international\n\nhello\n");
}

#[test]
fn size_announced_to_postfix() {
    let server = postfix();
    let recipient = unique_address("size");
    let outcome = send(&server.host, server.port, "sender@example.test", recipient.as_bytes(), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains(&format!("SIZE={}", BODY.len())), "{}", outcome.transcript);
}

/// Starts a fake server that advertises `extensions` and then takes one message.
fn accepting_server(extensions: &str, rcpt: &'static str) -> FakeServer {
    FakeServer::start(vec![
        reply("220 fake ESMTP\r\n"),
        expect("EHLO "),
        reply(extensions),
        expect("MAIL FROM:"),
        reply("250 ok\r\n"),
        expect(rcpt),
        reply("250 ok\r\n"),
        expect("DATA"),
        reply("354 go\r\n"),
        Action::ReadData,
        reply("250 queued\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ])
}

#[test]
fn idn_domain_punycoded_without_smtputf8() {
    common::set_option("timeout", "5");
    let server = accepting_server("250-fake\r\n250 8BITMIME\r\n", "RCPT TO:<user@xn--bcher-kva.example>");
    let outcome = send("127.0.0.1", server.port(), "sender@example.test", "user@b\u{fc}cher.example".as_bytes(), BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert!(!received.lines.iter().any(|line| line.contains("SMTPUTF8")), "{:?}", received.lines);
}

#[test]
fn non_ascii_local_part_refused_without_smtputf8() {
    common::set_option("timeout", "5");
    let server = FakeServer::start(vec![
        reply("220 fake ESMTP\r\n"),
        expect("EHLO "),
        reply("250-fake\r\n250 8BITMIME\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let outcome = send("127.0.0.1", server.port(), "sender@example.test", "jos\u{e9}@example.test".as_bytes(), BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);
    assert!(outcome.error.contains("SMTPUTF8"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert!(!received.lines.iter().any(|line| line.starts_with("MAIL")), "{:?}", received.lines);
}

#[test]
fn oversized_message_refused_before_mail() {
    common::set_option("timeout", "5");
    let server = FakeServer::start(vec![
        reply("220 fake ESMTP\r\n"),
        expect("EHLO "),
        reply("250-fake\r\n250 SIZE 100\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(500));
    let outcome = send("127.0.0.1", server.port(), "sender@example.test", b"a@example.test", body.as_bytes());
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_MESSAGE_TOO_LARGE, "{}", outcome.error);
    assert!(outcome.error.contains("at most 100"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert!(!received.lines.iter().any(|line| line.starts_with("MAIL")), "{:?}", received.lines);
}

#[test]
fn size_zero_means_no_limit() {
    common::set_option("timeout", "5");
    let server = accepting_server("250-fake\r\n250 SIZE 0\r\n", "RCPT TO:<a@example.test>");
    let outcome = send("127.0.0.1", server.port(), "sender@example.test", b"a@example.test", BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(received.lines.iter().any(|line| line.contains(" SIZE=")), "{:?}", received.lines);
}
