//! End-to-end tests through the C interface against the Postfix test server: what the
//! server delivered is compared byte for byte with what the caller passed.

mod common;

use std::net::TcpListener;

use common::{postfix, send, send_raw, send_with, unique_address};
use mvsmtp::ffi::status::*;

const SENDER: &str = "sender@example.test";

/// Sends `body` to a fresh address, checks SMTP_OK, and returns the delivered bytes.
fn round_trip(tag: &str, body: &[u8]) -> Vec<u8> {
    let server = postfix();
    let recipient = unique_address(tag);
    let outcome = send(&server.host, server.port, SENDER, recipient.as_bytes(), body);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    server.delivered(&recipient)
}

/// Like [`round_trip`], but with `chunking=0`, so the body goes after DATA, dot-stuffed,
/// rather than in a BDAT chunk, which the test server would otherwise take.
fn round_trip_with_data(tag: &str, body: &[u8]) -> Vec<u8> {
    let server = postfix();
    let recipient = unique_address(tag);
    let options = format!("host={}\nport={}\nchunking=0", server.host, server.port);
    let outcome = send_with(&options, SENDER, &recipient, body);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("C: DATA"), "{}", outcome.transcript);
    server.delivered(&recipient)
}

#[test]
fn plain_message_delivered_exactly() {
    let body = b"From: Sender <sender@example.test>\r\nSubject: Invoice 42\r\nX-Spaces:  two  spaces\r\n\r\nHello,\r\nyour invoice is attached.\r\n";
    let delivered = round_trip("plain", body);
    assert_eq!(String::from_utf8_lossy(&delivered), String::from_utf8_lossy(body).replace("\r\n", "\n"));
}

