//! Options that shape a call, set by name and value so that every caller (C, BASIC,
//! Python, the command line, profiles in a configuration file) uses the same names.
//!
//! An options list is `name=value` entries, one per line. Lines may end in LF, CRLF, CR or a
//! MultiValue attribute mark (byte 0xFE, or U+F8FE in UTF-8), so BASIC can build the list as
//! a dynamic array. The first `=` ends the name, and the value may contain any other
//! character, so passwords with `;`, `=` or spaces work. An empty value restores the
//! option's default.

use std::path::PathBuf;
use std::time::Duration;

use crate::address::{escape_for_message, trim_spaces};
use crate::auth::Mechanism;
use crate::compose::Charset;
use crate::data::{ATTRIBUTE_MARK, ATTRIBUTE_MARK_UTF8};
use crate::error::Error;
use crate::request::DEFAULT_TIMEOUT;
use crate::secret::Secret;
use crate::tls::TlsMode;

/// Maximum timeout, in seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// Every option name, in the order the documentation lists them.
pub const OPTION_NAMES: &[&str] = &[
    "host",
    "port",
    "helo",
    "timeout",
    "tls",
    "tls_ca_file",
    "tls_server_name",
    "tls_insecure",
    "user",
    "password",
    "oauth_token",
    "auth",
    "insecure_plaintext_auth",
    "pipelining",
    "chunking",
    "log_file",
    "profile",
    "cc",
    "bcc",
    "reply_to",
    "charset",
    "html_file",
    "body_type",
    "header",
];

/// The advice for an invalid yes/no value.
const FLAG_VALUES: &str = "use 1 or 0 (or yes/no, true/false, on/off)";

/// Options whose values are secrets: never echoed in a message.
const SECRET_OPTIONS: &[&str] = &["password", "oauth_token"];

/// The mechanism choice of the `auth` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// The best mechanism that both sides support.
    #[default]
    Auto,
    Only(Mechanism),
}

/// Content type of the body argument of a composed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    #[default]
    Text,
    Html,
}

/// The settings of one call. `None` means "not set": the default applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub helo: Option<String>,
    /// Bound on resolving, connecting, the TLS handshake, each write and each reply.
    pub timeout: Duration,
    pub tls: Option<TlsMode>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    /// Turns certificate verification off. The connection is still encrypted.
    pub tls_insecure: bool,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub oauth_token: Option<Secret>,
    pub auth: AuthChoice,
    /// Allows credentials over a connection without TLS.
    pub insecure_plaintext_auth: bool,
    /// Groups commands when the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Sends the message with BDAT when the server offers CHUNKING (RFC 3030) and PIPELINING.
    pub chunking: bool,
    pub log_file: Option<PathBuf>,
    pub profile: Option<String>,
    /// Composed messages: Cc, Bcc and Reply-To lists, as the caller passed them (value marks
    /// may separate the addresses, so these stay bytes).
    pub cc: Option<Vec<u8>>,
    pub bcc: Option<Vec<u8>>,
    pub reply_to: Option<Vec<u8>>,
    /// The character set of caller text in composed messages.
    pub charset: Charset,
    pub html_file: Option<PathBuf>,
    pub body_type: BodyType,
    /// Extra header lines `Name: value`, in the caller's character set.
    pub headers: Vec<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: None,
            port: None,
            helo: None,
            timeout: DEFAULT_TIMEOUT,
            tls: None,
            tls_ca_file: None,
            tls_server_name: None,
            tls_insecure: false,
            user: None,
            password: None,
            oauth_token: None,
            auth: AuthChoice::Auto,
            insecure_plaintext_auth: false,
            pipelining: true,
            chunking: true,
            log_file: None,
            profile: None,
            cc: None,
            bcc: None,
            reply_to: None,
            charset: Charset::default(),
            html_file: None,
            body_type: BodyType::Text,
            headers: Vec::new(),
        }
    }
}

impl Options {
    /// Sets one option from text. An empty value restores the option's default.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        let name_text = std::str::from_utf8(trim_spaces(name)).unwrap_or("");
        let Some(&name) = OPTION_NAMES.iter().find(|known| known.eq_ignore_ascii_case(name_text)) else {
            return Err(Error::InvalidArgument(format!(
                "Unknown option \"{}\". Known options: {}.",
                escape_for_message(name),
                OPTION_NAMES.join(", ")
            )));
        };

