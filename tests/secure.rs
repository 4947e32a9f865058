//! TLS and authentication: against the Postfix test server's submission port (STARTTLS and
//! AUTH required) and implicit-TLS port, and against a scripted fake server for what
//! Postfix cannot be made to do, such as withholding the STARTTLS offer.

mod common;

use common::fake_server::{expect, send as reply, Action, FakeServer};
use common::{postfix, send_with, test_state_dir, unique_address, Outcome};
use mvsmtp::ffi::status::*;

const PASSWORD: &str = "testpass";
const BODY: &[u8] = b"Subject: secure\r\n\r\nsent over TLS\r\n";

fn submission_port() -> u16 {
    std::env::var("MVSMTP_TEST_SUBMISSION_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(2587)
}

fn implicit_port() -> u16 {
    std::env::var("MVSMTP_TEST_IMPLICIT_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(4465)
}

fn ca_file() -> String {
    test_state_dir().join("ca.crt").display().to_string()
}

/// Options for the submission port with STARTTLS and the test CA, plus `extra` lines.
fn submission(extra: &str) -> String {
    format!("host=127.0.0.1\nport={}\ntls=starttls\ntls_ca_file={}\ntimeout=10\n{extra}", submission_port(), ca_file())
}

fn credentials(mechanism: &str) -> String {
    format!("user=testuser\npassword={PASSWORD}\nauth={mechanism}")
}

/// Checks that neither the password nor any base64 form of it reached the diagnostics.
fn assert_no_secret(outcome: &Outcome) {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let forms = [
        PASSWORD.to_string(),
        STANDARD.encode(PASSWORD),
        STANDARD.encode(format!("\0testuser\0{PASSWORD}")),
    ];
    for form in &forms {
        assert!(!outcome.transcript.contains(form.as_str()), "the transcript contains {form:?}");
        assert!(!outcome.error.contains(form.as_str()), "the last error contains {form:?}");
    }
}

#[test]
fn starttls_with_each_mechanism() {
    let server = postfix();
    for mechanism in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let recipient = unique_address(&format!("tls-{}", mechanism.to_lowercase()));
        let outcome = send_with(&submission(&credentials(mechanism)), "sender@example.test", &recipient, BODY);
        assert_eq!(outcome.status, SMTP_OK, "{mechanism}: {}\n{}", outcome.error, outcome.transcript);
        assert!(outcome.transcript.contains(&format!("C: AUTH {mechanism}")), "{mechanism}: {}", outcome.transcript);
        assert!(outcome.transcript.contains("* TLS established"), "{mechanism}: {}", outcome.transcript);
        assert_no_secret(&outcome);

        let delivered = String::from_utf8_lossy(&server.delivered_raw(&recipient)).into_owned();
        assert!(delivered.contains("with ESMTPSA"), "{mechanism}: no ESMTPSA in {delivered}");
        assert!(delivered.contains("(Authenticated sender: testuser@example.test)"), "{mechanism}: {delivered}");
        assert!(delivered.contains("using TLSv1.3"), "{mechanism}: {delivered}");
        assert!(delivered.ends_with("Subject: secure\n\nsent over TLS\n"), "{mechanism}: {delivered}");
    }
}

#[test]
fn auto_picks_plain_over_tls() {
    let recipient = unique_address("tls-auto");
    let outcome = send_with(&submission("user=testuser\npassword=testpass"), "sender@example.test", &recipient, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("C: AUTH PLAIN <credentials hidden>"), "{}", outcome.transcript);
}

#[test]
fn ehlo_repeated_after_starttls() {
    let recipient = unique_address("tls-ehlo");
    let outcome = send_with(&submission(&credentials("PLAIN")), "sender@example.test", &recipient, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    let after_tls = outcome.transcript.split("* TLS established").nth(1).expect("a TLS note");
    assert!(after_tls.starts_with(" with 127.0.0.1"), "{after_tls}");
    assert!(after_tls.contains("C: EHLO "), "no EHLO after STARTTLS:\n{}", outcome.transcript);
}

#[test]
fn implicit_tls_delivers() {
    let server = postfix();
    let recipient = unique_address("tls-implicit");
    let options = format!("host=127.0.0.1\nport={}\ntls=implicit\ntls_ca_file={}\n{}", implicit_port(), ca_file(), credentials("auto"));
    let outcome = send_with(&options, "sender@example.test", &recipient, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    assert!(!outcome.transcript.contains("STARTTLS"), "{}", outcome.transcript);
    let delivered = String::from_utf8_lossy(&server.delivered_raw(&recipient)).into_owned();
    assert!(delivered.contains("(Authenticated sender: testuser@example.test)"), "{delivered}");
}

#[test]
fn wrong_password_fails_authentication() {
    let options = submission("user=testuser\npassword=wrong-password");
    let outcome = send_with(&options, "sender@example.test", &unique_address("tls-wrong"), BODY);
    assert_eq!(outcome.status, SMTP_AUTH_FAILED, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 535);
    assert!(outcome.error.contains("5.7.8"), "{}", outcome.error);
    assert!(outcome.error.contains("testuser"), "{}", outcome.error);
    assert!(!outcome.transcript.contains("MAIL FROM"), "{}", outcome.transcript);
    assert!(!outcome.error.contains("wrong-password"), "{}", outcome.error);
    assert!(!outcome.transcript.contains("wrong-password"), "{}", outcome.transcript);
}

#[test]
fn unknown_ca_fails_tls() {
    let options = format!("host=127.0.0.1\nport={}\ntls=starttls\n{}", submission_port(), credentials("PLAIN"));
    let outcome = send_with(&options, "sender@example.test", &unique_address("tls-ca"), BODY);
    assert_eq!(outcome.status, SMTP_TLS_FAILED, "{}", outcome.error);
    assert!(outcome.error.contains("unknown issuer"), "{}", outcome.error);
    assert!(outcome.error.contains("tls_ca_file"), "{}", outcome.error);
    assert!(!outcome.transcript.contains("AUTH"), "{}", outcome.transcript);
}

#[test]
fn name_mismatch_fails_tls() {
    let outcome = send_with(&submission("tls_server_name=mail.other.test\nuser=testuser\npassword=testpass"), "sender@example.test", &unique_address("tls-name"), BODY);
    assert_eq!(outcome.status, SMTP_TLS_FAILED, "{}", outcome.error);
    assert!(outcome.error.contains("name mismatch"), "{}", outcome.error);
    assert!(outcome.error.contains("mail.other.test"), "{}", outcome.error);
}

#[test]
fn server_name_override_accepted() {
    // The certificate names localhost, so a connection by IP address may ask for that name.
    let outcome = send_with(&submission("tls_server_name=localhost\nuser=testuser\npassword=testpass"), "sender@example.test", &unique_address("tls-sni"), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
}

#[test]
fn insecure_skips_verification() {
    let options = format!("host=127.0.0.1\nport={}\ntls=starttls\ntls_insecure=1\n{}", submission_port(), credentials("PLAIN"));
    let outcome = send_with(&options, "sender@example.test", &unique_address("tls-insecure"), BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
}

#[test]
fn implicit_tls_on_plain_port_fails() {
    let server = postfix();
    let options = format!("host=127.0.0.1\nport={}\ntls=implicit\ntls_ca_file={}\ntimeout=5", server.port, ca_file());
    let outcome = send_with(&options, "sender@example.test", &unique_address("tls-plainport"), BODY);
    assert_eq!(outcome.status, SMTP_TLS_FAILED, "{}", outcome.error);
    assert!(outcome.error.contains("tls=starttls"), "{}", outcome.error);
}

#[test]
fn credentials_without_tls_refused() {
    let server = postfix();
    let options = format!("host=127.0.0.1\nport={}\ntls=none\n{}", server.port, credentials("PLAIN"));
    let outcome = send_with(&options, "sender@example.test", &unique_address("tls-none"), BODY);
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);
    assert!(outcome.error.contains("insecure_plaintext_auth"), "{}", outcome.error);
    assert_eq!(outcome.transcript, "");
}

#[test]
fn insecure_plaintext_auth_allowed_on_request() {
    // The plain port offers AUTH before TLS. Without TLS, CRAM-MD5 comes first, because it
    // never sends the password itself.
    let server = postfix();
    let recipient = unique_address("plain-auth");
    let options = format!("host=127.0.0.1\nport={}\ntls=none\ninsecure_plaintext_auth=1\nuser=testuser\npassword={PASSWORD}", server.port);
    let outcome = send_with(&options, "sender@example.test", &recipient, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("C: AUTH CRAM-MD5"), "{}", outcome.transcript);
    assert_no_secret(&outcome);
    server.delivered(&recipient);
}

#[test]
fn credentials_default_to_starttls() {
    // On a port other than 465 and 587, credentials make STARTTLS required by default.
    let server = postfix();
    let recipient = unique_address("default-starttls");
    let options = format!("host=127.0.0.1\nport={}\ntls_ca_file={}\n{}", server.port, ca_file(), credentials("auto"));
    let outcome = send_with(&options, "sender@example.test", &recipient, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("C: STARTTLS"), "{}", outcome.transcript);
}

#[test]
fn opportunistic_upgrades_when_offered() {
    let server = postfix();
    let recipient = unique_address("opportunistic");
    let options = format!("host=127.0.0.1\nport={}\ntls=opportunistic\ntls_ca_file={}", server.port, ca_file());
    let outcome = send_with(&options, "sender@example.test", &recipient, BODY);
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("* TLS established"), "{}", outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn missing_host_option_rejected() {
    let outcome = send_with("port=25", "sender@example.test", "a@example.test", BODY);
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT);
    assert!(outcome.error.contains("host is not set"), "{}", outcome.error);
}

#[test]
fn option_list_errors_named() {
    let outcome = send_with("host=127.0.0.1\nfrobnicate=1", "sender@example.test", "a@example.test", BODY);
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT);
    assert!(outcome.error.contains("\"frobnicate\""), "{}", outcome.error);
    let outcome = send_with("host=127.0.0.1\ntls=maybe", "sender@example.test", "a@example.test", BODY);
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT);
    assert!(outcome.error.contains("tls"), "{}", outcome.error);
}

// Faults that Postfix cannot produce, from the scripted fake server.

fn fake_opening(extensions: &str) -> Vec<Action> {
    vec![reply("220 fake ESMTP\r\n"), expect("EHLO "), reply(extensions)]
}

fn fake_options(port: u16, tls: &str) -> String {
    format!("host=127.0.0.1\nport={port}\ntls={tls}\ntls_ca_file={}\ntimeout=5", ca_file())
}

#[test]
fn stripped_starttls_offer_stops() {
    let server = FakeServer::start(fake_opening("250-fake\r\n250 AUTH PLAIN\r\n"));
    let outcome = send_with(&fake_options(server.port(), "starttls"), "sender@example.test", "a@example.test", BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_TLS_UNAVAILABLE, "{}", outcome.error);
    assert!(outcome.error.contains("does not offer STARTTLS"), "{}", outcome.error);
    assert_eq!(received.commands().len(), 1, "the client sent more than EHLO: {:?}", received.lines);
}

#[test]
fn refused_starttls_stops() {
    let mut script = fake_opening("250-fake\r\n250 STARTTLS\r\n");
    script.extend([expect("STARTTLS"), reply("454 4.7.0 TLS not available due to local problem\r\n")]);
    let server = FakeServer::start(script);
    let outcome = send_with(&fake_options(server.port(), "starttls"), "sender@example.test", "a@example.test", BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_TLS_UNAVAILABLE, "{}", outcome.error);
    assert_eq!(outcome.reply_code, 454);
    let commands = received.commands();
    assert_eq!(commands.len(), 2, "the client sent more than EHLO and STARTTLS: {commands:?}");
    assert_eq!(commands[1], "STARTTLS");
}

#[test]
fn helo_fallback_keeps_tls_required() {
    let script = vec![
        reply("220 old server\r\n"),
        expect("EHLO "),
        reply("502 5.5.2 EHLO not supported\r\n"),
        expect("HELO "),
        reply("250 old\r\n"),
    ];
    let server = FakeServer::start(script);
    let outcome = send_with(&fake_options(server.port(), "starttls"), "sender@example.test", "a@example.test", BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_TLS_UNAVAILABLE, "{}", outcome.error);
    assert!(!received.lines.iter().any(|line| line.starts_with("MAIL")), "{:?}", received.lines);
}

#[test]
fn injected_reply_after_starttls_rejected() {
    // Bytes sent with the 220 to STARTTLS, before the handshake, would be read as if TLS
    // had protected them: the response-injection attack on STARTTLS.
    let mut script = fake_opening("250-fake\r\n250 STARTTLS\r\n");
    script.extend([expect("STARTTLS"), reply("220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 AUTH PLAIN\r\n")]);
    let server = FakeServer::start(script);
    let outcome = send_with(&fake_options(server.port(), "starttls"), "sender@example.test", "a@example.test", BODY);
    server.finish();
    assert_eq!(outcome.status, SMTP_PROTOCOL_ERROR, "{}", outcome.error);
    assert!(outcome.error.contains("before the TLS handshake"), "{}", outcome.error);
}

#[test]
fn opportunistic_continues_without_offer() {
    let mut script = fake_opening("250-fake\r\n250 8BITMIME\r\n");
    script.extend([
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
    ]);
    let server = FakeServer::start(script);
    let outcome = send_with(&fake_options(server.port(), "opportunistic"), "sender@example.test", "a@example.test", BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    assert!(outcome.transcript.contains("does not offer STARTTLS"), "{}", outcome.transcript);
    assert!(received.mismatches.is_empty(), "{:?}", received.mismatches);
}

#[test]
fn opportunistic_never_sends_credentials_in_clear() {
    let server = FakeServer::start(fake_opening("250-fake\r\n250 AUTH PLAIN LOGIN\r\n"));
    let options = format!("{}\nuser=testuser\npassword={PASSWORD}", fake_options(server.port(), "opportunistic"));
    let outcome = send_with(&options, "sender@example.test", "a@example.test", BODY);
    let received = server.finish();
    assert_eq!(outcome.status, SMTP_AUTH_UNAVAILABLE, "{}", outcome.error);
    assert!(!received.lines.iter().any(|line| line.starts_with("AUTH")), "{:?}", received.lines);
    assert!(!received.lines.iter().any(|line| line.contains(PASSWORD)), "{:?}", received.lines);
}

#[test]
fn no_common_mechanism_unavailable() {
    let server = FakeServer::start(fake_opening("250-fake\r\n250 AUTH GSSAPI NTLM\r\n"));
    let options = format!("host=127.0.0.1\nport={}\ntls=none\ninsecure_plaintext_auth=1\nuser=u\npassword=p\ntimeout=5", server.port());
    let outcome = send_with(&options, "sender@example.test", "a@example.test", BODY);
    server.finish();
    assert_eq!(outcome.status, SMTP_AUTH_UNAVAILABLE, "{}", outcome.error);
    assert!(outcome.error.contains("GSSAPI NTLM"), "{}", outcome.error);
}
