//! Sessions for several messages: one connection, greeted, upgraded to TLS and
//! authenticated once, with RSET after a failed message and one reconnect when the server
//! closed an idle connection.

use super::connect::connect_greeted;
use super::{Delivery, PlannedEnvelope, Session};
use crate::capability::Capabilities;
use crate::command::Command;
use crate::error::{Error, Step};
use crate::request::Request;
use crate::transcript::Transcript;
use crate::transport::Connection;

/// A connection kept open for several messages, as a bulk run needs: greeted, upgraded to
/// TLS and authenticated once. After a failed message the session sends RSET and carries on.
pub struct Persistent {
    connection: Option<Connection>,
    capabilities: Capabilities,
    broken: bool,
    /// The host that took the session: the first one, or a fallback.
    host: String,
    /// The envelope of the message announced as the next one. It went out with the last end
    /// of data, and its replies have not been read yet.
    envelope_sent: Option<PlannedEnvelope>,
}

/// Opens a session for several messages. `request` gives the server, TLS and credentials;
/// its envelope and body are not used.
pub fn open(request: &Request<'_>, transcript: &mut Transcript) -> Result<Persistent, Error> {
    let (connection, server) = connect_greeted(request, transcript)?;
    let mut session = Session::new(connection, transcript, true);
    match session.establish(&server) {
        Ok(capabilities) => {
            Ok(Persistent {
                connection: Some(session.connection),
                capabilities,
                broken: session.broken,
                host: server.host.clone(),
                envelope_sent: None,
            })
        }
        Err(error) => {
            session.close();
            Err(error)
        }
    }
}

impl Persistent {
    /// Sends one message on the session. When the server has closed the connection since
    /// the last message (a 421, or the end of the stream before the reply to MAIL FROM), the
    /// session reconnects once and sends the message again, because nothing of it had been
    /// accepted.
    pub fn send(&mut self, request: &Request<'_>, transcript: &mut Transcript) -> Result<Delivery, Error> {
        self.send_before(request, None, transcript)
    }

    /// Sends one message like [`Persistent::send`], and when the caller already knows the
    /// message it will send next, announces that message's envelope with this one's end
    /// of data. On a server with PIPELINING but without CHUNKING, that saves the wait for
    /// the envelope, so each message costs one wait. The next call must send exactly
    /// `next`. Any other message closes the connection and is sent on a new one, because
    /// the server is then waiting for the announced message's data.
    pub fn send_before(&mut self, request: &Request<'_>, next: Option<&Request<'_>>, transcript: &mut Transcript) -> Result<Delivery, Error> {
        if let Some(announced) = self.envelope_sent.take() {
            if PlannedEnvelope::plan(request, &self.capabilities).ok().as_ref() != Some(&announced) {
                // Only closing the connection ends the announced transaction without
                // delivering anything.
                transcript.note("This message is not the one whose envelope went out with the last message; reconnecting");
                if let Some(mut connection) = self.connection.take() {
                    connection.shutdown();
                }
                self.broken = true;
            } else {
                self.envelope_sent = Some(announced);
            }
        }

        if self.broken || self.connection.is_none() {
            transcript.note("The connection was closed; reconnecting");
            *self = open(request, transcript)?;
            return self.attempt(request, next, transcript);
        }
        match self.attempt(request, next, transcript) {
            Err(Error::ServiceClosing { step: Step::MailFrom, .. } | Error::ConnectionLost { step: Step::MailFrom, .. }) => {
                transcript.note("The server closed the connection before MAIL FROM; reconnecting once");
                *self = open(request, transcript)?;
                self.attempt(request, next, transcript)
            }
            result => result,
        }
    }

    fn attempt(&mut self, request: &Request<'_>, next: Option<&Request<'_>>, transcript: &mut Transcript) -> Result<Delivery, Error> {
        let Some(connection) = self.connection.take() else {
            return Err(Error::Internal("the session has no connection".into()));
        };
        let mut session = Session::new(connection, transcript, true);
        session.envelope_sent = self.envelope_sent.take();
        session.next_envelope = next.and_then(|next| PlannedEnvelope::plan(next, &self.capabilities).ok());

        let result = session.deliver(request, &self.capabilities).map(|delivery| Delivery { host: self.host.clone(), ..delivery });
        if session.next_envelope_sent && !session.broken {
            // The end of data ended this message's transaction, whatever its reply, and
            // the next message's envelope is already with the server: no RSET.
            self.envelope_sent = session.next_envelope.take();
        } else if result.is_err() && !session.broken {
            // RFC 5321, 4.1.1.5: RSET drops the failed transaction so the next one starts clean.
            match session.command(&Command::Rset, Step::Rset) {
                Ok(reply) if reply.is_positive() => {}
                _ => session.broken = true,
            }
        }
        self.broken = session.broken;
        self.connection = Some(session.connection);
        result
    }

    /// Ends the session with QUIT and closes the connection. When an announced message was
    /// never sent, the server is waiting for its data, so the connection is closed without
    /// QUIT, which would pass as data.
    pub fn close(mut self, transcript: &mut Transcript) {
        if let Some(connection) = self.connection.take() {
            let mut session = Session::new(connection, transcript, false);
            session.broken = self.broken || self.envelope_sent.is_some();
            session.close();
        }
    }
}
