//! SMTP commands as values that render their exact wire bytes (RFC 5321, section 4.1).
//!
//! Caller data reaches a command only through validated types ([`Address`], a checked EHLO
//! name, base64 credentials), so no rendered command can contain a CR or LF that the library
//! did not put there.
//!
//! [`Command::line`] is the form for the transcript and messages: it hides credentials,
//! which only [`Command::render`] writes.

use crate::address::Address;
use crate::auth::Mechanism;
use crate::secret::Secret;

/// One command of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// MAIL FROM with the sender (`None` is the null sender `<>`), whether the body needs
    /// `BODY=8BITMIME`, the size announced with `SIZE=` (RFC 1870), and whether the
    /// addresses need `SMTPUTF8` (RFC 6531).
    MailFrom { sender: Option<Address>, eight_bit: bool, size: Option<u64>, smtputf8: bool },
    RcptTo(Address),
    Data,
    /// BDAT with the octet count of the chunk that follows it, and whether the chunk is the
    /// last of the message (RFC 3030). The chunk itself is written after the command line.
    Bdat { size: usize, last: bool },
    Rset,
    Quit,
    StartTls,
    /// AUTH with the mechanism and, for PLAIN and XOAUTH2, the base64 initial response.
    Auth { mechanism: Mechanism, initial_response: Option<Secret> },
    /// A base64 response to a 334 challenge during AUTH, or an empty one to acknowledge an error.
    AuthResponse(Secret),
}

/// Placeholder that the transcript shows in place of credentials.
const HIDDEN: &str = "<credentials hidden>";

impl Command {
    /// Appends the command line, CRLF included, to `out`.
    pub fn render(&self, out: &mut Vec<u8>) {
        match self {
            Command::Auth { mechanism, initial_response: Some(response) } => {
                out.extend_from_slice(format!("AUTH {mechanism} ").as_bytes());
                out.extend_from_slice(response.expose());
            }
            Command::AuthResponse(response) => out.extend_from_slice(response.expose()),
            _ => out.extend_from_slice(self.line().as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Returns the command line without CRLF, as it appears in the transcript, with
    /// credentials replaced by a placeholder.
    pub fn line(&self) -> String {
        match self {
            Command::Ehlo(name) => format!("EHLO {name}"),
            Command::Helo(name) => format!("HELO {name}"),
            Command::MailFrom { sender, eight_bit, size, smtputf8 } => {
                let mut line = format!("MAIL FROM:<{}>", sender.as_ref().map(Address::as_str).unwrap_or(""));
                if *eight_bit {
                    line.push_str(" BODY=8BITMIME");
                }
                if let Some(size) = size {
                    line.push_str(&format!(" SIZE={size}"));
                }
                if *smtputf8 {
                    line.push_str(" SMTPUTF8");
                }
                line
            }
            Command::RcptTo(address) => format!("RCPT TO:<{address}>"),
            Command::Data => "DATA".into(),
            Command::Bdat { size, last: false } => format!("BDAT {size}"),
            Command::Bdat { size, last: true } => format!("BDAT {size} LAST"),
            Command::Rset => "RSET".into(),
            Command::Quit => "QUIT".into(),
            Command::StartTls => "STARTTLS".into(),
            Command::Auth { mechanism, initial_response: None } => format!("AUTH {mechanism}"),
            Command::Auth { mechanism, initial_response: Some(_) } => format!("AUTH {mechanism} {HIDDEN}"),
            Command::AuthResponse(_) => HIDDEN.into(),
        }
    }

    /// Returns the verb that names this command in messages, such as `MAIL FROM`.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::MailFrom { .. } => "MAIL FROM",
            Command::RcptTo(_) => "RCPT TO",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } | Command::AuthResponse(_) => "AUTH",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{parse_recipients, parse_sender};

    fn bytes(command: Command) -> Vec<u8> {
        let mut out = Vec::new();
        command.render(&mut out);
        out
    }

    #[test]
    fn wire_bytes() {
        let sender = parse_sender(b"Billing <billing@example.test>").unwrap();
        let recipient = parse_recipients(b"a@example.test").unwrap().remove(0);
        assert_eq!(bytes(Command::Ehlo("client.example.test".into())), b"EHLO client.example.test\r\n");
        assert_eq!(bytes(Command::Helo("[192.0.2.1]".into())), b"HELO [192.0.2.1]\r\n");
        let mail = |sender, eight_bit, size, smtputf8| bytes(Command::MailFrom { sender, eight_bit, size, smtputf8 });
        assert_eq!(mail(sender.clone(), false, None, false), b"MAIL FROM:<billing@example.test>\r\n");
        assert_eq!(mail(sender.clone(), true, None, false), b"MAIL FROM:<billing@example.test> BODY=8BITMIME\r\n");
        assert_eq!(mail(sender, true, Some(1234), true), b"MAIL FROM:<billing@example.test> BODY=8BITMIME SIZE=1234 SMTPUTF8\r\n");
        assert_eq!(mail(None, false, None, false), b"MAIL FROM:<>\r\n");
        assert_eq!(bytes(Command::RcptTo(recipient)), b"RCPT TO:<a@example.test>\r\n");
        assert_eq!(bytes(Command::Data), b"DATA\r\n");
        assert_eq!(bytes(Command::Bdat { size: 0, last: true }), b"BDAT 0 LAST\r\n");
        assert_eq!(bytes(Command::Bdat { size: 65536, last: false }), b"BDAT 65536\r\n");
        assert_eq!(bytes(Command::Rset), b"RSET\r\n");
        assert_eq!(bytes(Command::Quit), b"QUIT\r\n");
        assert_eq!(bytes(Command::StartTls), b"STARTTLS\r\n");
        assert_eq!(bytes(Command::Auth { mechanism: Mechanism::Login, initial_response: None }), b"AUTH LOGIN\r\n");
    }

    #[test]
    fn credentials_rendered_but_hidden() {
        let auth = Command::Auth { mechanism: Mechanism::Plain, initial_response: Some(Secret::new(b"AHUAcA==")) };
        assert_eq!(bytes(auth.clone()), b"AUTH PLAIN AHUAcA==\r\n");
        assert_eq!(auth.line(), "AUTH PLAIN <credentials hidden>");
        let response = Command::AuthResponse(Secret::new(b"cGFzcw=="));
        assert_eq!(bytes(response.clone()), b"cGFzcw==\r\n");
        assert_eq!(response.line(), "<credentials hidden>");
        assert!(!format!("{auth:?} {response:?}").contains("AHUAcA"));
    }
}
