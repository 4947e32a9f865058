//! One send request, validated in full before any connection is made.
//!
//! The arguments arrive as bytes from C. A request is built only when every argument is
//! valid, so an invalid argument never opens a connection, and nothing that reaches the
//! server can carry a line break the library did not put there.

use std::time::Duration;

use crate::address::{self, describe_byte, escape_for_message, trim_spaces, Address};
use crate::error::Error;

/// The port used when the caller passes 0.
pub const DEFAULT_PORT: u16 = 25;

/// The default timeout for connecting and for each wait for the server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The arguments of one send, exactly as the caller passed them. `None` stands for a NULL
/// pointer.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub host: Option<&'a [u8]>,
    pub port: i64,
    pub helo: Option<&'a [u8]>,
    pub from: Option<&'a [u8]>,
    pub to: Option<&'a [u8]>,
    pub body: Option<&'a [u8]>,
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub host: String,
    pub port: u16,
    /// The EHLO name, or `None` for the machine's host name.
    pub helo: Option<String>,
    /// The envelope sender, or `None` for the null sender `<>`.
    pub sender: Option<Address>,
    pub recipients: Vec<Address>,
    pub body: &'a [u8],
    pub timeout: Duration,
}

impl<'a> Request<'a> {
    /// Validates every argument and returns the first problem as `Error::InvalidArgument`.
    pub fn validate(raw: RawRequest<'a>, timeout: Duration) -> Result<Request<'a>, Error> {
        let host = validate_host(required(raw.host, "host")?)?;
        let port = validate_port(raw.port)?;
        let helo = match raw.helo {
            None | Some(b"") => None,
            Some(value) => Some(validate_helo(value)?),
        };

        let from = required(raw.from, "from")?;
        let sender = address::parse_sender(from).map_err(|error| Error::InvalidArgument(format!("Invalid sender {error}.")))?;

        let to = required(raw.to, "to")?;
        let recipients =
            address::parse_recipients(to).map_err(|error| Error::InvalidArgument(format!("Invalid recipient {error}.")))?;

        let body = required(raw.body, "body")?;
        if let Some(offset) = body.iter().position(|&b| b == 0) {
            return Err(Error::InvalidArgument(format!(
                "Invalid body: it contains a NUL byte at offset {offset}, which SMTP cannot carry. Remove it or attach the data encoded."
            )));
        }

        Ok(Request { host, port, helo, sender, recipients, body, timeout })
    }
}

fn required<'a>(value: Option<&'a [u8]>, name: &str) -> Result<&'a [u8], Error> {
    value.ok_or_else(|| Error::InvalidArgument(format!("Missing argument: {name} is NULL. Pass a string (\"\" where an empty value is allowed).")))
}

fn validate_host(value: &[u8]) -> Result<String, Error> {
    let trimmed = trim_spaces(value);
    if let Some(&bad) = trimmed.iter().find(|&&b| b <= 0x20 || b == 0x7F) {
        return Err(Error::InvalidArgument(format!(
            "Invalid host \"{}\": it contains {}. Pass only the host name or IP address.",
            escape_for_message(value),
            describe_byte(bad)
        )));
    }
    if trimmed.is_empty() {
        return Err(Error::InvalidArgument("Invalid host: it is empty. Pass the mail server's host name or IP address.".into()));
    }
    match std::str::from_utf8(trimmed) {
        Ok(host) if host.is_ascii() => Ok(host.to_owned()),
        _ => Err(Error::InvalidArgument(format!(
            "Invalid host \"{}\": it contains non-ASCII characters. Use the ASCII (punycode) form of the name.",
            escape_for_message(value)
        ))),
    }
}

fn validate_port(port: i64) -> Result<u16, Error> {
    match port {
        0 => Ok(DEFAULT_PORT),
        1..=65535 => Ok(port as u16),
        _ => Err(Error::InvalidArgument(format!(
            "Invalid port {port}: use 1 to 65535, or 0 for the default port 25 (587 is usual for submission)."
        ))),
    }
}

