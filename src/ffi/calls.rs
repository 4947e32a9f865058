//! The Rust side of each C entry point, after pointers have become byte slices. The command-
//! line tool calls these directly, so it takes the same path as a C caller.

use std::ffi::c_int;
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use super::diagnostics;
use super::status::{status_name, status_of, SMTP_OK, SMTP_PARTIAL};
use crate::audit::{self, AuditRecord};
use crate::compose;
use crate::error::{list_refusals, partial_refusal_advice, Error};
use crate::options::{self, Entry, Options};
use crate::profile;
use crate::request::{self, RawRequest, Request};
use crate::session::{self, Delivery};
use crate::transcript::Transcript;

/// Process-wide defaults set by `smtp_set_option`. Each call copies them when it starts,
/// so a change affects only calls that start afterwards, on every thread.
static DEFAULTS: LazyLock<Mutex<Options>> = LazyLock::new(|| Mutex::new(Options::default()));

/// Returns a copy of the process-wide defaults.
pub fn defaults() -> Options {
    // A panic while the lock was held cannot leave the options half-written, because each
    // change is applied to a copy first, so a poisoned lock still holds a usable value.
    DEFAULTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// Sets one process-wide default and records the outcome as the thread's last call.
pub fn set_option(name: Option<&[u8]>, value: Option<&[u8]>) -> c_int {
    let result = match (name, value) {
        (None, _) => Err(Error::InvalidArgument("Missing argument: name is NULL. Pass an option name such as \"timeout\".".into())),
        (_, None) => Err(Error::InvalidArgument("Missing argument: value is NULL. Pass \"\" to restore the default.".into())),
        #[cfg(feature = "fault-injection")]
        (Some(b"test_panic"), Some(_)) => panic!("forced panic for testing the guard at the C boundary"),
        (Some(name), Some(value)) => {
            let mut defaults = DEFAULTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut updated = defaults.clone();
            updated.set(name, value).map(|()| *defaults = updated)
        }
    };
    finish_without_send(result)
}

/// Sends with `smtp_send`'s arguments: host, port and helo override the defaults and any
/// profile named in them.
pub fn send(host: Option<&[u8]>, port: i64, helo: Option<&[u8]>, raw: RawRequest<'_>) -> c_int {
    let options = merged_options(&[], |options| {
        let Some(host) = host else {
            return Err(Error::InvalidArgument("Missing argument: host is NULL. Pass the mail server's host name or IP address.".into()));
        };
        request::validate_hosts(host)?;
        options.set(b"host", host)?;
        options.port = Some(request::validate_port(port)?);
        options.helo = match helo {
            None | Some(b"") => None,
            Some(name) => Some(request::validate_helo(name)?),
        };
        Ok(())
    });
    send_with_options(options, raw)
}

/// Sends with `smtp_send_with`'s options list on top of the defaults and any profile.
pub fn send_with(list: Option<&[u8]>, raw: RawRequest<'_>) -> c_int {
    match options::parse_list(list.unwrap_or(b"")) {
        Ok(entries) => send_with_entries(&entries, raw),
        Err(error) => finish_without_send(Err(error)),
    }
}

/// Sends with `(name, value)` options on top of the defaults and any profile.
pub fn send_with_entries(entries: &[Entry<'_>], raw: RawRequest<'_>) -> c_int {
    let options = merged_options(entries, |options| {
        for (name, value) in entries {
            options.set(name, value)?;
        }
        Ok(())
    });
    send_with_options(options, raw)
}

/// The arguments of `smtp_send_message`, as bytes. `None` stands for a NULL pointer.
#[derive(Debug, Clone, Copy)]
pub struct MessageArguments<'a> {
    pub from: Option<&'a [u8]>,
    pub to: Option<&'a [u8]>,
    pub subject: Option<&'a [u8]>,
    pub body: Option<&'a [u8]>,
    pub attachments: Option<&'a [u8]>,
}

/// Composes a MIME message from its parts and sends it, with options as for `send_with`.
pub fn send_message(list: Option<&[u8]>, arguments: MessageArguments<'_>) -> c_int {
    let entries = match options::parse_list(list.unwrap_or(b"")) {
        Ok(entries) => entries,
        Err(error) => return finish_without_send(Err(error)),
    };
    send_message_with_entries(&entries, arguments)
}

/// Composes and sends a message with `(name, value)` options.
pub fn send_message_with_entries(entries: &[Entry<'_>], arguments: MessageArguments<'_>) -> c_int {
    let options = merged_options(entries, |options| {
        for (name, value) in entries {
            options.set(name, value)?;
        }
        Ok(())
    });
    let options = match options {
        Ok(options) => options,
        Err(error) => return finish_without_send(Err(error)),
    };
    let (sender, recipients, message) = match compose::compose_message(&options, arguments) {
        Ok(parts) => parts,
        Err(error) => return finish_without_send(Err(error)),
    };
    match Request::with_envelope(Some(sender), recipients, &message, &options) {
        Ok(request) => deliver(&request, &options),
        Err(error) => finish_without_send(Err(error)),
    }
}

/// Builds the options of one call: the defaults, then the profile that the call or the
/// defaults name, then the call's own settings, which `apply` writes.
pub fn merged_options(call_entries: &[Entry<'_>], apply: impl FnOnce(&mut Options) -> Result<(), Error>) -> Result<Options, Error> {
    let mut options = defaults();

    let mut profile_name = options.profile.clone();
    for (name, value) in call_entries {
        if std::str::from_utf8(name).is_ok_and(|name| name.trim().eq_ignore_ascii_case("profile")) {
            let mut scratch = Options::default();
            scratch.set(b"profile", value)?;
            profile_name = scratch.profile;
        }
    }

    if let Some(name) = profile_name {
        let loaded = profile::load_profile(&name)?;
        for (option, value) in &loaded.entries {
            if option.eq_ignore_ascii_case("profile") {
                return Err(Error::InvalidArgument(format!(
                    "Profile \"{name}\" in {} sets profile, but a profile cannot include another one.",
                    loaded.path.display()
                )));
            }
            if !options::OPTION_NAMES.iter().any(|known| known.eq_ignore_ascii_case(option.trim())) {
                // Not echoed: a mistyped line such as "Secret=part" would show part of a password.
                return Err(Error::InvalidArgument(format!(
                    "Profile \"{name}\" in {} has a line with an unknown option name. Known options: {}.",
                    loaded.path.display(),
                    options::OPTION_NAMES.join(", ")
                )));
            }
            options.set(option.as_bytes(), value.as_bytes()).map_err(|error| match error {
                Error::InvalidArgument(message) => {
                    Error::InvalidArgument(format!("In profile \"{name}\" of {}: {message}", loaded.path.display()))
                }
                other => other,
            })?;
        }
    }

    apply(&mut options)?;
    Ok(options)
}

/// Validates the request and delivers it.
fn send_with_options(options: Result<Options, Error>, raw: RawRequest<'_>) -> c_int {
    let options = match options {
        Ok(options) => options,
        Err(error) => return finish_without_send(Err(error)),
    };
    match Request::validate(raw, &options) {
        Ok(request) => deliver(&request, &options),
        Err(error) => finish_without_send(Err(error)),
    }
}

/// Sends a validated request, writes the audit line, and records the thread's result.
fn deliver(request: &Request<'_>, options: &Options) -> c_int {
    let mut transcript = Transcript::new();
    let outcome = session::send(request, &mut transcript);
    finish_delivery(request, options, &outcome, transcript)
}

/// Writes the audit line of a send and records the thread's result; returns the status.
pub fn finish_delivery(request: &Request<'_>, options: &Options, outcome: &Result<Delivery, Error>, mut transcript: Transcript) -> c_int {
    let outcome = outcome.clone();
    let (status, reply_code, message) = summarize(&outcome);

    if let Some(path) = &options.log_file {
        let line = audit::format_line(&audit_record(request, &outcome, status));
        if let Err(error) = audit::append_line(path, &line) {
            transcript.note(&format!("Writing the audit line to {} failed: {error}", path.display()));
        }
    }

    diagnostics::record_message(&message, reply_code, transcript.as_str());
    status
}

/// Returns the status, the deciding reply code and the error line of an outcome.
fn summarize(outcome: &Result<Delivery, Error>) -> (c_int, u16, String) {
    match outcome {
        Ok(delivery) if delivery.refused.is_empty() => (SMTP_OK, delivery.reply.code, String::new()),
        Ok(delivery) => {
            let message = format!(
                "The message was sent to {} of {} recipients. The server rejected {}. {}",
                delivery.accepted.len(),
                delivery.accepted.len() + delivery.refused.len(),
                list_refusals(&delivery.refused),
                partial_refusal_advice(&delivery.refused)
            );
            (SMTP_PARTIAL, delivery.refused[0].reply.code, message)
        }
        Err(error) => (status_of(error), error.reply().map_or(0, |reply| reply.code), error.to_string()),
    }
}

fn audit_record(request: &Request<'_>, outcome: &Result<Delivery, Error>, status: c_int) -> AuditRecord {
    let recipients = request
        .recipients
        .iter()
        .map(|recipient| {
            let code = match outcome {
                Ok(delivery) => delivery
                    .accepted
                    .iter()
                    .find(|(accepted, _)| accepted == recipient)
                    .map(|(_, code)| *code)
                    .or_else(|| delivery.refused.iter().find(|refusal| &refusal.recipient == recipient).map(|refusal| refusal.reply.code)),
                Err(Error::RecipientsRejected(refusals)) => {
                    refusals.iter().find(|refusal| &refusal.recipient == recipient).map(|refusal| refusal.reply.code)
                }
                Err(_) => None,
            };
            (recipient.to_string(), code.unwrap_or(0))
        })
        .collect();
    let reply = match outcome {
        Ok(delivery) => Some(delivery.reply.one_line()),
        Err(error) => error.reply().map(|reply| reply.one_line()),
    };
    // After a fallback, the host that took the message is not the first one.
    let host = match outcome {
        Ok(delivery) => &delivery.host,
        Err(_) => &request.host,
    };
    AuditRecord {
        time: SystemTime::now(),
        server: if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{}", request.port) } else { format!("{host}:{}", request.port) },
        sender: request.sender.as_ref().map(ToString::to_string).unwrap_or_default(),
        recipients,
        status: status_name(status).to_str().unwrap_or("SMTP_UNKNOWN_STATUS"),
        reply,
        message_id: audit::message_id(request.body),
    }
}

/// Records the result of a call that sent nothing: a settings change or an invalid argument.
pub fn finish_without_send(result: Result<(), Error>) -> c_int {
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
