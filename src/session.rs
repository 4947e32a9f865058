//! The SMTP client state machine (RFC 5321): greeting, EHLO or HELO, MAIL FROM, RCPT TO for
//! each recipient, DATA, the body, the end of data, and QUIT.
//!
//! Commands are written in groups: each group is rendered into one buffer and written once,
//! then one reply is read per command, in order. Today every group has one command. The
//! same path serves pipelining (RFC 2920), where MAIL, RCPT and DATA form one group.
//!
//! After a timeout, an I/O error, a malformed reply or a 421 reply, the session is broken:
//! it sends nothing more, not even QUIT.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::address::{is_domain_name, Address};
use crate::capability::Capabilities;
use crate::command::Command;
use crate::data::{has_8bit_text, DataEncoder, END_OF_DATA};
use crate::error::{Error, Refusal, Step};
use crate::reply::{Reply, ReplyParser};
use crate::request::Request;
use crate::transcript::Transcript;
use crate::transport::{self, Connection, IoFailure, ResolveFailure, MAX_LINE_LENGTH};

/// Size of the pieces in which the body is encoded and written.
const BODY_CHUNK: usize = 64 * 1024;

/// How long to wait for a reply that explains why the server closed the connection while
/// the body was being written.
const LATE_REPLY_WAIT: Duration = Duration::from_secs(2);

/// The result of a message that the server accepted for at least one recipient.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub accepted: Vec<Address>,
    /// Recipients refused at RCPT TO. When this is not empty, the result is partial.
    pub refused: Vec<Refusal>,
    /// The server's reply to the end of data.
    pub reply: Reply,
}

/// Sends one message, recording the conversation in `transcript`.
pub fn send(request: &Request<'_>, transcript: &mut Transcript) -> Result<Delivery, Error> {
    let addresses = resolve(request)?;
    let connection = connect(request, &addresses, transcript)?;

    let mut session = Session { connection, transcript, broken: false };
    let result = session.transaction(request);
    session.close();
    result
}

fn resolve(request: &Request<'_>) -> Result<Vec<SocketAddr>, Error> {
    transport::resolve(&request.host, request.port, request.timeout).map_err(|failure| match failure {
        ResolveFailure::TimedOut => Error::Timeout { step: Step::Resolve, seconds: request.timeout.as_secs() },
        ResolveFailure::Failed(detail) => Error::ResolveFailed { host: request.host.clone(), detail },
    })
}

fn connect(request: &Request<'_>, addresses: &[SocketAddr], transcript: &mut Transcript) -> Result<Connection, Error> {
    match Connection::connect(addresses, request.timeout) {
        Ok(connection) => {
            if let Some(peer) = connection.peer_address() {
                transcript.note(&format!("Connected to {peer}"));
            }
            Ok(connection)
        }
        Err(attempts) => {
            for attempt in &attempts {
                transcript.note(&format!("Connecting to {} failed: {}", attempt.address, attempt.error));
            }
            let all_timed_out = attempts.iter().all(|attempt| attempt.error.kind() == std::io::ErrorKind::TimedOut);
            if all_timed_out && !attempts.is_empty() {
                return Err(Error::Timeout { step: Step::Connect, seconds: request.timeout.as_secs() });
            }
            let detail = attempts
                .iter()
                .map(|attempt| format!("{}: {}", attempt.address, attempt.error))
                .collect::<Vec<_>>()
                .join(", ");
            Err(Error::ConnectFailed { host: request.host.clone(), port: request.port, detail })
        }
    }
}

struct Session<'t> {
    connection: Connection,
    transcript: &'t mut Transcript,
    broken: bool,
}

