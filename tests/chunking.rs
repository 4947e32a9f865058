//! BDAT (RFC 3030), which the library uses in place of DATA when the server offers both
//! CHUNKING and PIPELINING. Each scripted server reads the whole group before it replies, so
//! a client that waited between commands would stall and time out: passing these tests
//! shows that the envelope and the first chunk went out together.
//!
//! The Postfix test server offers CHUNKING too, so every delivery test against it also
//! sends with BDAT; `postfix_delivers_bdat_byte_for_byte` checks the delivered bytes.

mod common;

use std::ffi::{c_int, CString};

use common::fake_server::{expect, send as reply, Action, FakeServer, Received};
use mvsmtp::ffi::{self, status::*};

const OPENING_CAPABILITIES: &str = "250-fake\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n";

fn opening() -> Vec<Action> {
    vec![reply("220 fake ESMTP\r\n"), expect("EHLO "), reply(OPENING_CAPABILITIES)]
}

/// Plays `script` against one `smtp_send_with` call and returns the outcome and what the
/// server received.
fn run(script: Vec<Action>, to: &str, body: &[u8], extra_options: &str) -> (common::Outcome, Received) {
    let server = FakeServer::start(script);
    let options = format!("host=127.0.0.1\nport={}\ntimeout=3\n{extra_options}", server.port());
    let outcome = common::send_with(&options, "a@example.test", to, body);
    (outcome, server.finish())
}

#[test]
fn small_message_goes_with_envelope() {
    let body = b"Subject: chunked\r\n\r\n.a line that DATA would dot-stuff\r\nend\r\n";
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:<a@example.test>"),
        expect("RCPT TO:<b@example.test>"),
        expect("RCPT TO:<c@example.test>"),
        Action::ReadChunk,
        expect("QUIT"),
        reply("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test,c@example.test", body, "");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert_eq!(outcome.reply_code, 250);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert_eq!(received.chunks, vec![body.to_vec()], "BDAT carries the body without dot-stuffing");
    assert!(received.lines.contains(&format!("BDAT {} LAST", body.len())), "{:?}", received.lines);
    assert!(outcome.transcript.contains(&format!("C: BDAT {} LAST", body.len())), "{}", outcome.transcript);
    assert!(!outcome.transcript.contains("C: DATA"), "{}", outcome.transcript);
}

#[test]
fn line_endings_normalized_in_chunk() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        expect("QUIT"),
        reply("250 ok\r\n250 ok\r\n250 queued\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"Subject: x\n\nbare LF\rbare CR\xfemark\n.\nlast", "");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert_eq!(received.chunks, vec![b"Subject: x\r\n\r\nbare LF\r\nbare CR\r\nmark\r\n.\r\nlast\r\n".to_vec()]);
}

#[test]
fn empty_body_is_one_empty_chunk() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        expect("BDAT 0 LAST"),
        expect("QUIT"),
        reply("250 ok\r\n250 ok\r\n250 queued\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"", "");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn large_message_waits_for_envelope_first() {
    // 300 KB of text lines: three chunks. The server replies to the envelope and the first
    // chunk before it reads the rest, which the client sends without waiting in between.
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(line.len() * 4300).collect();
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        reply("250 ok\r\n250 ok\r\n250 2.0.0 chunk ok\r\n"),
        Action::ReadChunk,
        Action::ReadChunk,
        expect("QUIT"),
        reply("250 2.0.0 chunk ok\r\n250 2.0.0 queued\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", &body, "");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert_eq!(received.chunks.len(), 3);
    assert_eq!(received.chunks.concat(), body);
    let bdat_lines: Vec<&String> = received.lines.iter().filter(|line| line.starts_with("BDAT ")).collect();
    assert!(bdat_lines[2].ends_with(" LAST"), "{bdat_lines:?}");
    assert!(!bdat_lines[0].ends_with(" LAST"), "{bdat_lines:?}");
    assert!(!bdat_lines[1].ends_with(" LAST"), "{bdat_lines:?}");
}

