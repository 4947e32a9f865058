//! Sessions for bulk sending (`smtp_open`, `smtp_session_send`, `smtp_close`) against the
//! Postfix test server, and a scripted server for a connection closed between messages.

mod common;

use std::ffi::{c_int, CString};

use common::fake_server::{expect, send as reply, Action, FakeServer};
use common::{postfix, unique_address};
use mvsmtp::ffi::{self, status::*};

fn open(options: &str) -> c_int {
    let options = CString::new(options).unwrap();
    // SAFETY: a live C string.
    unsafe { ffi::smtp_open(options.as_ptr()) }
}

fn session_send(session: c_int, from: &str, to: &str, body: &[u8]) -> common::Outcome {
    let strings = [from.as_bytes(), to.as_bytes(), body].map(|bytes| CString::new(bytes).unwrap());
    // SAFETY: live C strings.
    let status = unsafe { ffi::smtp_session_send(session, strings[0].as_ptr(), strings[1].as_ptr(), strings[2].as_ptr()) };
    common::collect(status)
}

#[test]
fn many_messages_one_connection() {
    let server = postfix();
    let session = open(&format!("host={}\nport={}\ntimeout=10", server.host, server.port));
    assert!(session > 0, "smtp_open returned {session}: {}", common::collect(session).error);

    let recipients: Vec<String> = (0..10).map(|index| unique_address(&format!("session{index}"))).collect();
    for (index, recipient) in recipients.iter().enumerate() {
        let body = format!("Subject: message {index}\r\n\r\nbody {index}\r\n");
        let outcome = session_send(session, "bulk@example.test", recipient, body.as_bytes());
        assert_eq!(outcome.status, SMTP_OK, "message {index}: {}", outcome.error);
        assert!(!outcome.transcript.contains("EHLO"), "message {index} greeted again:\n{}", outcome.transcript);
        assert!(!outcome.transcript.contains("QUIT"), "message {index} sent QUIT:\n{}", outcome.transcript);
    }
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    for (index, recipient) in recipients.iter().enumerate() {
        let expected = format!("Subject: message {index}\n\nbody {index}\n");
        assert_eq!(server.delivered(recipient), expected.as_bytes());
    }
}

#[test]
fn failed_message_then_next_succeeds() {
    let server = postfix();
    let session = open(&format!("host={}\nport={}\ntimeout=10", server.host, server.port));
    assert!(session > 0, "smtp_open returned {session}");

    let refused = session_send(session, "bulk@example.test", "reject@example.test", b"Subject: x\r\n\r\nx\r\n");
    assert_eq!(refused.status, SMTP_RECIPIENTS_REJECTED, "{}", refused.error);
    assert!(refused.transcript.contains("C: RSET"), "{}", refused.transcript);

    let recipient = unique_address("after-rset");
    let outcome = session_send(session, "bulk@example.test", &recipient, b"Subject: next\r\n\r\nnext\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    assert_eq!(server.delivered(&recipient), b"Subject: next\n\nnext\n");
}

#[test]
fn unknown_and_closed_ids_rejected() {
    let outcome = session_send(987_654, "a@example.test", "b@example.test", b"x\r\n");
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT);
    assert!(outcome.error.contains("987654"), "{}", outcome.error);
    assert_eq!(ffi::smtp_close(987_654), SMTP_INVALID_ARGUMENT);

    let server = postfix();
    let session = open(&format!("host={}\nport={}", server.host, server.port));
    assert!(session > 0);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    assert_eq!(ffi::smtp_close(session), SMTP_INVALID_ARGUMENT);
    assert_eq!(session_send(session, "a@example.test", "b@example.test", b"x\r\n").status, SMTP_INVALID_ARGUMENT);
}

#[test]
fn failed_open_is_negative_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let status = open(&format!("host=127.0.0.1\nport={port}"));
    assert_eq!(status, -SMTP_CONNECT_FAILED);
    assert_eq!(open("port=25"), -SMTP_INVALID_ARGUMENT);
}

#[test]
fn threads_share_one_session() {
    let server = postfix();
    let session = open(&format!("host={}\nport={}\ntimeout=10", server.host, server.port));
    assert!(session > 0);
    let handles: Vec<_> = (0..4)
        .map(|thread| {
            std::thread::spawn(move || {
                let mut recipients = Vec::new();
                for index in 0..5 {
                    let recipient = unique_address(&format!("shared{thread}-{index}"));
                    let outcome = session_send(session, "bulk@example.test", &recipient, b"Subject: shared\r\n\r\nx\r\n");
                    assert_eq!(outcome.status, SMTP_OK, "thread {thread} message {index}: {}", outcome.error);
                    recipients.push(recipient);
                }
                recipients
            })
        })
        .collect();
    let recipients: Vec<String> = handles.into_iter().flat_map(|handle| handle.join().expect("no thread panics")).collect();
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    for recipient in &recipients {
        server.delivered(recipient);
    }
}

