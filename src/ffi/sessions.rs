//! Sessions for bulk sending: `smtp_open` connects, greets and authenticates once, each
//! `smtp_session_send` sends one message on it, and `smtp_close` ends it. Sessions live in a
//! table keyed by small positive integers, so BASIC can hold them in a variable.
//!
//! Every thread may use every session. Calls on one session are serialized by its own
//! lock, so two threads that share a session send one after the other. Threads with their
//! own sessions send in parallel.

use std::collections::HashMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use super::calls::{finish_delivery, finish_without_send, merged_options, MessageArguments};
use super::diagnostics;
use super::status::{status_of, SMTP_OK};
use crate::compose;
use crate::error::Error;
use crate::options::{self, Options};
use crate::request::{RawRequest, Request};
use crate::session::{self, Persistent};
use crate::transcript::Transcript;

struct Entry {
    options: Options,
    /// The request that opened the session: each message's request copies its server, TLS
    /// configuration and credentials.
    template: Request<'static>,
    session: Option<Persistent>,
}

static SESSIONS: LazyLock<Mutex<HashMap<c_int, Arc<Mutex<Entry>>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_ID: AtomicI32 = AtomicI32::new(1);

fn table() -> std::sync::MutexGuard<'static, HashMap<c_int, Arc<Mutex<Entry>>>> {
    SESSIONS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unknown(id: c_int) -> c_int {
    finish_without_send(Err(Error::InvalidArgument(format!(
        "Unknown session {id}: it was never opened or is already closed. Open a session first (smtp_open in C, open_session in Python, MVSMTP.OPEN in BASIC)."
    ))))
}

/// Opens a session with an options list; returns its id, or a negative status.
pub fn open(list: Option<&[u8]>) -> c_int {
    let options = options::parse_list(list.unwrap_or(b"")).and_then(|entries| {
        merged_options(&entries, |options| {
            for (name, value) in &entries {
                options.set(name, value)?;
            }
            Ok(())
        })
    });
    let options = match options {
        Ok(options) => options,
        Err(error) => return -finish_without_send(Err(error)),
    };
    let request = match Request::with_envelope(None, Vec::new(), b"", &options) {
        Ok(request) => request,
        Err(error) => return -finish_without_send(Err(error)),
    };

    let mut transcript = Transcript::new();
    match session::open(&request, &mut transcript) {
        Ok(persistent) => {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            table().insert(id, Arc::new(Mutex::new(Entry { options, template: request, session: Some(persistent) })));
            diagnostics::record_success(0, transcript.as_str());
            id
        }
        Err(error) => {
            let reply_code = error.reply().map_or(0, |reply| reply.code);
            diagnostics::record_error(&error, reply_code, transcript.as_str());
            -status_of(&error)
        }
    }
}

/// Sends one ready-made message on a session.
pub fn send(id: c_int, raw: RawRequest<'_>) -> c_int {
    with_entry(id, |entry| {
        let options = entry.options.clone();
        match Request::validate_for_session(raw, &options, &entry.template) {
            Ok(request) => deliver_on(entry, id, &request, &options),
            Err(error) => finish_without_send(Err(error)),
        }
    })
}

/// Runs `call` on a session's entry while holding its lock, so calls on one session run one
/// after the other. An unknown id gives `SMTP_INVALID_ARGUMENT`.
fn with_entry(id: c_int, call: impl FnOnce(&mut Entry) -> c_int) -> c_int {
    let Some(entry) = table().get(&id).cloned() else { return unknown(id) };
    let mut entry = entry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    call(&mut entry)
}

/// Sends a validated message on the session's connection and records the thread's result.
fn deliver_on(entry: &mut Entry, id: c_int, request: &Request<'_>, options: &Options) -> c_int {
    let Some(persistent) = entry.session.as_mut() else { return unknown(id) };
    let mut transcript = Transcript::new();
    let outcome = persistent.send(request, &mut transcript);
    finish_delivery(request, options, &outcome, transcript)
}

/// The options that `smtp_session_send_message` may set for one message. The others shape
/// the connection, which the session already has.
const MESSAGE_OPTIONS: &[&str] = &["cc", "bcc", "reply_to", "charset", "html_file", "body_type", "header"];

/// Composes a message and sends it on a session, with per-message options on top of the
/// session's own.
pub fn send_message(id: c_int, list: Option<&[u8]>, arguments: MessageArguments<'_>) -> c_int {
    with_entry(id, |entry| {
        let options = match message_options(&entry.options, list) {
            Ok(options) => options,
            Err(error) => return finish_without_send(Err(error)),
        };
        let (sender, recipients, message) = match compose::compose_message(&options, arguments) {
            Ok(parts) => parts,
            Err(error) => return finish_without_send(Err(error)),
        };
        let request = entry.template.with_message(Some(sender), recipients, &message);
        deliver_on(entry, id, &request, &options)
    })
}

/// Applies a message's options list to a copy of the session's options.
fn message_options(session_options: &Options, list: Option<&[u8]>) -> Result<Options, Error> {
    let mut options = session_options.clone();
    for (name, value) in options::parse_list(list.unwrap_or(b""))? {
        let name_text = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
        if options::OPTION_NAMES.contains(&name_text.as_str()) && !MESSAGE_OPTIONS.contains(&name_text.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "Option {name_text} cannot be set for one message of a session, because it belongs to the connection. Set it in the options that open the session. Per message: {}.",
                MESSAGE_OPTIONS.join(", ")
            )));
        }
        options.set(name, value)?;
    }
    Ok(options)
}

/// Closes a session with QUIT.
pub fn close(id: c_int) -> c_int {
    let Some(entry) = table().remove(&id) else { return unknown(id) };
    let mut entry = entry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut transcript = Transcript::new();
    if let Some(persistent) = entry.session.take() {
        persistent.close(&mut transcript);
    }
    diagnostics::record_success(0, transcript.as_str());
    SMTP_OK
}
