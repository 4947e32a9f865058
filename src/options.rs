//! Settings that shape a call, set by name and value so that every caller (C, BASIC,
//! Python, the command line) uses the same names.

use std::time::Duration;

use crate::address::{escape_for_message, trim_spaces};
use crate::error::Error;
use crate::request::DEFAULT_TIMEOUT;

/// The longest timeout accepted, in seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// The option names that [`Settings::set`] accepts.
pub const OPTION_NAMES: &[&str] = &["timeout"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bound on connecting, on resolving the host name, and on each wait for a reply or a write.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { timeout: DEFAULT_TIMEOUT }
    }
}

impl Settings {
    /// Sets one option from text. An empty value restores the option's default.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        match trim_spaces(name) {
            b"timeout" => {
                self.timeout = parse_timeout(value)?;
                Ok(())
            }
            _ => Err(Error::InvalidArgument(format!(
                "Unknown option \"{}\". Known options: {}.",
                escape_for_message(name),
                OPTION_NAMES.join(", ")
            ))),
        }
    }
}

fn parse_timeout(value: &[u8]) -> Result<Duration, Error> {
    let text = trim_spaces(value);
    if text.is_empty() {
        return Ok(DEFAULT_TIMEOUT);
    }
    let seconds = std::str::from_utf8(text).ok().and_then(|digits| digits.parse::<u64>().ok());
    match seconds {
        Some(seconds @ 1..=MAX_TIMEOUT_SECONDS) => Ok(Duration::from_secs(seconds)),
        _ => Err(Error::InvalidArgument(format!(
            "Invalid value \"{}\" for option timeout: use whole seconds from 1 to {MAX_TIMEOUT_SECONDS}.",
            escape_for_message(value)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_set_and_reset() {
        let mut settings = Settings::default();
        settings.set(b"timeout", b"5").unwrap();
        assert_eq!(settings.timeout, Duration::from_secs(5));
        settings.set(b"timeout", b"").unwrap();
        assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_timeouts_rejected() {
        let values: &[&[u8]] = &[b"0", b"-1", b"abc", b"1.5", b"3601", b"99999999999999999999", b"5\r\n", b"5\x00"];
        let mut settings = Settings::default();
        for value in values {
            let error = settings.set(b"timeout", value);
            assert!(matches!(error, Err(Error::InvalidArgument(_))), "accepted {:?}", value);
        }
        assert!(settings.set(b"timeout", b" 5 ").is_ok());
    }

    #[test]
    fn unknown_option_named() {
        let error = Settings::default().set(b"nonsense", b"1").unwrap_err();
        assert!(error.to_string().contains("\"nonsense\""), "{error}");
    }
}