        let secret = SECRET_OPTIONS.contains(&name);
        let invalid = |problem: &str| {
            if secret {
                Error::InvalidArgument(format!("Invalid value for option {name}: {problem}."))
            } else {
                Error::InvalidArgument(format!("Invalid value \"{}\" for option {name}: {problem}.", escape_for_message(value)))
            }
        };

        if let Some(&bad) = value.iter().find(|&&b| b < 0x20 || b == 0x7F) {
            return Err(invalid(&format!("it contains {}; remove control characters", crate::address::describe_byte(bad))));
        }
        // Secrets keep their spaces: a password may begin or end with one.
        let value = if secret { value } else { trim_spaces(value) };
        let text = || std::str::from_utf8(value).map_err(|_| invalid("it is not valid UTF-8"));
        let empty = value.is_empty();
        let optional_text = || if empty { Ok(None) } else { text().map(|text| Some(text.to_owned())) };

        match name {
            "host" => self.host = optional_text()?,
            "port" => {
                self.port = if empty {
                    None
                } else {
                    match text()?.parse::<u16>() {
                        Ok(port) if port > 0 => Some(port),
                        _ => return Err(invalid("use a port number from 1 to 65535")),
                    }
                }
            }
            "helo" => self.helo = optional_text()?,
            "timeout" => {
                self.timeout = if empty {
                    DEFAULT_TIMEOUT
                } else {
                    match text()?.parse::<u64>() {
                        Ok(seconds @ 1..=MAX_TIMEOUT_SECONDS) => Duration::from_secs(seconds),
                        _ => return Err(invalid(&format!("use whole seconds from 1 to {MAX_TIMEOUT_SECONDS}"))),
                    }
                }
            }
            "tls" => {
                self.tls = if empty {
                    None
                } else {
                    Some(TlsMode::parse(text()?).ok_or_else(|| invalid("use none, starttls, implicit or opportunistic"))?)
                }
            }
            "tls_ca_file" => self.tls_ca_file = optional_text()?.map(PathBuf::from),
            "tls_server_name" => self.tls_server_name = optional_text()?,
            "tls_insecure" => self.tls_insecure = parse_flag(value).ok_or_else(|| invalid(FLAG_VALUES))?,
            "user" => self.user = optional_text()?,
            "password" => self.password = (!empty).then(|| Secret::new(value)),
            "oauth_token" => self.oauth_token = (!empty).then(|| Secret::new(value)),
            "auth" => {
                self.auth = if empty || text()?.eq_ignore_ascii_case("auto") {
                    AuthChoice::Auto
                } else {
                    AuthChoice::Only(Mechanism::parse(text()?).ok_or_else(|| invalid("use auto, PLAIN, LOGIN, CRAM-MD5 or XOAUTH2"))?)
                }
            }
            "insecure_plaintext_auth" => {
                self.insecure_plaintext_auth = parse_flag(value).ok_or_else(|| invalid(FLAG_VALUES))?
            }
            "pipelining" => self.pipelining = empty || parse_flag(value).ok_or_else(|| invalid(FLAG_VALUES))?,
            "chunking" => self.chunking = empty || parse_flag(value).ok_or_else(|| invalid(FLAG_VALUES))?,
            "log_file" => self.log_file = optional_text()?.map(PathBuf::from),
            "profile" => {
                let name = text()?;
                if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                    return Err(invalid("use letters, digits, '-', '_' and '.'"));
                }
                self.profile = (!empty).then(|| name.to_owned());
            }
            "cc" | "bcc" | "reply_to" => {
                if !empty {
                    crate::address::parse_mailboxes(value).map_err(|error| invalid(&format!("the address list {error}")))?;
                }
                let list = (!empty).then(|| value.to_vec());
                match name {
                    "cc" => self.cc = list,
                    "bcc" => self.bcc = list,
                    _ => self.reply_to = list,
                }
            }
            "charset" => {
                self.charset = if empty {
                    Charset::default()
                } else {
                    Charset::from_label(text()?).ok_or_else(|| invalid("use a character set name such as UTF-8, ISO-8859-1 or windows-1252"))?
                }
            }
            "html_file" => self.html_file = optional_text()?.map(PathBuf::from),
            "body_type" => {
                self.body_type = match text()?.to_ascii_lowercase().as_str() {
                    "" | "text" => BodyType::Text,
                    "html" => BodyType::Html,
                    _ => return Err(invalid("use text or html")),
                }
            }
            // Each header= line adds a header; an empty value removes those set before.
            "header" => {
                if empty {
                    self.headers.clear();
                } else {
                    // The value is checked in full when the charset is known; the name is ASCII.
                    let line = String::from_utf8_lossy(value);
                    crate::compose::parse_extra_header(&line)?;
                    self.headers.push(value.to_vec());
                }
            }
            _ => unreachable!("every name in OPTION_NAMES has a branch"),
        }
        Ok(())
    }

    /// Applies an options list (see the module documentation) on top of these options.
    pub fn apply_list(&mut self, list: &[u8]) -> Result<(), Error> {
        for (name, value) in parse_list(list)? {
            self.set(name, value)?;
        }
        Ok(())
    }
}

