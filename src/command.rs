//! SMTP commands as values that render their exact wire bytes (RFC 5321, section 4.1).
//!
//! Caller data reaches a command only through validated types ([`Address`], a checked EHLO
//! name), so no rendered command can contain a CR or LF that the library did not put there.

use crate::address::Address;

/// One command of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// MAIL FROM with the sender (`None` is the null sender `<>`) and whether the body
    /// needs `BODY=8BITMIME`.
    MailFrom { sender: Option<Address>, eight_bit: bool },
    RcptTo(Address),
    Data,
    Rset,
    Quit,
}

impl Command {
    /// Appends the command line, CRLF included, to `out`.
    pub fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line().as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Returns the command line without CRLF, as it appears in the transcript.
    pub fn line(&self) -> String {
        match self {
            Command::Ehlo(name) => format!("EHLO {name}"),
            Command::Helo(name) => format!("HELO {name}"),
            Command::MailFrom { sender, eight_bit } => {
                let path = sender.as_ref().map(Address::as_str).unwrap_or("");
                let body = if *eight_bit { " BODY=8BITMIME" } else { "" };
                format!("MAIL FROM:<{path}>{body}")
            }
            Command::RcptTo(address) => format!("RCPT TO:<{address}>"),
            Command::Data => "DATA".into(),
            Command::Rset => "RSET".into(),
            Command::Quit => "QUIT".into(),
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
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
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
        assert_eq!(bytes(Command::MailFrom { sender: sender.clone(), eight_bit: false }), b"MAIL FROM:<billing@example.test>\r\n");
        assert_eq!(bytes(Command::MailFrom { sender, eight_bit: true }), b"MAIL FROM:<billing@example.test> BODY=8BITMIME\r\n");
        assert_eq!(bytes(Command::MailFrom { sender: None, eight_bit: false }), b"MAIL FROM:<>\r\n");
        assert_eq!(bytes(Command::RcptTo(recipient)), b"RCPT TO:<a@example.test>\r\n");
        assert_eq!(bytes(Command::Data), b"DATA\r\n");
        assert_eq!(bytes(Command::Rset), b"RSET\r\n");
        assert_eq!(bytes(Command::Quit), b"QUIT\r\n");
    }
}