/// Checks an EHLO name: a domain name or an address literal such as `[192.0.2.1]`.
fn validate_helo(value: &[u8]) -> Result<String, Error> {
    if let Some(&bad) = value.iter().find(|&&b| b <= 0x20 || b == 0x7F) {
        return Err(Error::InvalidArgument(format!(
            "Invalid helo \"{}\": it contains {}. Pass one host name with no spaces or line breaks.",
            escape_for_message(value),
            describe_byte(bad)
        )));
    }
    let is_literal = value.len() > 2
        && value[0] == b'['
        && value[value.len() - 1] == b']'
        && value[1..value.len() - 1].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b':');
    if !is_literal && !address::is_domain_name(value) {
        return Err(Error::InvalidArgument(format!(
            "Invalid helo \"{}\": use a host name such as client.example.com or an address literal such as [192.0.2.1].",
            escape_for_message(value)
        )));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(to: &'a [u8]) -> RawRequest<'a> {
        RawRequest { host: Some(b"127.0.0.1"), port: 2525, helo: None, from: Some(b"a@x.test"), to: Some(to), body: Some(b"") }
    }

    fn problem(raw: RawRequest<'_>) -> String {
        match Request::validate(raw, DEFAULT_TIMEOUT) {
            Err(Error::InvalidArgument(message)) => message,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn valid_request() {
        let request = Request::validate(raw(b"b@x.test"), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(request.port, 2525);
        assert_eq!(request.recipients.len(), 1);
        assert_eq!(request.helo, None);
    }

    #[test]
    fn port_zero_means_25() {
        let request = Request::validate(RawRequest { port: 0, ..raw(b"b@x.test") }, DEFAULT_TIMEOUT).unwrap();
        assert_eq!(request.port, 25);
    }

    #[test]
    fn null_arguments_named() {
        assert!(problem(RawRequest { host: None, ..raw(b"b@x.test") }).contains("host is NULL"));
        assert!(problem(RawRequest { from: None, ..raw(b"b@x.test") }).contains("from is NULL"));
        assert!(problem(RawRequest { to: None, ..raw(b"b@x.test") }).contains("to is NULL"));
        assert!(problem(RawRequest { body: None, ..raw(b"b@x.test") }).contains("body is NULL"));
    }

    #[test]
    fn bad_ports_rejected() {
        for port in [-1, 65536, i64::from(i32::MAX), i64::from(i32::MIN)] {
            assert!(problem(RawRequest { port, ..raw(b"b@x.test") }).contains("Invalid port"));
        }
    }

    #[test]
    fn bad_hosts_rejected() {
        let hosts: &[&[u8]] = &[b"", b"  ", b"mail.example.test\r\nQUIT", b"a b", b"h\x00", b"mail.example.test\r\n", b"\tmail"];
        for host in hosts {
            assert!(problem(RawRequest { host: Some(host), ..raw(b"b@x.test") }).starts_with("Invalid host"));
        }
    }

    #[test]
    fn bad_helo_rejected() {
        let names: &[&[u8]] = &[b"a b", b"x\r\nMAIL FROM:<a@b>", b"bad!name", b"[unclosed"];
        for name in names {
            assert!(problem(RawRequest { helo: Some(name), ..raw(b"b@x.test") }).starts_with("Invalid helo"));
        }
        let request = Request::validate(RawRequest { helo: Some(b"[192.0.2.1]"), ..raw(b"b@x.test") }, DEFAULT_TIMEOUT).unwrap();
        assert_eq!(request.helo.as_deref(), Some("[192.0.2.1]"));
    }

    #[test]
    fn injection_attempt_rejected() {
        let message = problem(raw(b"a@b.example>\r\nRCPT TO:<x@y.example>"));
        assert!(message.starts_with("Invalid recipient"), "{message}");
        assert!(message.contains("CR"), "{message}");
    }

    #[test]
    fn nul_in_body_rejected() {
        // A C string cannot hold NUL, but the command-line tool reads raw bytes.
        let message = problem(RawRequest { body: Some(b"a\x00b"), ..raw(b"b@x.test") });
        assert!(message.contains("offset 1"), "{message}");
    }

    #[test]
    fn no_recipient_rejected() {
        assert!(problem(raw(b"")).contains("no recipient"));
    }
}
