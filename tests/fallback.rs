//! Fallback hosts: `host=a,b` tries b when a cannot be reached or its greeting rejects the
//! session. Every host here is a loopback address (127.0.0.1 to 127.0.0.4), all on one port,
//! because the `port` option applies to every host in the list.

mod common;

use std::ffi::{c_int, CString};
use std::net::TcpListener;

use common::fake_server::{expect, send as reply, Action, FakeServer};
use common::{postfix, unique_address};
use mvsmtp::ffi::{self, status::*};

/// Returns a port that is free on both 127.0.0.2 and 127.0.0.3, with a listener on each.
fn listeners_on_one_port() -> (TcpListener, TcpListener) {
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = TcpListener::bind(("127.0.0.3", port)) {
            return (first, second);
        }
    }
    panic!("found no port free on both 127.0.0.2 and 127.0.0.3 in 20 tries");
}

/// Reports whether nothing listens on 127.0.0.4 at `port`, so connecting there fails.
fn nothing_listens_on_127_0_0_4(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.4", port)).is_err()
}

fn accepting_script() -> Vec<Action> {
    vec![
        reply("220 second ESMTP\r\n"),
        expect("EHLO "),
        reply("250 second\r\n"),
        expect("MAIL FROM:"),
        reply("250 ok\r\n"),
        expect("RCPT TO:"),
        reply("250 ok\r\n"),
        expect("DATA"),
        reply("354 go ahead\r\n"),
        Action::ReadData,
        reply("250 2.0.0 queued on the second host\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]
}

#[test]
fn unreachable_first_host_skipped() {
    let server = postfix();
    assert!(nothing_listens_on_127_0_0_4(server.port), "something listens on 127.0.0.4:{}", server.port);
    let recipient = unique_address("fallback-connect");
    let options = format!("host=127.0.0.4, {}\nport={}\ntimeout=10", server.host, server.port);
    let outcome = common::send_with(&options, "sender@example.test", &recipient, b"Subject: fallback\r\n\r\nvia the second host\r\n");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(outcome.transcript.contains("Connecting to 127.0.0.4"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains(&format!("trying the next host, {}", server.host)), "{}", outcome.transcript);
    assert_eq!(server.delivered(&recipient), b"Subject: fallback\n\nvia the second host\n");
}

#[test]
fn closing_greeting_moves_on() {
    let (first, second) = listeners_on_one_port();
    let port = first.local_addr().unwrap().port();
    let first = FakeServer::start_on(first, vec![reply("421 4.3.2 first host busy\r\n"), expect("QUIT")]);
    let second = FakeServer::start_on(second, accepting_script());

    let options = format!("host=127.0.0.2,127.0.0.3\nport={port}\ntimeout=5");
    let outcome = common::send_with(&options, "a@example.test", "b@example.test", b"Subject: x\r\n\r\ny\r\n");
    let first = first.finish();
    let second = second.finish();

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(outcome.transcript.contains("S: 421 4.3.2 first host busy"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("queued on the second host"), "{}", outcome.transcript);
    assert!(!first.lines.iter().any(|line| line.starts_with("MAIL")), "{:?}", first.lines);
    assert!(second.mismatches.is_empty(), "{:?}", second.mismatches);
}

#[test]
fn rejecting_greeting_moves_on() {
    let (first, second) = listeners_on_one_port();
    let port = first.local_addr().unwrap().port();
    let first = FakeServer::start_on(first, vec![reply("554 5.3.2 no service for you\r\n"), expect("QUIT"), reply("221 bye\r\n")]);
    let second = FakeServer::start_on(second, accepting_script());

    let options = format!("host=127.0.0.2,127.0.0.3\nport={port}\ntimeout=5");
    let outcome = common::send_with(&options, "a@example.test", "b@example.test", b"Subject: x\r\n\r\ny\r\n");
    let first = first.finish();
    let second = second.finish();

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(first.mismatches.is_empty(), "the first host gets QUIT: {:?}", first.mismatches);
    assert!(second.mismatches.is_empty(), "{:?}", second.mismatches);
}

#[test]
fn failure_after_greeting_not_retried() {
    // A refusal after a 220 greeting is the message's result: trying another host could
    // deliver a message the first host had refused for a reason.
    let (first, second) = listeners_on_one_port();
    let port = first.local_addr().unwrap().port();
    let first = FakeServer::start_on(
        first,
        vec![
            reply("220 first ESMTP\r\n"),
            expect("EHLO "),
            reply("250 first\r\n"),
            expect("MAIL FROM:"),
            reply("550 5.7.1 sender not allowed\r\n"),
            expect("QUIT"),
            reply("221 bye\r\n"),
        ],
    );
    drop(second);

    let options = format!("host=127.0.0.2,127.0.0.3\nport={port}\ntimeout=5");
    let outcome = common::send_with(&options, "a@example.test", "b@example.test", b"Subject: x\r\n\r\ny\r\n");
    let first = first.finish();

    assert_eq!(outcome.status, SMTP_SENDER_REJECTED, "{}\n{}", outcome.error, outcome.transcript);
    assert!(first.mismatches.is_empty(), "{:?}", first.mismatches);
    assert!(!outcome.transcript.contains("trying the next host"), "{}", outcome.transcript);
}

#[test]
fn every_host_failing_reports_last() {
    let (first, second) = listeners_on_one_port();
    let port = first.local_addr().unwrap().port();
    let first = FakeServer::start_on(first, vec![reply("421 4.3.2 first host busy\r\n"), expect("QUIT")]);
    drop(second);

    let options = format!("host=127.0.0.2,127.0.0.3\nport={port}\ntimeout=5");
    let outcome = common::send_with(&options, "a@example.test", "b@example.test", b"Subject: x\r\n\r\ny\r\n");
    first.finish();

    assert_eq!(outcome.status, SMTP_CONNECT_FAILED, "{}\n{}", outcome.error, outcome.transcript);
    assert!(outcome.error.contains("127.0.0.2, 127.0.0.3 (each in turn"), "{}", outcome.error);
    assert!(outcome.transcript.contains("S: 421 4.3.2 first host busy"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("trying the next host, 127.0.0.3"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("All 2 hosts failed"), "{}", outcome.transcript);
}

#[test]
fn smtp_send_takes_host_list() {
    let server = postfix();
    let recipient = unique_address("fallback-smtp-send");
    let hosts = format!("127.0.0.4,{}", server.host);
    let outcome = common::send(&hosts, server.port, "sender@example.test", recipient.as_bytes(), b"Subject: list\r\n\r\nx\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn session_opens_on_fallback_and_audits_it() {
    let server = postfix();
    let directory = tempfile::tempdir().unwrap();
    let log_path = directory.path().join("audit.log");
    let options = CString::new(format!("host=127.0.0.4,{}\nport={}\ntimeout=10\nlog_file={}", server.host, server.port, log_path.display())).unwrap();
    // SAFETY: a live C string.
    let session: c_int = unsafe { ffi::smtp_open(options.as_ptr()) };
    assert!(session > 0, "smtp_open returned {session}: {}", common::collect(session).error);

    let recipient = unique_address("fallback-session");
    let strings = ["sender@example.test", recipient.as_str(), "Subject: session\r\n\r\nx\r\n"].map(|text| CString::new(text).unwrap());
    // SAFETY: live C strings.
    let status = unsafe { ffi::smtp_session_send(session, strings[0].as_ptr(), strings[1].as_ptr(), strings[2].as_ptr()) };
    let outcome = common::collect(status);
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    server.delivered(&recipient);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains(&format!("server={}:{}", server.host, server.port)), "{log}");
}

#[test]
fn invalid_host_lists_rejected() {
    let too_many = ["127.0.0.1"; 11].join(",");
    let cases = [
        ("127.0.0.1,,127.0.0.2", "entry 2 is empty"),
        ("127.0.0.1,", "entry 2 is empty"),
        ("127.0.0.1,bad host", "contains a space"),
        ("127.0.0.9,127.0.0.1:2525", "contains a port"),
        ("127.0.0.9;127.0.0.1", "Separate fallback hosts with commas"),
        (too_many.as_str(), "at most 10"),
    ];
    for (list, problem) in cases {
        let options = format!("host={list}\nport=9");
        let outcome = common::send_with(&options, "a@example.test", "b@example.test", b"x\r\n");
        assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{list}: {}", outcome.error);
        assert!(outcome.error.contains(problem), "{list}: {}", outcome.error);
        assert!(outcome.transcript.is_empty(), "{list}: {}", outcome.transcript);
    }
}