#[test]
fn closed_idle_connection_reconnects() {
    // The first connection takes one message, then replies 421 to the next MAIL FROM.
    // The session must reconnect and send the second message on a new connection.
    assert_eq!(common::set_option("timeout", "5"), SMTP_OK);
    let message = |mail: &'static str| {
        vec![
            expect(mail),
            reply("250 ok\r\n"),
            expect("RCPT TO:"),
            reply("250 ok\r\n"),
            expect("DATA"),
            reply("354 go\r\n"),
            Action::ReadData,
            reply("250 queued\r\n"),
        ]
    };
    let mut first = vec![reply("220 first ESMTP\r\n"), expect("EHLO "), reply("250 first\r\n")];
    first.extend(message("MAIL FROM:"));
    first.extend([expect("MAIL FROM:"), reply("421 4.4.2 idle timeout\r\n")]);
    let server = FakeServer::start_many(vec![first, {
        let mut second = vec![reply("220 second ESMTP\r\n"), expect("EHLO "), reply("250 second\r\n")];
        second.extend(message("MAIL FROM:"));
        second.extend([expect("QUIT"), reply("221 bye\r\n")]);
        second
    }]);

    let session = open(&format!("host=127.0.0.1\nport={}", server.port()));
    assert!(session > 0, "smtp_open returned {session}");
    let first_outcome = session_send(session, "a@example.test", "b@example.test", b"Subject: 1\r\n\r\none\r\n");
    assert_eq!(first_outcome.status, SMTP_OK, "{}", first_outcome.error);
    let second_outcome = session_send(session, "a@example.test", "b@example.test", b"Subject: 2\r\n\r\ntwo\r\n");
    assert_eq!(second_outcome.status, SMTP_OK, "{}\n{}", second_outcome.error, second_outcome.transcript);
    assert!(second_outcome.transcript.contains("reconnecting"), "{}", second_outcome.transcript);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    for received in server.finish_all() {
        assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    }
}

#[allow(clippy::too_many_arguments)]
fn session_send_message(session: c_int, options: &str, from: &str, to: &str, subject: &str, body: &str, attachments: &str) -> common::Outcome {
    let strings = [options, from, to, subject, body, attachments].map(|text| CString::new(text).unwrap());
    // SAFETY: live C strings.
    let status = unsafe {
        ffi::smtp_session_send_message(
            session,
            strings[0].as_ptr(),
            strings[1].as_ptr(),
            strings[2].as_ptr(),
            strings[3].as_ptr(),
            strings[4].as_ptr(),
            strings[5].as_ptr(),
        )
    };
    common::collect(status)
}

#[test]
fn composed_messages_on_session() {
    let server = postfix();
    let session = open(&format!("host={}\nport={}\ntimeout=10", server.host, server.port));
    assert!(session > 0, "smtp_open returned {session}: {}", common::collect(session).error);

    let first = unique_address("composed-first");
    let copy = unique_address("composed-cc");
    let second = unique_address("composed-second");
    let outcome = session_send_message(session, &format!("cc={copy}"), "Billing <bulk@example.test>", &first, "Invoice 1", "First invoice", "");
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(!outcome.transcript.contains("EHLO"), "{}", outcome.transcript);

    // The cc of the first message does not carry over to the second.
    let outcome = session_send_message(session, "", "Billing <bulk@example.test>", &second, "Invoice 2", "Second invoice", "");
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(!outcome.transcript.contains(&copy), "{}", outcome.transcript);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);

    let delivered = String::from_utf8(server.delivered(&first)).unwrap();
    assert!(delivered.contains("Subject: Invoice 1\n"), "{delivered}");
    assert!(delivered.contains(&format!("Cc: <{copy}>")) || delivered.contains(&format!("Cc: {copy}")), "{delivered}");
    assert!(delivered.contains("First invoice"), "{delivered}");
    let delivered_copy = String::from_utf8(server.delivered(&copy)).unwrap();
    assert!(delivered_copy.contains("Subject: Invoice 1\n"), "{delivered_copy}");
    let delivered = String::from_utf8(server.delivered(&second)).unwrap();
    assert!(delivered.contains("Subject: Invoice 2\n"), "{delivered}");
    assert!(!delivered.contains("Cc:"), "{delivered}");
}

#[test]
fn connection_option_per_message_rejected() {
    let server = postfix();
    let session = open(&format!("host={}\nport={}\ntimeout=10", server.host, server.port));
    assert!(session > 0, "smtp_open returned {session}");

    let recipient = unique_address("per-message-host");
    let outcome = session_send_message(session, "host=other.example.test", "bulk@example.test", &recipient, "x", "x", "");
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);
    assert!(outcome.error.contains("the options that open the session"), "{}", outcome.error);
    assert!(outcome.transcript.is_empty(), "{}", outcome.transcript);

    let outcome = session_send_message(session, "charset=nonsense", "bulk@example.test", &recipient, "x", "x", "");
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);

    // The session is still usable after the rejected calls.
    let outcome = session_send_message(session, "", "bulk@example.test", &recipient, "still open", "body", "");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    server.delivered(&recipient);
}

#[test]
fn composed_message_unknown_session() {
    let outcome = session_send_message(987_654, "", "bulk@example.test", "b@example.test", "x", "x", "");
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);
    assert!(outcome.error.contains("987654"), "{}", outcome.error);
}

#[test]
fn tls_session_reads_ca_file_once() {
    // Each message reuses the TLS settings of smtp_open, so removing the CA file during a
    // run does not break the messages after it.
    let server = postfix();
    let directory = tempfile::tempdir().unwrap();
    let ca_copy = directory.path().join("ca.crt");
    std::fs::copy(common::test_state_dir().join("ca.crt"), &ca_copy).unwrap();
    let submission_port = std::env::var("MVSMTP_TEST_SUBMISSION_PORT").unwrap_or_else(|_| "2587".into());
    let session = open(&format!(
        "host={}\nport={submission_port}\ntls=starttls\ntls_ca_file={}\nuser=testuser\npassword=testpass\ntimeout=10",
        server.host,
        ca_copy.display()
    ));
    assert!(session > 0, "smtp_open returned {session}: {}", common::collect(session).error);

    std::fs::remove_file(&ca_copy).unwrap();
    let recipient = unique_address("tls-session");
    let outcome = session_send(session, "bulk@example.test", &recipient, b"Subject: tls\r\n\r\nover TLS\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    assert_eq!(server.delivered(&recipient), b"Subject: tls\n\nover TLS\n");
}