/// One `name=value` entry of an options list, as bytes.
pub type Entry<'a> = (&'a [u8], &'a [u8]);

/// Splits an options list into `(name, value)` pairs, skipping empty lines.
pub fn parse_list(list: &[u8]) -> Result<Vec<Entry<'_>>, Error> {
    let mut entries = Vec::new();
    for (index, line) in split_lines(list).into_iter().enumerate() {
        if trim_spaces(line).is_empty() {
            continue;
        }
        let Some(equals) = line.iter().position(|&b| b == b'=') else {
            // The line is not echoed: it may be a mistyped password.
            return Err(Error::InvalidArgument(format!(
                "Invalid options: line {} has no '='. Write each option as name=value on its own line.",
                index + 1
            )));
        };
        entries.push((&line[..equals], &line[equals + 1..]));
    }
    Ok(entries)
}

/// Splits on LF, CRLF, CR and attribute marks.
fn split_lines(list: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < list.len() {
        let separator_len = match list[index] {
            b'\r' if list.get(index + 1) == Some(&b'\n') => 2,
            b'\r' | b'\n' | ATTRIBUTE_MARK => 1,
            _ if list[index..].starts_with(&ATTRIBUTE_MARK_UTF8) => ATTRIBUTE_MARK_UTF8.len(),
            _ => 0,
        };
        if separator_len > 0 {
            lines.push(&list[start..index]);
            index += separator_len;
            start = index;
        } else {
            index += 1;
        }
    }
    lines.push(&list[start..]);
    lines
}

