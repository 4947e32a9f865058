//! Reaching a server: resolving its name, connecting, the TLS handshake of implicit TLS and
//! the greeting, with the fallback hosts tried in turn.

use std::borrow::Cow;
use std::net::SocketAddr;

use super::Session;
use crate::error::{Error, Step};
use crate::request::Request;
use crate::tls::TlsMode;
use crate::transcript::Transcript;
use crate::transport::{self, Connection, ResolveFailure};

/// Connects to the request's host and reads its greeting, after the TLS handshake when TLS
/// is implicit. When the host cannot be reached or its greeting rejects the session, each
/// fallback host is tried in turn. Returns the connection and the request aimed at the host
/// that greeted, or the last host's error.
pub(super) fn connect_greeted<'r, 'a>(request: &'r Request<'a>, transcript: &mut Transcript) -> Result<(Connection, Cow<'r, Request<'a>>), Error> {
    let mut outcome = greet(request, transcript).map(|connection| (connection, Cow::Borrowed(request)));
    for fallback in &request.fallbacks {
        let error = match outcome {
            Err(error) if is_host_failure(&error) => error,
            other => return other,
        };
        if let Error::ResolveFailed { host, detail } = &error {
            transcript.note(&format!("Resolving {host} failed: {detail}"));
        }
        transcript.note(&format!("This host cannot take the session now; trying the next host, {}", fallback.host));
        let server = request.for_fallback(fallback);
        outcome = greet(&server, transcript).map(|connection| (connection, Cow::Owned(server)));
    }
    if let (Err(error), false) = (&mut outcome, request.fallbacks.is_empty()) {
        transcript.note(&format!("All {} hosts failed; the error is the last host's", request.fallbacks.len() + 1));
        // The error names every host, so that a caller without the transcript learns that
        // all of them were tried.
        if let Error::ConnectFailed { host, .. } | Error::ResolveFailed { host, .. } = error {
            let hosts: Vec<&str> = std::iter::once(request.host.as_str()).chain(request.fallbacks.iter().map(|fallback| fallback.host.as_str())).collect();
            *host = format!("{} (each in turn; the detail is the last one's)", hosts.join(", "));
        }
    }
    outcome
}

/// Connects to the request's host and reads a 220 greeting. A rejecting greeting gets QUIT.
fn greet(request: &Request<'_>, transcript: &mut Transcript) -> Result<Connection, Error> {
    let addresses = resolve(request)?;
    let connection = connect(request, &addresses, transcript)?;

    let mut session = Session::new(connection, transcript, false);
    let handshake = if request.tls == TlsMode::Implicit { session.handshake(request) } else { Ok(()) };
    match handshake.and_then(|()| session.greeting()) {
        Ok(()) => Ok(session.connection),
        Err(error) => {
            session.close();
            Err(error)
        }
    }
}

/// Reports whether an error means that this host cannot take a session now, so the next
/// host may: it could not be resolved or reached, or it rejected or broke off the session
/// before or at its greeting. A failed TLS handshake is not such an error, because it
/// points to a setting or an attack rather than to a host that is down.
fn is_host_failure(error: &Error) -> bool {
    match error {
        Error::ResolveFailed { .. } | Error::ConnectFailed { .. } | Error::GreetingRejected { .. } => true,
        Error::Timeout { step, .. } | Error::ConnectionLost { step, .. } | Error::ServiceClosing { step, .. } | Error::Protocol { step, .. } => {
            matches!(step, Step::Resolve | Step::Connect | Step::Greeting)
        }
        _ => false,
    }
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
            // A reset during connect means a server accepted the connection and dropped it
            // at once, before its greeting could be read.
            if let Some(reset) = attempts.iter().find(|attempt| attempt.error.kind() == std::io::ErrorKind::ConnectionReset) {
                return Err(Error::ConnectionLost { step: Step::Greeting, detail: reset.error.to_string() });
            }
            let all_timed_out = attempts.iter().all(|attempt| attempt.error.kind() == std::io::ErrorKind::TimedOut);
            if all_timed_out && !attempts.is_empty() {
                return Err(Error::Timeout { step: Step::Connect, seconds: request.timeout.as_secs() });
            }
            let detail = match attempts.as_slice() {
                [only] => only.error.to_string(),
                _ => attempts.iter().map(|attempt| format!("{}: {}", attempt.address, attempt.error)).collect::<Vec<_>>().join(", "),
            };
            Err(Error::ConnectFailed { host: request.host.clone(), port: request.port, detail })
        }
    }
}
