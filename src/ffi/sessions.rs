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

use super::calls::{finish_delivery, finish_without_send, merged_options};
use super::diagnostics;
use super::status::{status_of, SMTP_OK};
use crate::error::Error;
use crate::options::{self, Options};
use crate::request::{RawRequest, Request};
use crate::session::{self, Persistent};
use crate::transcript::Transcript;

struct Entry {
    options: Options,
    session: Option<Persistent>,
}

static SESSIONS: LazyLock<Mutex<HashMap<c_int, Arc<Mutex<Entry>>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_ID: AtomicI32 = AtomicI32::new(1);

fn table() -> std::sync::MutexGuard<'static, HashMap<c_int, Arc<Mutex<Entry>>>> {
    SESSIONS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unknown(id: c_int) -> c_int {
    finish_without_send(Err(Error::InvalidArgument(format!(
        "Unknown session {id}: it was never opened or is already closed. Open one with smtp_open."
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
            table().insert(id, Arc::new(Mutex::new(Entry { options, session: Some(persistent) })));
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
    let Some(entry) = table().get(&id).cloned() else { return unknown(id) };
    let mut entry = entry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let options = entry.options.clone();
    let request = match Request::validate(raw, &options) {
        Ok(request) => request,
        Err(error) => return finish_without_send(Err(error)),
    };
    let Some(persistent) = entry.session.as_mut() else { return unknown(id) };

    let mut transcript = Transcript::new();
    let outcome = persistent.send(&request, &mut transcript);
    finish_delivery(&request, &options, &outcome, transcript)
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
