//! An argument scanner with the conventions of POSIX `getopt` and GNU long options, for the
//! `sendmail` and `mail` modes, whose short flags must behave as those commands' flags do.
//!
//! Short flags may be grouped (`-ti`), and a short option's value may follow it in the same
//! argument (`-fuser@example.com`, `-oi`) or come as the next one (`-f user@example.com`).
//! Long options take `--name value` or `--name=value`. Options and operands may come in any
//! order, as with GNU getopt, and `--` ends the options.

use std::ffi::{OsStr, OsString};

use crate::os_bytes;

/// The options that one mode accepts.
pub struct Spec {
    /// Short flags without a value, such as `t` for `-t`.
    pub short_flags: &'static [u8],
    /// Short options that take a value, such as `f` for `-f ADDRESS`.
    pub short_with_value: &'static [u8],
    /// Long flags without a value, such as `json`.
    pub long_flags: &'static [&'static str],
    /// Long options that take a value, such as `host`.
    pub long_with_value: &'static [&'static str],
}

/// One scanned argument.
#[derive(Debug, PartialEq, Eq)]
pub enum Arg {
    /// A short option letter and its value, if it takes one.
    Short(u8, Option<OsString>),
    /// A long option name without the dashes, and its value, if it takes one.
    Long(String, Option<OsString>),
    /// An argument that is not an option, such as a recipient.
    Operand(OsString),
}

/// An error in the arguments.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    /// An option that the mode does not know, as written, such as `-q` or `--queue`.
    Unknown(String),
    /// An option that needs a value but was the last argument.
    MissingValue(String),
    /// A long flag given a value with `=`.
    UnexpectedValue(String),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Unknown(flag) => write!(f, "Unknown option {flag}."),
            ScanError::MissingValue(flag) => write!(f, "The option {flag} needs a value."),
            ScanError::UnexpectedValue(flag) => write!(f, "The option {flag} takes no value."),
        }
    }
}

/// Scans `args` (without the program name) into options and operands.
pub fn scan(args: &[OsString], spec: &Spec) -> Result<Vec<Arg>, ScanError> {
    let mut scanned = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        let bytes = os_bytes(arg);

        if bytes == b"--" {
            scanned.extend(args[index..].iter().cloned().map(Arg::Operand));
            break;
        }

        if let Some(long) = bytes.strip_prefix(b"--") {
            let (name, inline_value) = match long.iter().position(|&b| b == b'=') {
                Some(equals) => (&long[..equals], Some(os_string(&long[equals + 1..]))),
                None => (long, None),
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let flag = format!("--{name}");
            if spec.long_flags.contains(&name.as_str()) {
                if inline_value.is_some() {
                    return Err(ScanError::UnexpectedValue(flag));
                }
                scanned.push(Arg::Long(name, None));
            } else if spec.long_with_value.contains(&name.as_str()) {
                let value = match inline_value {
                    Some(value) => value,
                    None => {
                        let value = args.get(index).cloned().ok_or(ScanError::MissingValue(flag))?;
                        index += 1;
                        value
                    }
                };
                scanned.push(Arg::Long(name, Some(value)));
            } else {
                return Err(ScanError::Unknown(flag));
            }
            continue;
        }

        if bytes.len() < 2 || bytes[0] != b'-' {
            scanned.push(Arg::Operand(arg.clone()));
            continue;
        }

        // A group of short options: flags, possibly ended by one option that takes the rest
        // of the argument, or the next argument, as its value.
        let mut position = 1;
        while position < bytes.len() {
            let letter = bytes[position];
            position += 1;
            let flag = format!("-{}", String::from_utf8_lossy(&bytes[position - 1..position]));
            if spec.short_flags.contains(&letter) {
                scanned.push(Arg::Short(letter, None));
            } else if spec.short_with_value.contains(&letter) {
                let value = if position < bytes.len() {
                    os_string(&bytes[position..])
                } else {
                    let value = args.get(index).cloned().ok_or(ScanError::MissingValue(flag))?;
                    index += 1;
                    value
                };
                scanned.push(Arg::Short(letter, Some(value)));
                break;
            } else {
                // The whole argument names the flag better than its letter alone, as in -bs.
                let written = if position == 2 { String::from_utf8_lossy(&bytes).into_owned() } else { flag };
                return Err(ScanError::Unknown(written));
            }
        }
    }
    Ok(scanned)
}

#[cfg(unix)]
fn os_string(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_os_string()
}

#[cfg(not(unix))]
fn os_string(bytes: &[u8]) -> OsString {
    OsString::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec { short_flags: b"ti", short_with_value: b"fo", long_flags: &["json"], long_with_value: &["host"] };

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn short(letter: u8, value: Option<&str>) -> Arg {
        Arg::Short(letter, value.map(OsString::from))
    }

    #[test]
    fn grouped_flags_and_attached_value() {
        let scanned = scan(&args(&["-tifsender@example.test", "-oi"]), &SPEC).unwrap();
        assert_eq!(scanned, vec![short(b't', None), short(b'i', None), short(b'f', Some("sender@example.test")), short(b'o', Some("i"))]);
    }

    #[test]
    fn value_in_next_argument() {
        let scanned = scan(&args(&["-f", "", "a@example.test"]), &SPEC).unwrap();
        assert_eq!(scanned, vec![short(b'f', Some("")), Arg::Operand("a@example.test".into())]);
    }

    #[test]
    fn long_options_both_forms() {
        let scanned = scan(&args(&["--host=127.0.0.1", "--host", "::1", "--json"]), &SPEC).unwrap();
        assert_eq!(
            scanned,
            vec![
                Arg::Long("host".into(), Some("127.0.0.1".into())),
                Arg::Long("host".into(), Some("::1".into())),
                Arg::Long("json".into(), None)
            ]
        );
    }

    #[test]
    fn operands_anywhere_and_after_double_dash() {
        let scanned = scan(&args(&["a@example.test", "-t", "--", "-b@example.test", "-"]), &SPEC).unwrap();
        assert_eq!(
            scanned,
            vec![
                Arg::Operand("a@example.test".into()),
                short(b't', None),
                Arg::Operand("-b@example.test".into()),
                Arg::Operand("-".into())
            ]
        );
    }

    #[test]
    fn unknown_options_named() {
        assert_eq!(scan(&args(&["-q"]), &SPEC), Err(ScanError::Unknown("-q".into())));
        assert_eq!(scan(&args(&["-bs"]), &SPEC), Err(ScanError::Unknown("-bs".into())));
        assert_eq!(scan(&args(&["-tq"]), &SPEC), Err(ScanError::Unknown("-q".into())));
        assert_eq!(scan(&args(&["--queue"]), &SPEC), Err(ScanError::Unknown("--queue".into())));
    }

    #[test]
    fn missing_and_unexpected_values() {
        assert_eq!(scan(&args(&["-f"]), &SPEC), Err(ScanError::MissingValue("-f".into())));
        assert_eq!(scan(&args(&["--host"]), &SPEC), Err(ScanError::MissingValue("--host".into())));
        assert_eq!(scan(&args(&["--json=1"]), &SPEC), Err(ScanError::UnexpectedValue("--json".into())));
    }
}