impl Session<'_> {
    fn transaction(&mut self, request: &Request<'_>) -> Result<Delivery, Error> {
        self.greeting()?;
        let capabilities = self.hello(request)?;

        let eight_bit = has_8bit_text(request.body) && capabilities.has("8BITMIME");
        let mail = Command::MailFrom { sender: request.sender.clone(), eight_bit };
        let reply = self.command(&mail, Step::MailFrom)?;
        if !reply.is_positive() {
            return Err(Error::SenderRejected { sender: request.sender.clone(), reply });
        }

        let (accepted, refused) = self.recipients(&request.recipients)?;
        if accepted.is_empty() {
            return Err(Error::RecipientsRejected(refused));
        }

        let reply = self.command(&Command::Data, Step::Data)?;
        if reply.code != 354 {
            return Err(Error::DataRejected { reply });
        }

        let reply = self.body(request.body)?;
        if !reply.is_positive() {
            return Err(Error::MessageRejected { reply });
        }
        Ok(Delivery { accepted, refused, reply })
    }

    fn greeting(&mut self) -> Result<(), Error> {
        let reply = self.read_reply(Step::Greeting)?;
        if reply.code != 220 {
            return Err(Error::GreetingRejected { reply });
        }
        Ok(())
    }

    /// Sends EHLO, and HELO when the server rejects EHLO with a permanent error.
    fn hello(&mut self, request: &Request<'_>) -> Result<Capabilities, Error> {
        let name = request.helo.clone().unwrap_or_else(|| default_helo_name(self.connection.local_address()));

        let ehlo = Command::Ehlo(name.clone());
        let reply = self.command(&ehlo, Step::Ehlo)?;
        if reply.is_positive() {
            return Ok(Capabilities::from_ehlo(&reply));
        }
        if !reply.is_permanent() {
            return Err(Error::HelloRejected { command: ehlo.line(), reply });
        }

        let helo = Command::Helo(name);
        let reply = self.command(&helo, Step::Helo)?;
        if reply.is_positive() {
            return Ok(Capabilities::default());
        }
        Err(Error::HelloRejected { command: helo.line(), reply })
    }

    /// Sends RCPT TO for each recipient and sorts them into accepted and refused.
    fn recipients(&mut self, recipients: &[Address]) -> Result<(Vec<Address>, Vec<Refusal>), Error> {
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for recipient in recipients {
            let reply = self.command(&Command::RcptTo(recipient.clone()), Step::RcptTo)?;
            if reply.is_positive() {
                accepted.push(recipient.clone());
            } else {
                refused.push(Refusal { recipient: recipient.clone(), reply });
            }
        }
        Ok((accepted, refused))
    }

    /// Streams the encoded body and the end-of-data line, then reads the final reply.
    fn body(&mut self, body: &[u8]) -> Result<Reply, Error> {
        let mut encoder = DataEncoder::new();
        let mut buffer = Vec::with_capacity(BODY_CHUNK + BODY_CHUNK / 8 + END_OF_DATA.len());
        let mut wire_bytes = 0;

        let mut chunks = body.chunks(BODY_CHUNK).peekable();
        while let Some(chunk) = chunks.next() {
            encoder.encode(chunk, &mut buffer);
            if chunks.peek().is_some() {
                wire_bytes += buffer.len();
                self.write_body_piece(&buffer)?;
                buffer.clear();
            }
        }
        encoder.finish(&mut buffer);
        wire_bytes += buffer.len();

        // The last piece of the body and the end-of-data line go out in one write.
        buffer.extend_from_slice(END_OF_DATA);
        self.transcript.body(wire_bytes);
        self.transcript.client(".");
        self.write_body_piece(&buffer)?;

        self.read_reply(Step::EndOfData)
    }

    fn write_body_piece(&mut self, piece: &[u8]) -> Result<(), Error> {
        match self.connection.write_all(piece) {
            Ok(()) => Ok(()),
            Err(failure) => {
                let error = self.io_error(failure, Step::Body);
                // A server that refuses the message part way, for example for its size,
                // often says why before it closes. Prefer that reply to a bare I/O error.
                match self.read_late_reply() {
                    Some(reply) => Err(Error::MessageRejected { reply }),
                    None => Err(error),
                }
            }
        }
    }

    fn read_late_reply(&mut self) -> Option<Reply> {
        let deadline = Instant::now() + LATE_REPLY_WAIT.min(self.connection.timeout());
        let mut parser = ReplyParser::new();
        loop {
            let line = self.connection.read_line(deadline).ok()?;
            self.transcript.server(&line);
            if let Some(reply) = parser.push_line(&line).ok()? {
                return (!reply.is_positive()).then_some(reply);
            }
        }
    }

    /// Sends one command and reads its reply.
    fn command(&mut self, command: &Command, step: Step) -> Result<Reply, Error> {
        self.write_group(std::slice::from_ref(command), step)?;
        self.read_reply(step)
    }

    /// Renders a group of commands into one buffer and writes it at once.
    fn write_group(&mut self, commands: &[Command], step: Step) -> Result<(), Error> {
        if self.connection.has_unread_input() {
            self.broken = true;
            return Err(Error::Protocol {
                step,
                detail: format!("the server sent lines before {} was sent", commands[0].verb()),
            });
        }
        let mut buffer = Vec::new();
        for command in commands {
            command.render(&mut buffer);
            self.transcript.client(&command.line());
        }
        self.connection.write_all(&buffer).map_err(|failure| self.io_error(failure, step))
    }

    /// Reads one complete reply, which must arrive within the timeout. A 421 reply ends the
    /// session at any step but QUIT.
    fn read_reply(&mut self, step: Step) -> Result<Reply, Error> {
        let deadline = Instant::now() + self.connection.timeout();
        let mut parser = ReplyParser::new();
        loop {
            let line = self.connection.read_line(deadline).map_err(|failure| self.io_error(failure, step))?;
            self.transcript.server(&line);
            match parser.push_line(&line) {
                Ok(Some(reply)) => {
                    if reply.is_closing() && step != Step::Quit {
                        self.broken = true;
                        return Err(Error::ServiceClosing { step, reply });
                    }
                    return Ok(reply);
                }
                Ok(None) => continue,
                Err(problem) => {
                    self.broken = true;
                    return Err(Error::Protocol { step, detail: problem.to_string() });
                }
            }
        }
    }

    fn io_error(&mut self, failure: IoFailure, step: Step) -> Error {
        self.broken = true;
        match failure {
            IoFailure::TimedOut => Error::Timeout { step, seconds: self.connection.timeout().as_secs() },
            IoFailure::Closed => Error::ConnectionLost { step, detail: "the server closed the connection".into() },
            IoFailure::LineTooLong => {
                Error::Protocol { step, detail: format!("a reply line is longer than {MAX_LINE_LENGTH} bytes") }
            }
            IoFailure::Io(error) => Error::ConnectionLost { step, detail: error.to_string() },
        }
    }

    /// Ends the session: QUIT when the connection is still in order, then close. A failed
    /// QUIT never changes the result, because the server has already replied to the message.
    fn close(&mut self) {
        if !self.broken {
            let quit = Command::Quit;
            if self.write_group(std::slice::from_ref(&quit), Step::Quit).is_ok() {
                let _ = self.read_reply(Step::Quit);
            }
        }
        self.connection.shutdown();
    }
}

