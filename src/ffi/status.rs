//! Status codes returned by every `smtp_*` call, and the one place that maps engine errors to
//! them. The numbers are part of the C interface: they never change, and a retired number is
//! never reused.

use std::ffi::{c_char, c_int, CStr};

use crate::error::{Error, Step};

/// The server accepted the message for every recipient.
pub const SMTP_OK: c_int = 0;
/// The server accepted the message for some recipients and refused others; the last error
/// lists the refused recipients with the server's replies.
pub const SMTP_PARTIAL: c_int = 1;
/// An argument or option is missing or invalid; nothing was sent. Only an address that the
/// server cannot take (a non-ASCII local part without SMTPUTF8) is found after connecting.
pub const SMTP_INVALID_ARGUMENT: c_int = 2;
/// The host name could not be resolved to an address.
pub const SMTP_RESOLVE_FAILED: c_int = 3;
/// No address of the host accepted the connection.
pub const SMTP_CONNECT_FAILED: c_int = 4;
/// The server did not reply within the timeout (connecting, or waiting for a reply).
pub const SMTP_TIMEOUT: c_int = 5;
/// The connection closed or failed in the middle of the conversation.
pub const SMTP_CONNECTION_LOST: c_int = 6;
/// The server sent a reply that is not well-formed SMTP.
pub const SMTP_PROTOCOL_ERROR: c_int = 7;
/// The server refused the session in its greeting, or closed it there with 421.
pub const SMTP_GREETING_REJECTED: c_int = 8;
/// The server rejected EHLO and HELO.
pub const SMTP_HELLO_REJECTED: c_int = 9;
/// The server rejected the sender at MAIL FROM.
pub const SMTP_SENDER_REJECTED: c_int = 10;
/// The server refused every recipient at RCPT TO; nothing was sent.
pub const SMTP_RECIPIENTS_REJECTED: c_int = 11;
/// The server rejected the DATA command.
pub const SMTP_DATA_REJECTED: c_int = 12;
/// The server refused the message after receiving it (the reply to the final ".").
pub const SMTP_MESSAGE_REJECTED: c_int = 13;
/// The TLS handshake or the certificate check failed; the last error gives the reason (unknown
/// issuer, expired certificate, name mismatch, or no common protocol version).
pub const SMTP_TLS_FAILED: c_int = 14;
/// TLS was required but the server does not offer STARTTLS or refused it; nothing was sent.
pub const SMTP_TLS_UNAVAILABLE: c_int = 15;
/// The server rejected the credentials (535 and similar replies).
pub const SMTP_AUTH_FAILED: c_int = 16;
/// Authentication is not possible: no mechanism in common, or credentials refused for lack
/// of TLS.
pub const SMTP_AUTH_UNAVAILABLE: c_int = 17;
/// The message is larger than the SIZE limit that the server advertises; nothing was sent.
pub const SMTP_MESSAGE_TOO_LARGE: c_int = 18;
/// The library caught an internal error, such as a panic; the last error describes it.
pub const SMTP_INTERNAL_ERROR: c_int = 99;

/// Maps an engine error to its status code.
pub fn status_of(error: &Error) -> c_int {
    match error {
        Error::InvalidArgument(_) => SMTP_INVALID_ARGUMENT,
        Error::ResolveFailed { .. } => SMTP_RESOLVE_FAILED,
        Error::ConnectFailed { .. } => SMTP_CONNECT_FAILED,
        Error::Timeout { .. } => SMTP_TIMEOUT,
        Error::ConnectionLost { .. } => SMTP_CONNECTION_LOST,
        Error::Protocol { .. } => SMTP_PROTOCOL_ERROR,
        Error::ServiceClosing { step, .. } => match step {
            Step::Resolve | Step::Connect | Step::Greeting => SMTP_GREETING_REJECTED,
            Step::Ehlo | Step::Helo => SMTP_HELLO_REJECTED,
            Step::StartTls | Step::TlsHandshake => SMTP_TLS_UNAVAILABLE,
            Step::Auth => SMTP_AUTH_FAILED,
            Step::MailFrom | Step::Rset => SMTP_SENDER_REJECTED,
            Step::RcptTo => SMTP_RECIPIENTS_REJECTED,
            Step::Data => SMTP_DATA_REJECTED,
            Step::Bdat | Step::Body | Step::EndOfData | Step::Quit => SMTP_MESSAGE_REJECTED,
        },
        Error::GreetingRejected { .. } => SMTP_GREETING_REJECTED,
        Error::HelloRejected { .. } => SMTP_HELLO_REJECTED,
        Error::SenderRejected { .. } => SMTP_SENDER_REJECTED,
        Error::RecipientsRejected(_) => SMTP_RECIPIENTS_REJECTED,
        Error::DataRejected { .. } => SMTP_DATA_REJECTED,
        Error::MessageRejected { .. } | Error::BodyRejected { .. } => SMTP_MESSAGE_REJECTED,
        Error::TlsFailed { .. } => SMTP_TLS_FAILED,
        Error::TlsUnavailable { .. } => SMTP_TLS_UNAVAILABLE,
        Error::AuthFailed { .. } => SMTP_AUTH_FAILED,
        Error::AuthUnavailable { .. } => SMTP_AUTH_UNAVAILABLE,
        Error::MessageTooLarge { .. } => SMTP_MESSAGE_TOO_LARGE,
        Error::Internal(_) => SMTP_INTERNAL_ERROR,
    }
}