#[test]
fn success_diagnostics() {
    let server = postfix();
    let recipient = unique_address("diagnostics");
    let outcome = send(&server.host, server.port, SENDER, recipient.as_bytes(), b"Subject: x\r\n\r\nsecret body text\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert_eq!(outcome.error, "");
    assert_eq!(outcome.reply_code, 250);
    assert!(outcome.transcript.contains(&format!("C: RCPT TO:<{recipient}>")), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("C: <message body, 32 bytes>"), "{}", outcome.transcript);
    assert!(!outcome.transcript.contains("secret body text"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("S: 221"), "{}", outcome.transcript);
}

#[test]
fn dot_lines_survive() {
    let body = b"Subject: dots\n\n.\n..\n. x\n.hidden\nend\n";
    assert_eq!(round_trip("dots", body), body);
    assert_eq!(round_trip_with_data("dots-data", body), body);
}

#[test]
fn bare_line_endings_normalized() {
    let body = b"Subject: bare\n\nlf line\ncr line\rcrlf line\r\nlast";
    let expected = b"Subject: bare\n\nlf line\ncr line\ncrlf line\nlast\n";
    assert_eq!(round_trip("bare", body), expected);
    assert_eq!(round_trip_with_data("bare-data", body), expected);
}

#[test]
fn missing_final_newline_added() {
    let delivered = round_trip("final", b"Subject: final\r\n\r\nno newline at the end");
    assert_eq!(delivered, b"Subject: final\n\nno newline at the end\n");
}

#[test]
fn empty_body_delivered() {
    // Postfix stores only its own header lines for an empty message.
    let delivered = round_trip("empty", b"");
    assert_eq!(delivered, b"");
}

#[test]
fn attribute_marks_become_lines() {
    let delivered = round_trip("marks", b"Subject: marks\xfe\xfeline one\xfeline two");
    assert_eq!(delivered, b"Subject: marks\n\nline one\nline two\n");
    let delivered = round_trip("marks-utf8", "Subject: nls\u{f8fe}\u{f8fe}line one\u{f8fe}line two".as_bytes());
    assert_eq!(delivered, b"Subject: nls\n\nline one\nline two\n");
}

#[test]
fn one_megabyte_body_delivered() {
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    let mut number = 0;
    while body.len() < 1024 * 1024 {
        body.extend_from_slice(format!("{number:08} The quick brown fox jumps over the lazy dog, line after line.\r\n").as_bytes());
        number += 1;
    }
    let expected: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    // Eight BDAT chunks with the test server's CHUNKING, and the 64 KiB pieces after DATA.
    for delivered in [round_trip("large", &body), round_trip_with_data("large-data", &body)] {
        assert_eq!(delivered.len(), expected.len());
        assert!(delivered == expected, "the delivered 1 MB body differs from the one sent");
    }
}

#[test]
fn eight_bit_body_marked() {
    let server = postfix();
    let recipient = unique_address("eightbit");
    let body = "Subject: caf\u{e9}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nCr\u{e8}me br\u{fb}l\u{e9}e\r\n";
    let outcome = send(&server.host, server.port, SENDER, recipient.as_bytes(), body.as_bytes());
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("BODY=8BITMIME"), "{}", outcome.transcript);
    assert_eq!(server.delivered(&recipient), body.replace("\r\n", "\n").as_bytes());
}

#[test]
fn ascii_body_not_marked() {
    let server = postfix();
    let recipient = unique_address("ascii");
    let outcome = send(&server.host, server.port, SENDER, recipient.as_bytes(), b"Subject: a\xfe\xfeplain");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(!outcome.transcript.contains("BODY=8BITMIME"), "{}", outcome.transcript);
}

#[test]
fn value_marks_separate_recipients() {
    let server = postfix();
    let (first, second, third) = (unique_address("vm1"), unique_address("vm2"), unique_address("vm3"));
    let mut to = first.as_bytes().to_vec();
    to.push(0xFD);
    to.extend_from_slice(format!("Second Person <{second}>").as_bytes());
    to.extend_from_slice("\u{f8fd}".as_bytes());
    to.extend_from_slice(third.as_bytes());
    to.push(0xFD);
    let outcome = send(&server.host, server.port, SENDER, &to, b"Subject: marks\r\n\r\nhi\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    for recipient in [&first, &second, &third] {
        assert_eq!(server.delivered(recipient), b"Subject: marks\n\nhi\n", "for {recipient}");
    }
}

#[test]
fn null_sender_accepted() {
    let server = postfix();
    let recipient = unique_address("bounce");
    let outcome = send(&server.host, server.port, "", recipient.as_bytes(), b"Subject: bounce\r\n\r\nx\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("C: MAIL FROM:<> SIZE="), "{}", outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn refused_recipient_gives_partial() {
    let server = postfix();
    let recipient = unique_address("partial");
    let to = format!("{recipient}, reject@example.test");
    let outcome = send(&server.host, server.port, SENDER, to.as_bytes(), b"Subject: partial\r\n\r\nstill sent\r\n");
    assert_eq!(outcome.status, SMTP_PARTIAL, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(outcome.error.contains("<reject@example.test>"), "{}", outcome.error);
    assert!(outcome.error.contains("5.1.1"), "{}", outcome.error);
    assert!(outcome.error.contains("1 of 2"), "{}", outcome.error);
    assert_eq!(server.delivered(&recipient), b"Subject: partial\n\nstill sent\n");
}

#[test]
fn all_recipients_refused() {
    let server = postfix();
    let outcome = send(&server.host, server.port, SENDER, b"reject@example.test;tempfail@example.test", b"Subject: none\r\n\r\nx\r\n");
    assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(outcome.error.contains("550 5.1.1"), "{}", outcome.error);
    assert!(outcome.error.contains("450 4.2.0"), "{}", outcome.error);
    // Postfix offers CHUNKING, so a small body goes out with the envelope as one BDAT
    // chunk, and the server discards it.
    assert!(outcome.transcript.contains("C: BDAT 20 LAST"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("C: QUIT"), "{}", outcome.transcript);
}

#[test]
fn all_recipients_refused_with_data() {
    let server = postfix();
    let options = format!("host={}\nport={}\nchunking=0", server.host, server.port);
    let outcome = send_with(&options, SENDER, "reject@example.test;tempfail@example.test", b"Subject: none\r\n\r\nx\r\n");
    assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    // With PIPELINING, DATA goes out with the envelope; the library then ends the data
    // phase with an empty message, and no body is sent.
    assert!(outcome.transcript.contains("C: DATA"), "{}", outcome.transcript);
    assert!(!outcome.transcript.contains("C: <message body"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("C: QUIT"), "{}", outcome.transcript);
}

#[test]
fn explicit_helo_used() {
    let server = postfix();
    let recipient = unique_address("helo");
    let outcome = send_raw(
        Some(server.host.as_bytes()),
        i32::from(server.port),
        Some(b"client.example.test"),
        Some(SENDER.as_bytes()),
        Some(recipient.as_bytes()),
        Some(b"Subject: helo\r\n\r\nx\r\n"),
    );
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("C: EHLO client.example.test\n"), "{}", outcome.transcript);
}

#[test]
fn localhost_name_resolves() {
    // "localhost" may resolve to ::1 first, where the test server does not listen; the
    // next address must be tried.
    let server = postfix();
    let recipient = unique_address("localhost");
    let outcome = send("localhost", server.port, SENDER, recipient.as_bytes(), b"Subject: localhost\r\n\r\nx\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn injection_never_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let outcome = send("127.0.0.1", port, SENDER, b"a@b.example>\r\nRCPT TO:<x@y.example>", b"Subject: x\r\n\r\nx\r\n");
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT);
    assert!(outcome.error.contains("RCPT TO:<x@y.example>"), "{}", outcome.error);
    assert_eq!(outcome.transcript, "");
    assert!(listener.accept().is_err(), "the library connected despite an invalid argument");
}

#[test]
fn invalid_arguments_never_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = i32::from(listener.local_addr().unwrap().port());
    let body: &[u8] = b"Subject: x\r\n\r\nx\r\n";

    type Case<'a> = (&'a str, Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);
    let cases: &[Case] = &[
        ("NULL to", None, Some(b"a@example.test"), None, Some(body)),
        ("NULL from", None, None, Some(b"b@example.test"), Some(body)),
        ("NULL body", None, Some(b"a@example.test"), Some(b"b@example.test"), None),
        ("helo with CRLF", Some(b"x\r\nMAIL FROM:<evil@example.test>"), Some(b"a@example.test"), Some(b"b@example.test"), Some(body)),
        ("from with LF", None, Some(b"a@example.test\nRCPT TO:<c@example.test>"), Some(b"b@example.test"), Some(body)),
        ("to without @", None, Some(b"a@example.test"), Some(b"nobody"), Some(body)),
        ("to with a space", None, Some(b"a@example.test"), Some(b"a b@example.test"), Some(body)),
        ("to with brackets", None, Some(b"a@example.test"), Some(b"a<b>@example.test"), Some(body)),
        ("no recipient", None, Some(b"a@example.test"), Some(b" , ;"), Some(body)),
    ];
    for (name, helo, from, to, body) in cases {
        let outcome = send_raw(Some(b"127.0.0.1"), port, *helo, *from, *to, *body);
        assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{name}: {}", outcome.error);
        assert!(!outcome.error.is_empty(), "{name}: no message");
        assert_eq!(outcome.transcript, "", "{name}");
    }
    for port in [-1, 65536] {
        let outcome = send_raw(Some(b"127.0.0.1"), port, None, Some(b"a@example.test"), Some(b"b@example.test"), Some(body));
        assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "port {port}");
    }
    let outcome = send_raw(None, port, None, Some(b"a@example.test"), Some(b"b@example.test"), Some(body));
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "NULL host");
    assert!(listener.accept().is_err(), "the library connected despite an invalid argument");
}

