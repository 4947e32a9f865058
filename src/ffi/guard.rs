//! The panic guard around every `extern "C"` body. A panic that crossed into C would abort
//! the host process, so each one is caught here and becomes `SMTP_INTERNAL_ERROR`, with the
//! panic message kept as the calling thread's last error.

use std::any::Any;
use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::diagnostics;
use super::status::SMTP_INTERNAL_ERROR;
use crate::error::Error;

/// Runs a call that returns a status. A panic is recorded as the last error and returns
/// `SMTP_INTERNAL_ERROR`.
pub fn status_call(body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(status) => status,
        Err(payload) => {
            let error = Error::Internal(format!("a panic was caught: {}", panic_message(payload.as_ref())));
            // Recording must not panic again: it only formats a string and stores it.
            let _ = catch_unwind(AssertUnwindSafe(|| diagnostics::record_error(&error, 0, "")));
            SMTP_INTERNAL_ERROR
        }
    }
}

/// Runs a call that returns a value other than a status, returning `fallback` on a panic.
pub fn value_call<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "no message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_internal_error() {
        let status = status_call(|| panic!("deliberate test panic"));
        assert_eq!(status, SMTP_INTERNAL_ERROR);
        let text = diagnostics::last_error();
        assert!(text.contains("deliberate test panic"), "{text}");
    }

    #[test]
    fn status_passes_through() {
        assert_eq!(status_call(|| 7), 7);
    }

    #[test]
    fn value_call_falls_back() {
        assert_eq!(value_call(5, || -> i32 { panic!("deliberate test panic") }), 5);
    }
}