#[test]
fn large_message_stops_after_refused_envelope() {
    let body = vec![b'x'; 400 * 1024];
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        reply("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "nobody@example.test", &body, "");

    assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert_eq!(received.chunks.len(), 1, "only the first chunk went out");
}

#[test]
fn every_recipient_refused() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        expect("QUIT"),
        reply("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "nobody@example.test", b"Subject: x\r\n\r\ny\r\n", "");

    assert_eq!(outcome.status, SMTP_RECIPIENTS_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn refused_sender() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        expect("QUIT"),
        reply("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"x\r\n", "");

    assert_eq!(outcome.status, SMTP_SENDER_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 550);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn rejected_chunk_is_message_rejected() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        expect("QUIT"),
        reply("250 ok\r\n250 ok\r\n554 5.7.1 message content rejected\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"Subject: spam\r\n\r\nx\r\n", "");

    assert_eq!(outcome.status, SMTP_MESSAGE_REJECTED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 554);
    assert!(outcome.error.contains("5.7.1"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn chunking_option_off_uses_data() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        expect("DATA"),
        reply("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
        Action::ReadData,
        expect("QUIT"),
        reply("250 queued\r\n221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"x\r\n", "chunking=0");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn pipelining_option_off_waits_for_each_reply() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        reply("250 ok\r\n"),
        expect("RCPT TO:"),
        reply("250 ok\r\n"),
        expect("DATA"),
        reply("354 go ahead\r\n"),
        Action::ReadData,
        reply("250 queued\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"x\r\n", "pipelining=no");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn chunking_without_pipelining_uses_data() {
    // BDAT alone would save waits too, but a server without PIPELINING keeps the classic
    // one-command-at-a-time conversation.
    let script = vec![
        reply("220 fake ESMTP\r\n"),
        expect("EHLO "),
        reply("250-fake\r\n250 CHUNKING\r\n"),
        expect("MAIL FROM:"),
        reply("250 ok\r\n"),
        expect("RCPT TO:"),
        reply("250 ok\r\n"),
        expect("DATA"),
        reply("354 go ahead\r\n"),
        Action::ReadData,
        reply("250 queued\r\n"),
        expect("QUIT"),
        reply("221 bye\r\n"),
    ];
    let (outcome, received) = run(script, "b@example.test", b"x\r\n", "");

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn session_message_is_one_group() {
    // On a kept session each message is one group: MAIL, RCPT and BDAT LAST with the body,
    // and the server reads the whole group before it replies to all of them at once.
    let mut script = opening();
    for _ in 0..3 {
        script.extend([
            expect("MAIL FROM:"),
            expect("RCPT TO:"),
            Action::ReadChunk,
            reply("250 ok\r\n250 ok\r\n250 queued\r\n"),
        ]);
    }
    script.extend([expect("QUIT"), reply("221 bye\r\n")]);
    let server = FakeServer::start(script);

    let options = CString::new(format!("host=127.0.0.1\nport={}\ntimeout=3", server.port())).unwrap();
    // SAFETY: the options string is a live C string.
    let session: c_int = unsafe { ffi::smtp_open(options.as_ptr()) };
    assert!(session > 0, "smtp_open returned {session}: {}", common::collect(session).error);
    for index in 0..3 {
        let strings = ["a@example.test".to_string(), "b@example.test".to_string(), format!("Subject: {index}\r\n\r\nbody\r\n")]
            .map(|text| CString::new(text).unwrap());
        // SAFETY: every pointer is a live C string owned by `strings`.
        let status = unsafe { ffi::smtp_session_send(session, strings[0].as_ptr(), strings[1].as_ptr(), strings[2].as_ptr()) };
        let outcome = common::collect(status);
        assert_eq!(outcome.status, SMTP_OK, "message {index}: {}\n{}", outcome.error, outcome.transcript);
    }
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    let received = server.finish();

    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    assert_eq!(received.chunks.len(), 3);
}

#[test]
fn postfix_delivers_bdat_byte_for_byte() {
    // Postfix offers CHUNKING, so this message goes with BDAT. Lines that start with a dot
    // must arrive as they were written, with no dot-stuffing left in them.
    let server = common::postfix();
    let recipient = common::unique_address("bdat");
    let body = b"Subject: chunked\r\n\r\n.dot first\r\n..two dots\r\n.\r\nend\r\n";
    let outcome = common::send(&server.host, server.port, "sender@example.test", recipient.as_bytes(), body);
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(outcome.transcript.contains(&format!("C: BDAT {} LAST", body.len())), "{}", outcome.transcript);

    assert_eq!(server.delivered(&recipient), b"Subject: chunked\n\n.dot first\n..two dots\n.\nend\n");
}

#[test]
fn connection_closed_after_group() {
    let mut script = opening();
    script.extend([expect("MAIL FROM:"), expect("RCPT TO:"), Action::ReadChunk, Action::Close]);
    let (outcome, received) = run(script, "b@example.test", b"x\r\n", "");

    assert_eq!(outcome.status, SMTP_CONNECTION_LOST, "{}\n{}", outcome.error, outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn silent_server_times_out() {
    let mut script = opening();
    script.extend([expect("MAIL FROM:"), expect("RCPT TO:"), Action::ReadChunk, Action::Pause(std::time::Duration::from_secs(3))]);
    let server = FakeServer::start(script);
    let options = format!("host=127.0.0.1\nport={}\ntimeout=1", server.port());
    let started = std::time::Instant::now();
    let outcome = common::send_with(&options, "a@example.test", "b@example.test", b"x\r\n");
    let elapsed = started.elapsed();
    server.finish();

    assert_eq!(outcome.status, SMTP_TIMEOUT, "{}\n{}", outcome.error, outcome.transcript);
    assert!(elapsed < std::time::Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn closing_reply_to_chunk() {
    let mut script = opening();
    script.extend([
        expect("MAIL FROM:"),
        expect("RCPT TO:"),
        Action::ReadChunk,
        expect("QUIT"),
        reply("250 ok\r\n250 ok\r\n421 4.3.0 shutting down\r\n"),
    ]);
    let (outcome, received) = run(script, "b@example.test", b"x\r\n", "");

    assert_eq!(outcome.status, SMTP_MESSAGE_REJECTED, "{}\n{}", outcome.error, outcome.transcript);
    assert_eq!(outcome.reply_code, 421);
    assert!(outcome.error.contains("try again later"), "{}", outcome.error);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn closed_idle_session_reconnects() {
    // The first connection takes one message, then replies 421 to the next MAIL FROM and
    // closes. The session reconnects and sends the second message on a new connection.
    let message = || [expect("MAIL FROM:"), expect("RCPT TO:"), Action::ReadChunk, reply("250 ok\r\n250 ok\r\n250 queued\r\n")];
    let mut first = opening();
    first.extend(message());
    first.extend([expect("MAIL FROM:"), reply("421 4.4.2 idle timeout\r\n"), Action::Close]);
    let mut second = opening();
    second.extend(message());
    second.extend([expect("QUIT"), reply("221 bye\r\n")]);
    let server = FakeServer::start_many(vec![first, second]);

    let options = CString::new(format!("host=127.0.0.1\nport={}\ntimeout=3", server.port())).unwrap();
    // SAFETY: the options string is a live C string.
    let session: c_int = unsafe { ffi::smtp_open(options.as_ptr()) };
    assert!(session > 0, "smtp_open returned {session}: {}", common::collect(session).error);
    for index in 0..2 {
        let strings = ["a@example.test".to_string(), "b@example.test".to_string(), format!("Subject: {index}\r\n\r\nbody\r\n")]
            .map(|text| CString::new(text).unwrap());
        // SAFETY: every pointer is a live C string owned by `strings`.
        let status = unsafe { ffi::smtp_session_send(session, strings[0].as_ptr(), strings[1].as_ptr(), strings[2].as_ptr()) };
        let outcome = common::collect(status);
        assert_eq!(outcome.status, SMTP_OK, "message {index}: {}\n{}", outcome.error, outcome.transcript);
        if index == 1 {
            assert!(outcome.transcript.contains("reconnecting"), "{}", outcome.transcript);
        }
    }
    assert_eq!(ffi::smtp_close(session), SMTP_OK);
    for received in server.finish_all() {
        assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
    }
}