#[test]
fn closed_port_fails_to_connect() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = send("127.0.0.1", port, SENDER, b"b@example.test", b"x\r\n");
    assert_eq!(outcome.status, SMTP_CONNECT_FAILED, "{}", outcome.error);
    assert!(outcome.error.contains(&format!("127.0.0.1 port {port}")), "{}", outcome.error);
    assert_eq!(outcome.reply_code, 0);
}

#[test]
fn threads_keep_own_diagnostics() {
    let server = postfix();
    let handles: Vec<_> = (0..4)
        .map(|index| {
            let (host, port) = (server.host.clone(), server.port);
            std::thread::spawn(move || {
                for round in 0..5 {
                    let recipient = unique_address(&format!("thread{index}"));
                    if index % 2 == 0 {
                        let outcome = send(&host, port, SENDER, recipient.as_bytes(), b"Subject: t\r\n\r\nx\r\n");
                        assert_eq!(outcome.status, SMTP_OK, "thread {index} round {round}: {}", outcome.error);
                        assert_eq!(outcome.error, "");
                        assert!(outcome.transcript.contains(&recipient), "thread {index} round {round}");
                    } else {
                        let outcome = send(&host, port, SENDER, b"reject@example.test", b"Subject: t\r\n\r\nx\r\n");
                        assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "thread {index} round {round}");
                        assert!(outcome.error.contains("reject@example.test"), "thread {index} round {round}");
                        assert!(!outcome.transcript.contains("thread"), "thread {index} saw another thread's transcript");
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("no sending thread panics");
    }
}

#[test]
fn timeout_option_validated() {
    assert_eq!(common::set_option("timeout", "abc"), SMTP_INVALID_ARGUMENT);
    assert!(common::collect(SMTP_INVALID_ARGUMENT).error.contains("\"abc\""));
    assert_eq!(common::set_option("nonsense", "1"), SMTP_INVALID_ARGUMENT);
    assert_eq!(common::set_option("timeout", ""), SMTP_OK);
}