/// Picks the EHLO name when the caller gave none: the machine's host name when it is a
/// valid domain name, else an address literal of the local end of the connection.
pub fn default_helo_name(local_address: Option<SocketAddr>) -> String {
    if let Some(name) = host_name() {
        if is_domain_name(name.as_bytes()) {
            return name;
        }
    }
    match local_address {
        Some(address) => address_literal(address),
        None => "[127.0.0.1]".into(),
    }
}

/// Formats an address literal for EHLO: `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
fn address_literal(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(address) => format!("[{}]", address.ip()),
        SocketAddr::V6(address) => match address.ip().to_ipv4_mapped() {
            Some(ipv4) => format!("[{ipv4}]"),
            None => format!("[IPv6:{}]", address.ip()),
        },
    }
}

#[cfg(unix)]
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the call.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let length = buffer.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&buffer[..length]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(not(unix))]
fn host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok().filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_literal_forms() {
        assert_eq!(address_literal("192.0.2.1:1000".parse().unwrap()), "[192.0.2.1]");
        assert_eq!(address_literal("[2001:db8::1]:1000".parse().unwrap()), "[IPv6:2001:db8::1]");
        assert_eq!(address_literal("[::ffff:192.0.2.1]:1000".parse().unwrap()), "[192.0.2.1]");
    }

    #[test]
    fn default_helo_is_valid() {
        let name = default_helo_name(Some("192.0.2.1:1000".parse().unwrap()));
        assert!(name == "[192.0.2.1]" || is_domain_name(name.as_bytes()), "{name}");
    }
}
