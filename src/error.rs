//! The error type of the engine. Each variant names the step that failed, carries the
//! server's reply where there was one, and renders as one line that ends with what to do
//! next.

use std::fmt;

use crate::address::Address;
use crate::reply::Reply;

/// A step of the SMTP conversation, named in errors and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Resolve,
    Connect,
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    TlsHandshake,
    Auth,
    MailFrom,
    RcptTo,
    Rset,
    Data,
    Bdat,
    Body,
    EndOfData,
    Quit,
}

impl Step {
    /// Describes what the client waits for at this step, for timeout and protocol messages.
    pub fn awaited(self) -> &'static str {
        match self {
            Step::Resolve => "the host name to resolve",
            Step::Connect => "the connection",
            Step::Greeting => "the server's greeting",
            Step::Ehlo => "the reply to EHLO",
            Step::Helo => "the reply to HELO",
            Step::StartTls => "the reply to STARTTLS",
            Step::TlsHandshake => "the TLS handshake",
            Step::Auth => "the reply to AUTH",
            Step::MailFrom => "the reply to MAIL FROM",
            Step::Rset => "the reply to RSET",
            Step::RcptTo => "the reply to RCPT TO",
            Step::Data => "the reply to DATA",
            Step::Bdat => "the reply to BDAT",
            Step::Body => "the server to accept the message body",
            Step::EndOfData => "the reply to the end of data",
            Step::Quit => "the reply to QUIT",
        }
    }

    /// Names the step by its command, such as `MAIL FROM` or `the greeting`.
    pub fn name(self) -> &'static str {
        match self {
            Step::Resolve => "name resolution",
            Step::Connect => "connect",
            Step::Greeting => "the greeting",
            Step::Ehlo => "EHLO",
            Step::Helo => "HELO",
            Step::StartTls => "STARTTLS",
            Step::TlsHandshake => "the TLS handshake",
            Step::Auth => "AUTH",
            Step::MailFrom => "MAIL FROM",
            Step::Rset => "RSET",
            Step::RcptTo => "RCPT TO",
            Step::Data => "DATA",
            Step::Bdat => "BDAT",
            Step::Body => "the message body",
            Step::EndOfData => "the end of data",
            Step::Quit => "QUIT",
        }
    }
}

/// A recipient that the server refused at RCPT TO, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub recipient: Address,
    pub reply: Reply,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}> ({})", self.recipient, self.reply)
    }
}

/// Formats refusals as a comma-separated list.
pub fn list_refusals(refusals: &[Refusal]) -> String {
    refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join(", ")
}

/// Every way a call can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),

    #[error("Resolving the host \"{host}\" failed: {detail}. Check the host name and the DNS settings of this machine.")]
    ResolveFailed { host: String, detail: String },

    #[error("Connecting to {host} port {port} failed: {detail}. Check the host and port, that the server is running, and that no firewall blocks the connection.")]
    ConnectFailed { host: String, port: u16, detail: String },

    #[error("Timed out after {seconds} s waiting for {}. Check that the server is reachable and answering, or raise the timeout option.{}", step.awaited(), if *step == Step::Greeting { " If the port expects TLS from the first byte, as 465 does, set tls=implicit." } else { "" })]
    Timeout { step: Step, seconds: u64 },

    #[error("The connection was lost at {}: {detail}. The server closed it or the network failed; try again, and check the server's log if it repeats.", step.name())]
    ConnectionLost { step: Step, detail: String },

    #[error("{} is not valid SMTP: {detail}. Check that the host and port belong to an SMTP server.", capitalize(step.awaited()))]
    Protocol { step: Step, detail: String },

    #[error("The server is closing the connection at {}: {reply}. The message was not sent; try again later.", step.name())]
    ServiceClosing { step: Step, reply: Reply },

    #[error("The server refused the session in its greeting: {reply}. {}", hint(reply, "Check that this client may connect to the server"))]
    GreetingRejected { reply: Reply },

    #[error("The server rejected {command}: {reply}. {}", hint(reply, "Set helo to the fully qualified host name of this machine"))]
    HelloRejected { command: String, reply: Reply },

    #[error("The TLS handshake with {server} failed: {detail}.")]
    TlsFailed { server: String, detail: String },

    #[error("TLS is required (tls={mode}) but {detail}. Nothing was sent. Check the port (465 for implicit TLS, 587 for STARTTLS); only for a trusted local relay, set tls=none, with insecure_plaintext_auth=1 when credentials are set.")]
    TlsUnavailable { mode: crate::tls::TlsMode, detail: String, reply: Option<Reply> },

    #[error("Authentication as \"{user}\" with {mechanism} failed: {reply}{}. {}", detail.as_deref().map(|text| format!(" ({text})")).unwrap_or_default(), hint(reply, "Check the user name and the password or token"))]
    AuthFailed { user: String, mechanism: crate::auth::Mechanism, reply: Reply, detail: Option<String> },

    #[error("Authentication is not possible: {detail}.")]
    AuthUnavailable { detail: String, reply: Option<Reply> },

    #[error("The message is {size} bytes, but the server accepts at most {limit} (its SIZE limit). Nothing was sent; make the attachments smaller or send them another way.")]
    MessageTooLarge { size: u64, limit: u64 },

    #[error("The server rejected the sender <{}> at MAIL FROM: {reply}. {}", sender.as_ref().map(Address::as_str).unwrap_or(""), hint(reply, "Check the from address; the server may require authentication or a sender in its own domain"))]
    SenderRejected { sender: Option<Address>, reply: Reply },

    #[error("The server rejected every recipient: {}. {}", list_refusals(.0), refusal_advice(.0))]
    RecipientsRejected(Vec<Refusal>),

    #[error("The server rejected DATA: {reply}. {}", hint(reply, "Check the server's log for the reason"))]
    DataRejected { reply: Reply },

    #[error("The server rejected the message body while it was being sent, and closed the connection: {reply}. {}", hint(reply, "Check the message size and content against the server's rules"))]
    BodyRejected { reply: Reply },

    #[error("The server rejected the message after the end of data: {reply}. {}", hint(reply, "Check the message headers and size against the server's rules"))]
    MessageRejected { reply: Reply },

    #[error("Internal error in libmvsmtp: {0}. Please report it together with the transcript.")]
    Internal(String),
}

