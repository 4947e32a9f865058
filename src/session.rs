//! The SMTP client state machine (RFC 5321): greeting, EHLO or HELO, STARTTLS and EHLO again
//! (RFC 3207), AUTH (RFC 4954), MAIL FROM, RCPT TO for each recipient, DATA, the body, the
//! end of data, and QUIT.
//!
//! Commands are written in groups: each group is rendered into one buffer and written once,
//! then one reply is read per command, in order. Without PIPELINING every group has one
//! command. With PIPELINING (RFC 2920), MAIL, every RCPT and DATA form one group, and the
//! end of data goes out with QUIT, or on a kept session with the next message's envelope
//! when the caller announced it. With CHUNKING as well (RFC 3030), BDAT replaces DATA, so
//! the envelope and a message of up to 128 KB go out together and cost one wait.
//!
//! `connect` reaches the server (and the fallback hosts), `chunking` sends with BDAT, and
//! `persistent` keeps a session open for several messages.
//!
//! After a timeout, an I/O error, a malformed reply or a 421 reply, the session is broken:
//! it sends nothing more, not even QUIT.

mod chunking;
mod connect;
mod persistent;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::address::{is_domain_name, Address};
use crate::auth::{self, Credentials, Mechanism};
use crate::capability::Capabilities;
use crate::command::Command;
use crate::data::{has_8bit_text, wire_size, DataEncoder, END_OF_DATA};
use crate::error::{Error, Refusal, Step};
use crate::options::AuthChoice;
use crate::reply::{Reply, ReplyParser};
use crate::request::Request;
use crate::secret::Secret;
use crate::tls::{self, TlsMode};
use crate::transcript::Transcript;
use crate::transport::{Connection, IoFailure, TlsFailure, MAX_LINE_LENGTH};

use connect::connect_greeted;
pub use persistent::{open, Persistent};

/// Size of the pieces in which the body is encoded and written after DATA.
const BODY_CHUNK: usize = 64 * 1024;

/// How long to wait for a reply that explains why the server closed the connection while
/// the body was being written.
const LATE_REPLY_WAIT: Duration = Duration::from_secs(2);

/// The result of a message that the server accepted for at least one recipient.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Recipients accepted at RCPT TO, with the reply code (250 or 251).
    pub accepted: Vec<(Address, u16)>,
    /// Recipients refused at RCPT TO. When this is not empty, the result is partial.
    pub refused: Vec<Refusal>,
    /// The server's reply to the end of data.
    pub reply: Reply,
    /// The host that took the message: the first one, or a fallback.
    pub host: String,
}

/// Sends one message, recording the conversation in `transcript`.
pub fn send(request: &Request<'_>, transcript: &mut Transcript) -> Result<Delivery, Error> {
    let (connection, server) = connect_greeted(request, transcript)?;

    let mut session = Session::new(connection, transcript, false);
    let result = session.establish(&server).and_then(|capabilities| session.deliver(&server, &capabilities));
    session.close();
    result
}

/// Recipients accepted with their reply codes, and those refused.
type RecipientReplies = (Vec<(Address, u16)>, Vec<Refusal>);

/// The recipients of a pipelined envelope, and the reply to its DATA.
type EnvelopeReplies = (Vec<(Address, u16)>, Vec<Refusal>, Reply);

struct Session<'t> {
    connection: Connection,
    transcript: &'t mut Transcript,
    broken: bool,
    /// The server advertised PIPELINING, so commands go out in groups (RFC 2920).
    pipelining: bool,
    /// QUIT went out with the end of data, so only its reply is left to read.
    quit_sent: bool,
    /// The session stays open for more messages, so no QUIT goes out with the end of data.
    keep_open: bool,
    /// The envelope of this message, already sent with the previous message's end of data.
    /// Only its replies are left to read.
    envelope_sent: Option<PlannedEnvelope>,
    /// The envelope of the next message, to send with this message's end of data.
    next_envelope: Option<PlannedEnvelope>,
    /// `next_envelope` went out, so the next message starts by reading its replies.
    next_envelope_sent: bool,
}

