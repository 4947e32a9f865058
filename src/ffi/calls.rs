//! The Rust side of each C entry point, after pointers have become byte slices. The command-
//! line tool calls these directly, so it takes the same path as a C caller.

use std::ffi::c_int;
use std::sync::Mutex;

use super::diagnostics;
use super::status::{status_of, SMTP_OK, SMTP_PARTIAL};
use crate::error::{list_refusals, Error};
use crate::options::Settings;
use crate::request::{RawRequest, Request};
use crate::session;
use crate::transcript::Transcript;

/// Process-wide defaults set by `smtp_set_option`. Each call copies them when it starts,
/// so a change affects only calls that start afterwards, on every thread.
static DEFAULTS: Mutex<Settings> = Mutex::new(Settings { timeout: crate::request::DEFAULT_TIMEOUT });

/// Returns a copy of the process-wide defaults.
pub fn defaults() -> Settings {
    // A panic while the lock was held cannot leave a Settings half-written, so a poisoned
    // lock still holds a usable value.
    *DEFAULTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sets one process-wide default and records the outcome as the thread's last call.
pub fn set_option(name: Option<&[u8]>, value: Option<&[u8]>) -> c_int {
    let result = match (name, value) {
        (None, _) => Err(Error::InvalidArgument("Missing argument: name is NULL. Pass an option name such as \"timeout\".".into())),
        (_, None) => Err(Error::InvalidArgument("Missing argument: value is NULL. Pass \"\" to restore the default.".into())),
        (Some(name), Some(value)) => {
            let mut defaults = DEFAULTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut updated = *defaults;
            updated.set(name, value).map(|()| *defaults = updated)
        }
    };
    match result {
        Ok(()) => {
            diagnostics::record_success(0, "");
            SMTP_OK
        }
        Err(error) => {
            diagnostics::record_error(&error, 0, "");
            status_of(&error)
        }
    }
}

/// Validates and sends one message with the process-wide defaults, records the result as
/// the thread's last call, and returns the status.
pub fn send(raw: RawRequest<'_>) -> c_int {
    let settings = defaults();
    let mut transcript = Transcript::new();

    let outcome = Request::validate(raw, settings.timeout).and_then(|request| session::send(&request, &mut transcript));

    match outcome {
        Ok(delivery) if delivery.refused.is_empty() => {
            diagnostics::record_success(delivery.reply.code, transcript.as_str());
            SMTP_OK
        }
        Ok(delivery) => {
            let message = format!(
                "The message was sent to {} of {} recipients. The server rejected {}. Check those addresses.",
                delivery.accepted.len(),
                delivery.accepted.len() + delivery.refused.len(),
                list_refusals(&delivery.refused)
            );
            diagnostics::record_message(&message, delivery.refused[0].reply.code, transcript.as_str());
            SMTP_PARTIAL
        }
        Err(error) => {
            let reply_code = error.reply().map_or(0, |reply| reply.code);
            diagnostics::record_error(&error, reply_code, transcript.as_str());
            status_of(&error)
        }
    }
}