impl Error {
    /// Returns the server reply that caused the error, if there was one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::GreetingRejected { reply }
            | Error::ServiceClosing { reply, .. }
            | Error::HelloRejected { reply, .. }
            | Error::SenderRejected { reply, .. }
            | Error::DataRejected { reply }
            | Error::MessageRejected { reply }
            | Error::BodyRejected { reply }
            | Error::AuthFailed { reply, .. } => Some(reply),
            Error::TlsUnavailable { reply, .. } | Error::AuthUnavailable { reply, .. } => reply.as_ref(),
            Error::RecipientsRejected(refusals) => refusals.first().map(|refusal| &refusal.reply),
            _ => None,
        }
    }
}

/// Advises on a message that every recipient refused: check the addresses that were
/// refused for good, and send again later to those refused for now.
pub fn refusal_advice(refusals: &[Refusal]) -> &'static str {
    let permanent = refusals.iter().filter(|refusal| refusal.reply.is_permanent()).count();
    if permanent == refusals.len() {
        "Check the addresses."
    } else if permanent == 0 {
        "These refusals are temporary (4xx); send the message again later."
    } else {
        "Check the addresses rejected with 5xx; those rejected with 4xx may take the message if it is sent again later."
    }
}

/// Advises on a message that some recipients took and others refused. Sending the same
/// message again would reach the first ones twice, so a retry goes only to those refused
/// for now.
pub fn partial_refusal_advice(refusals: &[Refusal]) -> &'static str {
    if refusals.iter().all(|refusal| refusal.reply.is_permanent()) {
        "Check those addresses."
    } else {
        "The other recipients have it, so send it again later only to those rejected with 4xx."
    }
}

/// Picks the advice for a rejection: temporary replies are retried later, and permanent ones
/// get the step's own advice.
fn hint(reply: &Reply, permanent_advice: &str) -> String {
    if reply.is_permanent() {
        format!("{permanent_advice}.")
    } else {
        "This is a temporary failure; try again later.".into()
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply { code, enhanced: None, lines: vec![text.to_string()] }
    }

    #[test]
    fn messages_are_one_line() {
        let error = Error::SenderRejected { sender: None, reply: reply(550, "5.7.1 no") };
        let text = error.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("<>"), "{text}");
        assert!(text.contains("550 5.7.1 no"), "{text}");
    }

    #[test]
    fn temporary_rejection_suggests_retry() {
        let text = Error::DataRejected { reply: reply(451, "4.3.0 busy") }.to_string();
        assert!(text.contains("try again later"), "{text}");
    }

    #[test]
    fn refusal_advice_fits_the_replies() {
        let refusal = |code| Refusal { recipient: crate::address::parse_recipients(b"r@example.test").unwrap().remove(0), reply: reply(code, "x") };
        assert_eq!(refusal_advice(&[refusal(550)]), "Check the addresses.");
        assert!(refusal_advice(&[refusal(450)]).contains("send the message again later"));
        assert!(refusal_advice(&[refusal(550), refusal(450)]).contains("rejected with 4xx"));
        assert_eq!(partial_refusal_advice(&[refusal(550)]), "Check those addresses.");
        assert!(partial_refusal_advice(&[refusal(450)]).contains("only to those rejected with 4xx"));
    }

    #[test]
    fn timeout_names_step() {
        let text = Error::Timeout { step: Step::MailFrom, seconds: 30 }.to_string();
        assert!(text.contains("MAIL FROM"), "{text}");
        assert!(text.contains("30 s"), "{text}");
    }

    #[test]
    fn protocol_error_capitalized() {
        let text = Error::Protocol { step: Step::Greeting, detail: "x".into() }.to_string();
        assert!(text.starts_with("The server's greeting is not valid SMTP"), "{text}");
    }
}