/// The MAIL FROM command and the recipients of a message, as the server will see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEnvelope {
    mail: Command,
    sender: Option<Address>,
    recipients: Vec<Address>,
}

impl PlannedEnvelope {
    /// Plans the envelope of `request` for a server with `capabilities`: the SIZE limit
    /// (RFC 1870), the addresses in the form the server takes, and the MAIL FROM parameters.
    fn plan(request: &Request<'_>, capabilities: &Capabilities) -> Result<PlannedEnvelope, Error> {
        // A message over the advertised limit is refused before anything is sent.
        let size = wire_size(request.body);
        let size_limit = capabilities.parameters("SIZE").and_then(|values| values.first()?.parse::<u64>().ok()).filter(|&limit| limit > 0);
        if let Some(limit) = size_limit.filter(|&limit| size > limit) {
            return Err(Error::MessageTooLarge { size, limit });
        }

        let (sender, recipients, smtputf8) = envelope(request, capabilities)?;
        let eight_bit = has_8bit_text(request.body) && capabilities.has("8BITMIME");
        let announced_size = capabilities.has("SIZE").then_some(size);
        let mail = Command::MailFrom { sender: sender.clone(), eight_bit, size: announced_size, smtputf8 };
        Ok(PlannedEnvelope { mail, sender, recipients })
    }

    /// Returns MAIL FROM, every RCPT TO and DATA, the group that opens a message.
    fn commands(&self) -> Vec<Command> {
        let mut group = Vec::with_capacity(self.recipients.len() + 2);
        group.push(self.mail.clone());
        group.extend(self.recipients.iter().cloned().map(Command::RcptTo));
        group.push(Command::Data);
        group
    }
}

impl<'t> Session<'t> {
    fn new(connection: Connection, transcript: &'t mut Transcript, keep_open: bool) -> Session<'t> {
        Session {
            connection,
            transcript,
            broken: false,
            pipelining: false,
            quit_sent: false,
            keep_open,
            envelope_sent: None,
            next_envelope: None,
            next_envelope_sent: false,
        }
    }
}

impl Session<'_> {
    /// Sets up a greeted session: EHLO, STARTTLS and AUTH. Returns the capabilities that
    /// apply to the messages.
    fn establish(&mut self, request: &Request<'_>) -> Result<Capabilities, Error> {
        let mut capabilities = self.hello(request)?;
        if matches!(request.tls, TlsMode::StartTls | TlsMode::Opportunistic) {
            capabilities = self.starttls(request, capabilities)?;
        }
        if let Some(credentials) = &request.credentials {
            self.authenticate(request, credentials, &capabilities)?;
        }
        Ok(capabilities)
    }

    /// Sends one message on an established session.
    fn deliver(&mut self, request: &Request<'_>, capabilities: &Capabilities) -> Result<Delivery, Error> {
        self.pipelining = request.pipelining && capabilities.has("PIPELINING");
        if let Some(PlannedEnvelope { sender, recipients, .. }) = self.envelope_sent.take() {
            // The caller checked that this envelope is the one this request plans, so it is
            // not planned again.
            self.transcript.note("MAIL FROM, RCPT TO and DATA went out with the previous message's end of data");
            let (accepted, refused, reply) = self.read_pipelined_envelope(sender, &recipients)?;
            return self.finish_data(accepted, refused, reply, request);
        }

        let PlannedEnvelope { mail, sender, recipients } = PlannedEnvelope::plan(request, capabilities)?;
        if self.pipelining && request.chunking && capabilities.has("CHUNKING") {
            return self.chunked_message(mail, sender, &recipients, request);
        }
        let (accepted, refused, reply) = if self.pipelining {
            self.pipelined_envelope(mail, sender, &recipients)?
        } else {
            let reply = self.command(&mail, Step::MailFrom)?;
            if !reply.is_positive() {
                return Err(Error::SenderRejected { sender, reply });
            }
            let (accepted, refused) = self.recipients(&recipients)?;
            if accepted.is_empty() {
                return Err(Error::RecipientsRejected(refused));
            }
            let reply = self.command(&Command::Data, Step::Data)?;
            (accepted, refused, reply)
        };
        self.finish_data(accepted, refused, reply, request)
    }