/// Every status code with its name, in numeric order.
pub const STATUS_NAMES: &[(c_int, &CStr)] = &[
    (SMTP_OK, c"SMTP_OK"),
    (SMTP_PARTIAL, c"SMTP_PARTIAL"),
    (SMTP_INVALID_ARGUMENT, c"SMTP_INVALID_ARGUMENT"),
    (SMTP_RESOLVE_FAILED, c"SMTP_RESOLVE_FAILED"),
    (SMTP_CONNECT_FAILED, c"SMTP_CONNECT_FAILED"),
    (SMTP_TIMEOUT, c"SMTP_TIMEOUT"),
    (SMTP_CONNECTION_LOST, c"SMTP_CONNECTION_LOST"),
    (SMTP_PROTOCOL_ERROR, c"SMTP_PROTOCOL_ERROR"),
    (SMTP_GREETING_REJECTED, c"SMTP_GREETING_REJECTED"),
    (SMTP_HELLO_REJECTED, c"SMTP_HELLO_REJECTED"),
    (SMTP_SENDER_REJECTED, c"SMTP_SENDER_REJECTED"),
    (SMTP_RECIPIENTS_REJECTED, c"SMTP_RECIPIENTS_REJECTED"),
    (SMTP_DATA_REJECTED, c"SMTP_DATA_REJECTED"),
    (SMTP_MESSAGE_REJECTED, c"SMTP_MESSAGE_REJECTED"),
    (SMTP_TLS_FAILED, c"SMTP_TLS_FAILED"),
    (SMTP_TLS_UNAVAILABLE, c"SMTP_TLS_UNAVAILABLE"),
    (SMTP_AUTH_FAILED, c"SMTP_AUTH_FAILED"),
    (SMTP_AUTH_UNAVAILABLE, c"SMTP_AUTH_UNAVAILABLE"),
    (SMTP_MESSAGE_TOO_LARGE, c"SMTP_MESSAGE_TOO_LARGE"),
    (SMTP_INTERNAL_ERROR, c"SMTP_INTERNAL_ERROR"),
];

/// Returns the name of a status code, or `SMTP_UNKNOWN_STATUS`.
pub fn status_name(status: c_int) -> &'static CStr {
    STATUS_NAMES.iter().find(|(code, _)| *code == status).map(|(_, name)| *name).unwrap_or(c"SMTP_UNKNOWN_STATUS")
}