/// Parses a yes/no option: 1, 0, yes, no, true, false, on, off, or empty for "no".
fn parse_flag(value: &[u8]) -> Option<bool> {
    match value.to_ascii_lowercase().as_slice() {
        b"" | b"0" | b"no" | b"false" | b"off" => Some(false),
        b"1" | b"yes" | b"true" | b"on" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_set_and_reset() {
        let mut options = Options::default();
        options.set(b"timeout", b"5").unwrap();
        assert_eq!(options.timeout, Duration::from_secs(5));
        options.set(b"timeout", b"").unwrap();
        assert_eq!(options.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_timeouts_rejected() {
        let values: &[&[u8]] = &[b"0", b"-1", b"abc", b"1.5", b"3601", b"99999999999999999999", b"5\r\n", b"5\x00"];
        let mut options = Options::default();
        for value in values {
            let error = options.set(b"timeout", value);
            assert!(matches!(error, Err(Error::InvalidArgument(_))), "accepted {:?}", value);
        }
        assert!(options.set(b"timeout", b" 5 ").is_ok());
    }

    #[test]
    fn unknown_option_named() {
        let error = Options::default().set(b"nonsense", b"1").unwrap_err();
        assert!(error.to_string().contains("\"nonsense\""), "{error}");
    }

    #[test]
    fn list_with_marks_and_crlf() {
        let mut options = Options::default();
        let mut list = b"host=smtp.example.test\r\nport=587".to_vec();
        list.push(ATTRIBUTE_MARK);
        list.extend_from_slice(b"tls=starttls");
        list.extend_from_slice(&ATTRIBUTE_MARK_UTF8);
        list.extend_from_slice(b"user=me@example.test\npassword= p=a;s s \n\n");
        options.apply_list(&list).unwrap();
        assert_eq!(options.host.as_deref(), Some("smtp.example.test"));
        assert_eq!(options.port, Some(587));
        assert_eq!(options.tls, Some(TlsMode::StartTls));
        assert_eq!(options.user.as_deref(), Some("me@example.test"));
        assert_eq!(options.password.as_ref().unwrap().expose(), b" p=a;s s ");
    }

    #[test]
    fn bad_values_rejected() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"port", b"0"),
            (b"port", b"65536"),
            (b"tls", b"ssl"),
            (b"tls_insecure", b"maybe"),
            (b"auth", b"DIGEST-MD5"),
            (b"profile", b"../etc/passwd"),
            (b"host", b"a\tb"),
        ];
        for (name, value) in cases {
            let result = Options::default().set(name, value);
            assert!(matches!(result, Err(Error::InvalidArgument(_))), "accepted {:?}={:?}", name, value);
        }
    }

    #[test]
    fn secret_never_echoed() {
        let error = Options::default().set(b"password", b"hunter2\r").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = Options::default().apply_list(b"host=x\npassword:hunter2\n").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn empty_value_restores_default() {
        let mut options = Options::default();
        options.apply_list(b"tls=implicit\nuser=u\nauth=PLAIN").unwrap();
        options.apply_list(b"tls=\nuser=\nauth=").unwrap();
        assert_eq!(options, Options::default());
    }

    #[test]
    fn message_options_checked_when_set() {
        let mut options = Options::default();
        assert!(options.set(b"header", b"Subject: sneaky").is_err());
        assert!(options.set(b"header", b"no colon").is_err());
        assert!(options.set(b"cc", b"not an address").is_err());
        assert!(options.set(b"bcc", b"archive@example.test\xfdcopy@example.test").is_ok());
        assert!(options.set(b"header", b"X-Invoice: 42").is_ok());
        assert_eq!(options.headers.len(), 1);
    }

    #[test]
    fn fuzz_input_with_secret_in_name() {
        // Found by the options fuzz target: the input repeats the password as part of an
        // option name, which the message echoes; the password's own value is never echoed.
        let mut list = b"password=Sekr1t-Fuzz\n".to_vec();
        list.extend_from_slice(b"\x20\x50\x53\x53\x32\x50\x7a\x64\x31\x84\x00\x02\x00\x53\x53\x00\x00\xff\xf4\x7a\x7a\x7a\x31\xff\xf4\x7a\x7a\x7a\x7a\x7a\x7a\x00\x00\x00\x53\x53\x53\xc3\x53\xe7\x53\x53\x53\x53\x65\x6b\x72\x31\x7a\x7a\x7b\x7a\x7a\x7a\x7a\xc3\x53\xe7\x53\x53\x53\x53\x65\x6b\x72\x31\x7a\x7a\x7b\x7a\x7a\x7a\x7a\x7a\x7a\x7a\x7a\x00\x00\x00\x53\x53\x53\xc3\x53\xe7\x53\x53\x53\x53\x53\x65\x6b\x72\x31\x7a\x7a\x7b\x7a\x7a\x7a\x7a\x7a\x7a\x7a\x84\x7a\x5e\x00\x7a\x7a\x7a\x7a\x7a\x7a\x53\x53\x53\x53\x65\x6b\x72\x31\x74\x2d\x46\x75\x7a\x7a\x7b\x7a\x7a\x7a\x7a\x7a\x7a\x7a\x84\x7a\x5e\x00\x7a\x7a\x7a\x7a\x84\x7a\x7a\x7a\x7a\x53\x53\x53\x32\x23\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x25\x3d\xa6\xac\x53\x53\x53\x3b\x53\x00\x53\x53\x53\x53\x53");
        let error = Options::default().apply_list(&list).unwrap_err();
        assert!(error.to_string().starts_with("Unknown option"), "{error}");
        let mut list = b"password=Sekr1t-Fuzz\nfrobnicate=1".to_vec();
        list.push(b'\n');
        let error = Options::default().apply_list(&list).unwrap_err();
        assert!(!error.to_string().contains("Sekr1t-Fuzz"), "{error}");
    }

    #[test]
    fn every_name_settable() {
        for name in OPTION_NAMES {
            assert!(Options::default().set(name.as_bytes(), b"").is_ok(), "{name}");
        }
    }
}