    /// Checks the reply to DATA, then sends the body and the end of data.
    fn finish_data(&mut self, accepted: Vec<(Address, u16)>, refused: Vec<Refusal>, reply: Reply, request: &Request<'_>) -> Result<Delivery, Error> {
        if reply.is_positive() {
            // A 2xx here would leave client and server disagreeing about whether the body follows.
            self.broken = true;
            return Err(Error::Protocol { step: Step::Data, detail: format!("the server answered DATA with {reply} instead of 354") });
        }
        if reply.code != 354 {
            return Err(Error::DataRejected { reply });
        }

        let reply = self.body(request.body)?;
        if !reply.is_positive() {
            return Err(Error::MessageRejected { reply });
        }
        Ok(Delivery { accepted, refused, reply, host: request.host.clone() })
    }

    fn greeting(&mut self) -> Result<(), Error> {
        let reply = self.read_reply(Step::Greeting)?;
        if reply.code != 220 {
            return Err(Error::GreetingRejected { reply });
        }
        Ok(())
    }

    fn helo_name(&self, request: &Request<'_>) -> String {
        request.helo.clone().unwrap_or_else(|| default_helo_name(self.connection.local_address()))
    }

    /// Sends EHLO, and HELO when the server rejects EHLO with a permanent error.
    fn hello(&mut self, request: &Request<'_>) -> Result<Capabilities, Error> {
        let name = self.helo_name(request);

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

    /// Upgrades the connection with STARTTLS, then greets again and returns the new
    /// capabilities, because what the server sent before TLS may have been forged.
    /// With tls=starttls a missing or refused upgrade ends the session; with
    /// tls=opportunistic the session goes on in plain text.
    fn starttls(&mut self, request: &Request<'_>, capabilities: Capabilities) -> Result<Capabilities, Error> {
        let required = request.tls == TlsMode::StartTls;

        if !capabilities.has("STARTTLS") {
            if required {
                self.broken = true;
                return Err(Error::TlsUnavailable { mode: request.tls, detail: "the server does not offer STARTTLS".into(), reply: None });
            }
            self.transcript.note("The server does not offer STARTTLS; going on without TLS (tls=opportunistic)");
            return Ok(capabilities);
        }

        let reply = self.command(&Command::StartTls, Step::StartTls)?;
        if reply.code != 220 {
            if required {
                self.broken = true;
                return Err(Error::TlsUnavailable {
                    mode: request.tls,
                    detail: format!("the server answered STARTTLS with {reply}"),
                    reply: Some(reply),
                });
            }
            self.transcript.note("The server refused STARTTLS; going on without TLS (tls=opportunistic)");
            return Ok(capabilities);
        }

        // Bytes that arrived after the 220 and before the handshake were not protected by
        // TLS, yet would be read as if they had been: a response-injection attempt.
        if self.connection.has_unread_input() {
            self.broken = true;
            return Err(Error::Protocol {
                step: Step::StartTls,
                detail: "the server sent data after its 220 reply to STARTTLS, before the TLS handshake".into(),
            });
        }

        self.handshake(request)?;
        let name = self.helo_name(request);
        let ehlo = Command::Ehlo(name);
        let reply = self.command(&ehlo, Step::Ehlo)?;
        if !reply.is_positive() {
            return Err(Error::HelloRejected { command: ehlo.line(), reply });
        }
        Ok(Capabilities::from_ehlo(&reply))
    }

    /// Runs the TLS handshake and verifies the server's certificate.
    fn handshake(&mut self, request: &Request<'_>) -> Result<(), Error> {
        let Some(setup) = &request.tls_setup else {
            return Err(Error::Internal("TLS was requested without a TLS configuration".into()));
        };
        let server = setup.server_name.to_str().into_owned();

        match self.connection.start_tls(setup.config.clone(), setup.server_name.clone()) {
            Ok(()) => {
                if let Some(description) = self.connection.tls_description() {
                    self.transcript.note(&format!("TLS established with {server}: {description}"));
                }
                Ok(())
            }
            Err(failure) => {
                self.broken = true;
                let detail = match failure {
                    TlsFailure::TimedOut => {
                        return Err(Error::Timeout { step: Step::TlsHandshake, seconds: request.timeout.as_secs() });
                    }
                    TlsFailure::Tls(error) => tls::describe(&error, &setup.server_name, request.tls == TlsMode::Implicit),
                    TlsFailure::Io(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                        "the server closed the connection during the handshake. Check that this port speaks TLS".into()
                    }
                    TlsFailure::Io(error) => format!("the connection failed during the handshake: {error}"),
                };
                self.transcript.note(&format!("TLS handshake failed: {detail}"));
                Err(Error::TlsFailed { server, detail })
            }
        }
    }

    /// Authenticates with the mechanism that `auth` names or, for `auto`, the best one that
    /// both sides support.
    fn authenticate(&mut self, request: &Request<'_>, credentials: &Credentials, capabilities: &Capabilities) -> Result<(), Error> {
        let encrypted = self.connection.is_tls();
        if !encrypted && !request.insecure_plaintext_auth {
            return Err(Error::AuthUnavailable {
                detail: "the connection is not encrypted, because the server offered no STARTTLS, and credentials are never sent in plain text. Use tls=starttls or tls=implicit, or set insecure_plaintext_auth=1 for a trusted local relay".into(),
                reply: None,
            });
        }

        let Some(offered) = capabilities.parameters("AUTH") else {
            let hint = if encrypted { "" } else { "; many servers offer it only after STARTTLS" };
            return Err(Error::AuthUnavailable { detail: format!("the server does not offer authentication (no AUTH in its EHLO reply){hint}"), reply: None });
        };
        let offered_list = offered.join(" ");
        let mechanism = match request.auth {
            AuthChoice::Auto => auth::choose(offered, credentials, encrypted).ok_or_else(|| Error::AuthUnavailable {
                detail: format!(
                    "no mechanism in common: the server offers {offered_list}, and this library supports PLAIN, LOGIN and CRAM-MD5 with a password, and XOAUTH2 with oauth_token"
                ),
                reply: None,
            })?,
            AuthChoice::Only(mechanism) => {
                if !offered.iter().any(|name| name.eq_ignore_ascii_case(mechanism.name())) {
                    return Err(Error::AuthUnavailable {
                        detail: format!("the server does not offer {mechanism}; it offers {offered_list}. Set auth=auto or one of those"),
                        reply: None,
                    });
                }
                mechanism
            }
        };
        self.sasl_exchange(mechanism, credentials)
    }

    /// Runs the SASL exchange of one mechanism until the server's final reply.
    fn sasl_exchange(&mut self, mechanism: Mechanism, credentials: &Credentials) -> Result<(), Error> {
        let empty = Secret::new(b"");
        let password = credentials.password.as_ref().unwrap_or(&empty);
        let token = credentials.oauth_token.as_ref().unwrap_or(&empty);

        let initial_response = match mechanism {
            Mechanism::Plain => Some(auth::plain_response(&credentials.user, password)),
            Mechanism::XOAuth2 => Some(auth::xoauth2_response(&credentials.user, token)),
            Mechanism::Login | Mechanism::CramMd5 => None,
        };
        let mut reply = self.command(&Command::Auth { mechanism, initial_response }, Step::Auth)?;

        // The JSON error that an XOAUTH2 server sends in a 334 challenge before it fails.
        let mut server_error = None;
        let mut challenges = 0;
        while reply.code == 334 {
            challenges += 1;
            let challenge = reply.lines.first().map(String::as_str).unwrap_or("");
            let response = match (mechanism, challenges) {
                (Mechanism::Login, 1) => Some(auth::login_response(credentials.user.as_bytes())),
                (Mechanism::Login, 2) => Some(auth::login_response(password.expose())),
                (Mechanism::CramMd5, 1) => auth::cram_md5_response(challenge, &credentials.user, password),
                (Mechanism::XOAuth2, 1) => {
                    server_error = auth::decode_challenge(challenge);
                    Some(Secret::new(b""))
                }
                _ => None,
            };
            // An unexpected or undecodable challenge cancels the exchange with "*".
            let response = response.unwrap_or_else(|| Secret::new(b"*"));
            reply = self.command(&Command::AuthResponse(response), Step::Auth)?;
        }

        if reply.code == 235 || reply.is_positive() {
            return Ok(());
        }
        // 534 (mechanism too weak) and 538 (encryption required) mean that this way of
        // authenticating cannot work here, whatever the password.
        if reply.code == 534 || reply.code == 538 {
            return Err(Error::AuthUnavailable { detail: format!("the server refused {mechanism}: {reply}"), reply: Some(reply) });
        }
        Err(Error::AuthFailed { user: credentials.user.clone(), mechanism, reply, detail: server_error })
    }

    /// Sends MAIL FROM, every RCPT TO and DATA as one group (RFC 2920), then reads their
    /// replies in order, so the whole envelope costs one round trip. Returns the recipients
    /// and the reply to DATA when the message may follow.
    fn pipelined_envelope(&mut self, mail: Command, sender: Option<Address>, recipients: &[Address]) -> Result<EnvelopeReplies, Error> {
        let planned = PlannedEnvelope { mail, sender, recipients: recipients.to_vec() };
        self.write_group(&planned.commands(), Step::MailFrom)?;
        self.read_pipelined_envelope(planned.sender, recipients)
    }

    /// Reads the replies to a pipelined MAIL FROM, RCPT TO and DATA. When DATA was accepted
    /// although MAIL or every RCPT failed, ends the data phase with an empty message.
    fn read_pipelined_envelope(&mut self, sender: Option<Address>, recipients: &[Address]) -> Result<EnvelopeReplies, Error> {
        let (mail_reply, (accepted, refused)) = self.read_envelope_replies(recipients)?;
        let data_reply = self.read_reply(Step::Data)?;

        // A server may accept DATA although MAIL or every RCPT failed. It then waits for a
        // message, so an empty one ends the data phase before the failure is reported.
        let failure = if !mail_reply.is_positive() {
            Some(Error::SenderRejected { sender, reply: mail_reply })
        } else if accepted.is_empty() {
            Some(Error::RecipientsRejected(refused.clone()))
        } else {
            None
        };
        if let Some(error) = failure {
            if data_reply.code == 354 {
                self.end_empty_data()?;
            }
            return Err(error);
        }
        Ok((accepted, refused, data_reply))
    }

    /// Reads the replies to a pipelined MAIL FROM and to each RCPT TO, in order, and sorts
    /// the recipients into accepted and refused.
    fn read_envelope_replies(&mut self, recipients: &[Address]) -> Result<(Reply, RecipientReplies), Error> {
        let mail_reply = self.read_reply(Step::MailFrom)?;
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for recipient in recipients {
            let reply = self.read_reply(Step::RcptTo)?;
            if reply.is_positive() {
                accepted.push((recipient.clone(), reply.code));
            } else {
                refused.push(Refusal { recipient: recipient.clone(), reply });
            }
        }
        Ok((mail_reply, (accepted, refused)))
    }

    /// Ends a data phase that must carry no message with a lone ".", and reads the reply.
    fn end_empty_data(&mut self) -> Result<(), Error> {
        self.transcript.client(".");
        self.connection.write_all(END_OF_DATA).map_err(|failure| self.io_error(failure, Step::EndOfData))?;
        self.read_reply(Step::EndOfData).map(|_| ())
    }

    /// Sends RCPT TO for each recipient and sorts them into accepted and refused.
    fn recipients(&mut self, recipients: &[Address]) -> Result<RecipientReplies, Error> {
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for recipient in recipients {
            let reply = self.command(&Command::RcptTo(recipient.clone()), Step::RcptTo)?;
            if reply.is_positive() {
                accepted.push((recipient.clone(), reply.code));
            } else {
                refused.push(Refusal { recipient: recipient.clone(), reply });
            }
        }
        Ok((accepted, refused))
    }

    /// Streams the encoded body and the end-of-data line, then reads the final reply.
    fn body(&mut self, body: &[u8]) -> Result<Reply, Error> {
        // Lines after the 354 would later pass as the reply to the message.
        if self.connection.has_unread_input() {
            self.broken = true;
            return Err(Error::Protocol { step: Step::Data, detail: "the server sent lines after its 354 reply, before the message".into() });
        }
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

        // The last piece of the body and the end-of-data line go out in one write, and with
        // PIPELINING the QUIT that follows too (RFC 2920 allows QUIT at the end of a group).
        buffer.extend_from_slice(END_OF_DATA);
        self.transcript.body(wire_bytes);
        self.transcript.client(".");
        if self.pipelining && !self.keep_open {
            Command::Quit.render(&mut buffer);
            self.transcript.client(&Command::Quit.line());
            self.quit_sent = true;
        }
        // RFC 2920 lets the message content open a group, so the next message's envelope
        // may follow the end of data, and its replies arrive with this message's.
        if let Some(next) = self.next_envelope.as_ref().filter(|_| self.pipelining && self.keep_open) {
            for command in next.commands() {
                command.render(&mut buffer);
                self.transcript.client(&command.line());
            }
            self.next_envelope_sent = true;
        }
        self.write_body_piece(&buffer)?;

        self.read_reply(Step::EndOfData)
    }

    fn write_body_piece(&mut self, piece: &[u8]) -> Result<(), Error> {
        match self.connection.write_all(piece) {
            Ok(()) => Ok(()),
            Err(failure) => {
                let timed_out = matches!(failure, IoFailure::TimedOut);
                let error = self.io_error(failure, Step::Body);
                self.transcript.note("Sending the message body failed part way");
                if timed_out {
                    // A server that stopped reading will not explain itself either.
                    return Err(error);
                }
                // A server that refuses the message part way, for example for its size,
                // often sends the reason before it closes. Prefer that reply to a bare I/O error.
                match self.read_late_reply() {
                    Some(reply) => Err(Error::BodyRejected { reply }),
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
        if self.quit_sent {
            if !self.broken {
                let _ = self.read_reply(Step::Quit);
            }
        } else if !self.broken {
            let quit = Command::Quit;
            if self.write_group(std::slice::from_ref(&quit), Step::Quit).is_ok() {
                let _ = self.read_reply(Step::Quit);
            }
        }
        self.connection.shutdown();
    }
}

/// Returns the envelope addresses in the form this server takes, and whether MAIL FROM
/// needs `SMTPUTF8`. A server that offers SMTPUTF8 (RFC 6531) gets UTF-8 addresses as they
/// are. Any other server gets international domain names in their ASCII (punycode) form,
/// and an address whose part before the '@' is not ASCII cannot be sent to it at all.
fn envelope(request: &Request<'_>, capabilities: &Capabilities) -> Result<(Option<Address>, Vec<Address>, bool), Error> {
    let all_ascii = request.sender.iter().chain(&request.recipients).all(Address::is_ascii);
    if all_ascii {
        return Ok((request.sender.clone(), request.recipients.clone(), false));
    }
    if capabilities.has("SMTPUTF8") {
        return Ok((request.sender.clone(), request.recipients.clone(), true));
    }
    let ascii = |address: &Address| address.to_ascii().map_err(|error| Error::InvalidArgument(format!("Invalid address {error}.")));
    let sender = request.sender.as_ref().map(ascii).transpose()?;
    let recipients = request.recipients.iter().map(ascii).collect::<Result<Vec<_>, _>>()?;
    Ok((sender, recipients, false))
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