/// Returns a pointer to the static name of a status code.
pub fn status_name_ptr(status: c_int) -> *const c_char {
    status_name(status).as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::parse_recipients;
    use crate::error::Refusal;
    use crate::reply::Reply;

    fn reply(code: u16) -> Reply {
        Reply { code, enhanced: None, lines: vec!["text".into()] }
    }

    /// One error of every variant, with the status each must map to.
    fn every_error() -> Vec<(Error, c_int)> {
        let recipient = parse_recipients(b"a@example.test").unwrap().remove(0);
        vec![
            (Error::InvalidArgument("x".into()), SMTP_INVALID_ARGUMENT),
            (Error::ResolveFailed { host: "h".into(), detail: "d".into() }, SMTP_RESOLVE_FAILED),
            (Error::ConnectFailed { host: "h".into(), port: 25, detail: "d".into() }, SMTP_CONNECT_FAILED),
            (Error::Timeout { step: Step::Greeting, seconds: 1 }, SMTP_TIMEOUT),
            (Error::ConnectionLost { step: Step::Body, detail: "d".into() }, SMTP_CONNECTION_LOST),
            (Error::Protocol { step: Step::Ehlo, detail: "d".into() }, SMTP_PROTOCOL_ERROR),
            (Error::ServiceClosing { step: Step::Greeting, reply: reply(421) }, SMTP_GREETING_REJECTED),
            (Error::ServiceClosing { step: Step::Ehlo, reply: reply(421) }, SMTP_HELLO_REJECTED),
            (Error::ServiceClosing { step: Step::Helo, reply: reply(421) }, SMTP_HELLO_REJECTED),
            (Error::ServiceClosing { step: Step::MailFrom, reply: reply(421) }, SMTP_SENDER_REJECTED),
            (Error::ServiceClosing { step: Step::RcptTo, reply: reply(421) }, SMTP_RECIPIENTS_REJECTED),
            (Error::ServiceClosing { step: Step::Data, reply: reply(421) }, SMTP_DATA_REJECTED),
            (Error::ServiceClosing { step: Step::EndOfData, reply: reply(421) }, SMTP_MESSAGE_REJECTED),
            (Error::GreetingRejected { reply: reply(554) }, SMTP_GREETING_REJECTED),
            (Error::HelloRejected { command: "HELO x".into(), reply: reply(550) }, SMTP_HELLO_REJECTED),
            (Error::SenderRejected { sender: None, reply: reply(550) }, SMTP_SENDER_REJECTED),
            (Error::RecipientsRejected(vec![Refusal { recipient, reply: reply(550) }]), SMTP_RECIPIENTS_REJECTED),
            (Error::DataRejected { reply: reply(554) }, SMTP_DATA_REJECTED),
            (Error::MessageRejected { reply: reply(554) }, SMTP_MESSAGE_REJECTED),
            (Error::BodyRejected { reply: reply(552) }, SMTP_MESSAGE_REJECTED),
            (Error::ServiceClosing { step: Step::StartTls, reply: reply(421) }, SMTP_TLS_UNAVAILABLE),
            (Error::ServiceClosing { step: Step::Auth, reply: reply(421) }, SMTP_AUTH_FAILED),
            (Error::TlsFailed { server: "s".into(), detail: "d".into() }, SMTP_TLS_FAILED),
            (Error::TlsUnavailable { mode: crate::tls::TlsMode::StartTls, detail: "d".into(), reply: None }, SMTP_TLS_UNAVAILABLE),
            (
                Error::AuthFailed { user: "u".into(), mechanism: crate::auth::Mechanism::Plain, reply: reply(535), detail: None },
                SMTP_AUTH_FAILED,
            ),
            (Error::AuthUnavailable { detail: "d".into(), reply: None }, SMTP_AUTH_UNAVAILABLE),
            (Error::MessageTooLarge { size: 2, limit: 1 }, SMTP_MESSAGE_TOO_LARGE),
            (Error::Internal("x".into()), SMTP_INTERNAL_ERROR),
        ]
    }

    #[test]
    fn every_error_maps_to_its_status() {
        for (error, expected) in every_error() {
            assert_eq!(status_of(&error), expected, "{error:?}");
        }
    }

    #[test]
    fn every_error_status_has_name() {
        for (error, _) in every_error() {
            let name = status_name(status_of(&error)).to_str().unwrap();
            assert_ne!(name, "SMTP_UNKNOWN_STATUS", "{error:?}");
        }
    }

    #[test]
    fn status_numbers_distinct() {
        let mut codes: Vec<c_int> = STATUS_NAMES.iter().map(|(code, _)| *code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), STATUS_NAMES.len());
    }

    #[test]
    fn unknown_status_named() {
        assert_eq!(status_name(12345).to_str().unwrap(), "SMTP_UNKNOWN_STATUS");
        assert_eq!(status_name(SMTP_TIMEOUT).to_str().unwrap(), "SMTP_TIMEOUT");
    }
}
