//! One send request, validated in full before any connection is made.
//!
//! The arguments arrive as bytes from C. A request is built only when every argument is
//! valid, so an invalid argument never opens a connection, and nothing that reaches the
//! server can carry a line break the library did not put there.

use std::time::Duration;

use crate::address::{self, describe_byte, escape_for_message, trim_spaces, Address};
use crate::auth::{Credentials, Mechanism};
use crate::error::Error;
use crate::options::{AuthChoice, Options};
use crate::tls::{self, TlsMode, TlsSetup};

/// The port used when the caller passes 0.
pub const DEFAULT_PORT: u16 = 25;

/// The port of implicit TLS (RFC 8314).
pub const IMPLICIT_TLS_PORT: u16 = 465;

/// The port of message submission with STARTTLS (RFC 6409).
pub const SUBMISSION_PORT: u16 = 587;

/// The largest number of hosts in the `host` option: the first and its fallbacks. Each host
/// may cost a full timeout, so a long list would hold the caller for many minutes.
pub const MAX_HOSTS: usize = 10;

/// The default timeout for connecting and for each wait for the server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The message arguments of one send, exactly as the caller passed them. `None` stands for
/// a NULL pointer.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub from: Option<&'a [u8]>,
    pub to: Option<&'a [u8]>,
    pub body: Option<&'a [u8]>,
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The server to try first.
    pub host: String,
    /// Hosts to try in turn when a connection to the one before fails or its greeting
    /// rejects the session, each with its own TLS configuration.
    pub fallbacks: Vec<Fallback>,
    pub port: u16,
    /// The EHLO name, or `None` for the machine's host name.
    pub helo: Option<String>,
    /// The envelope sender, or `None` for the null sender `<>`.
    pub sender: Option<Address>,
    pub recipients: Vec<Address>,
    pub body: &'a [u8],
    pub timeout: Duration,
    pub tls: TlsMode,
    /// The TLS configuration, present unless `tls` is `None`.
    pub tls_setup: Option<TlsSetup>,
    pub credentials: Option<Credentials>,
    pub auth: AuthChoice,
    pub insecure_plaintext_auth: bool,
    pub pipelining: bool,
    pub chunking: bool,
}

/// A fallback host with the TLS configuration that verifies its certificate.
#[derive(Debug, Clone)]
pub struct Fallback {
    pub host: String,
    pub tls_setup: Option<TlsSetup>,
}

impl<'a> Request<'a> {
    /// Returns this request aimed at a fallback host, with no further fallbacks.
    pub fn for_fallback(&self, fallback: &Fallback) -> Request<'a> {
        Request { host: fallback.host.clone(), tls_setup: fallback.tls_setup.clone(), fallbacks: Vec::new(), ..self.clone() }
    }

    /// Validates every argument and option, and returns the first problem as
    /// `Error::InvalidArgument`.
    pub fn validate(raw: RawRequest<'a>, options: &Options) -> Result<Request<'a>, Error> {
        let (sender, recipients, body) = validate_message(raw, options)?;
        Request::with_envelope(sender, recipients, body, options)
    }

    /// Validates a message for a session opened with `template`, reusing the template's
    /// server, TLS configuration and credentials. `options` give the message's own settings
    /// (cc and bcc add envelope recipients to a ready-made message).
    pub fn validate_for_session<'t>(raw: RawRequest<'t>, options: &Options, template: &Request<'_>) -> Result<Request<'t>, Error> {
        let (sender, recipients, body) = validate_message(raw, options)?;
        Ok(template.with_message(sender, recipients, body))
    }

    /// Returns a request with this one's server, TLS configuration and credentials, and the
    /// given envelope and body. A session builds each message's request this way, so its
    /// TLS configuration (and any CA file) is read once, when the session opens.
    pub fn with_message<'t>(&self, sender: Option<Address>, recipients: Vec<Address>, body: &'t [u8]) -> Request<'t> {
        Request {
            host: self.host.clone(),
            fallbacks: self.fallbacks.clone(),
            port: self.port,
            helo: self.helo.clone(),
            sender,
            recipients,
            body,
            timeout: self.timeout,
            tls: self.tls,
            tls_setup: self.tls_setup.clone(),
            credentials: self.credentials.clone(),
            auth: self.auth,
            insecure_plaintext_auth: self.insecure_plaintext_auth,
            pipelining: self.pipelining,
            chunking: self.chunking,
        }
    }
}

/// The envelope sender (`None` for `<>`), the envelope recipients and the body of a message.
type MessageParts<'a> = (Option<Address>, Vec<Address>, &'a [u8]);

/// Checks the sender, the recipients (with the cc and bcc options added) and the body of
/// a ready-made message.
fn validate_message<'a>(raw: RawRequest<'a>, options: &Options) -> Result<MessageParts<'a>, Error> {
    let from = required(raw.from, "from")?;
    let sender = address::parse_sender(from).map_err(|error| Error::InvalidArgument(format!("Invalid sender {error}.")))?;

    let to = required(raw.to, "to")?;
    let recipients =
        address::parse_recipients(to).map_err(|error| Error::InvalidArgument(format!("Invalid recipient list: {error}.")))?;

    // For a ready-made message, cc and bcc only add envelope recipients: its headers are
    // the caller's.
    let mut recipients = recipients;
    for (name, list) in [("cc", &options.cc), ("bcc", &options.bcc)] {
        let Some(list) = list else { continue };
        let extra = address::parse_recipients(list).map_err(|error| Error::InvalidArgument(format!("Invalid {name} list: {error}.")))?;
        for address in extra {
            if !recipients.contains(&address) {
                recipients.push(address);
            }
        }
    }

    let body = required(raw.body, "body")?;
    if let Some(offset) = memchr::memchr(0, body) {
        return Err(Error::InvalidArgument(format!(
            "Invalid body: it contains a NUL byte at offset {offset}, which SMTP cannot carry. Remove it or attach the data encoded."
        )));
    }
    Ok((sender, recipients, body))
}

impl<'a> Request<'a> {
    /// Validates the options of a request whose envelope and body are already built, as for
    /// a composed message.
    pub fn with_envelope(sender: Option<Address>, recipients: Vec<Address>, body: &'a [u8], options: &Options) -> Result<Request<'a>, Error> {
        let mut hosts = match &options.host {
            Some(list) => validate_hosts(list.as_bytes())?.into_iter(),
            None => return Err(Error::InvalidArgument("Missing option: host is not set. Set host to the mail server's name or IP address.".into())),
        };
        let Some(host) = hosts.next() else {
            return Err(Error::InvalidArgument("Invalid host: it is empty. Pass the mail server's host name or IP address.".into()));
        };
        let helo = options.helo.as_deref().map(|name| validate_helo(name.as_bytes())).transpose()?;

        let credentials = credentials(options)?;
        let port = options.port.unwrap_or(if options.tls == Some(TlsMode::Implicit) { IMPLICIT_TLS_PORT } else { DEFAULT_PORT });
        let tls = options.tls.unwrap_or(match port {
            IMPLICIT_TLS_PORT => TlsMode::Implicit,
            SUBMISSION_PORT => TlsMode::StartTls,
            _ if credentials.is_some() => TlsMode::StartTls,
            _ => TlsMode::None,
        });
        if credentials.is_some() && tls == TlsMode::None && !options.insecure_plaintext_auth {
            return Err(Error::InvalidArgument(
                "Credentials are set but tls=none, so the password would travel unencrypted. Use tls=starttls or tls=implicit, or set insecure_plaintext_auth=1 for a trusted local relay.".into(),
            ));
        }
        let tls_setup_for = |host: &str| match tls {
            TlsMode::None => Ok(None),
            _ => tls::setup(host, options.tls_server_name.as_deref(), options.tls_ca_file.as_deref(), options.tls_insecure).map(Some),
        };
        let tls_setup = tls_setup_for(&host)?;
        let fallbacks =
            hosts.map(|host| Ok(Fallback { tls_setup: tls_setup_for(&host)?, host })).collect::<Result<Vec<_>, Error>>()?;

        Ok(Request {
            host,
            fallbacks,
            port,
            helo,
            sender,
            recipients,
            body,
            timeout: options.timeout,
            tls,
            tls_setup,
            credentials,
            auth: options.auth,
            insecure_plaintext_auth: options.insecure_plaintext_auth,
            pipelining: options.pipelining,
            chunking: options.chunking,
        })
    }
}

/// Collects the credentials, checking that they fit together and with the `auth` option.
fn credentials(options: &Options) -> Result<Option<Credentials>, Error> {
    let has_secret = options.password.is_some() || options.oauth_token.is_some();
    let user = match (&options.user, has_secret) {
        (None, false) => {
            if let AuthChoice::Only(mechanism) = options.auth {
                return Err(Error::InvalidArgument(format!("Option auth={mechanism} is set but user is not. Set user and password (or oauth_token).")));
            }
            return Ok(None);
        }
        (None, true) => return Err(Error::InvalidArgument("A password or oauth_token is set but user is not. Set user to the account name.".into())),
        (Some(user), false) => {
            return Err(Error::InvalidArgument(format!(
                "Option user=\"{}\" is set without a password or oauth_token. Set one of them (the mvsmtp tool reads them from --password-file, MVSMTP_PASSWORD or a profile).",
                escape_for_message(user.as_bytes())
            )))
        }
        (Some(user), true) => user.clone(),
    };

    match options.auth {
        AuthChoice::Only(Mechanism::XOAuth2) if options.oauth_token.is_none() => {
            return Err(Error::InvalidArgument("Option auth=XOAUTH2 needs oauth_token, an OAuth 2.0 access token.".into()));
        }
        AuthChoice::Only(mechanism) if mechanism != Mechanism::XOAuth2 && options.password.is_none() => {
            return Err(Error::InvalidArgument(format!("Option auth={mechanism} needs a password.")));
        }
        _ => {}
    }
    Ok(Some(Credentials { user, password: options.password.clone(), oauth_token: options.oauth_token.clone() }))
}

fn required<'a>(value: Option<&'a [u8]>, name: &str) -> Result<&'a [u8], Error> {
    value.ok_or_else(|| Error::InvalidArgument(format!("Missing argument: {name} is NULL. Pass a string.")))
}

/// Checks a host list: one host name or IP address, or several separated by commas, to be
/// tried in order. Returns the hosts without surrounding spaces.
pub fn validate_hosts(value: &[u8]) -> Result<Vec<String>, Error> {
    let entries: Vec<&[u8]> = value.split(|&b| b == b',').collect();
    if entries.len() > 1 {
        if let Some(position) = entries.iter().position(|entry| trim_spaces(entry).is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "Invalid host list \"{}\": entry {} is empty. Separate the hosts with single commas.",
                escape_for_message(value),
                position + 1
            )));
        }
    }
    let hosts = entries.into_iter().map(validate_host).collect::<Result<Vec<_>, Error>>()?;
    if hosts.len() > MAX_HOSTS {
        return Err(Error::InvalidArgument(format!(
            "Invalid host list \"{}\": it names {} hosts, but at most {MAX_HOSTS} are tried. Remove some.",
            escape_for_message(value),
            hosts.len()
        )));
    }
    Ok(hosts)
}

/// Checks a host name or IP address and returns it without surrounding spaces.
pub fn validate_host(value: &[u8]) -> Result<String, Error> {
    let trimmed = trim_spaces(value);
    if let Some(&bad) = trimmed.iter().find(|&&b| b <= 0x20 || b == 0x7F) {
        return Err(Error::InvalidArgument(format!(
            "Invalid host \"{}\": it contains {}. Pass only the host name or IP address.",
            escape_for_message(value),
            describe_byte(bad)
        )));
    }
    if trimmed.is_empty() {
        return Err(Error::InvalidArgument("Invalid host: it is empty. Pass the mail server's host name or IP address.".into()));
    }
    if trimmed.contains(&b';') {
        return Err(Error::InvalidArgument(format!(
            "Invalid host \"{}\": it contains ';'. Separate fallback hosts with commas.",
            escape_for_message(value)
        )));
    }
    // An IPv6 address has at least two colons, so one colon means "name:port".
    if trimmed.iter().filter(|&&b| b == b':').count() == 1 {
        return Err(Error::InvalidArgument(format!(
            "Invalid host \"{}\": it contains a port. Give the port in the port option (or smtp_send's port argument); it applies to every host.",
            escape_for_message(value)
        )));
    }
    match std::str::from_utf8(trimmed) {
        Ok(host) if host.is_ascii() => Ok(host.to_owned()),
        _ => Err(Error::InvalidArgument(format!(
            "Invalid host \"{}\": it contains non-ASCII characters. Use the ASCII (punycode) form of the name.",
            escape_for_message(value)
        ))),
    }
}

/// Checks a port number passed as an integer by C, where 0 means the default port 25.
pub fn validate_port(port: i64) -> Result<u16, Error> {
    match port {
        0 => Ok(DEFAULT_PORT),
        1..=65535 => Ok(port as u16),
        _ => Err(Error::InvalidArgument(format!(
            "Invalid port {port}: use 1 to 65535, or 0 for the default port 25. Mail submission usually uses 587 (STARTTLS) or 465 (implicit TLS)."
        ))),
    }
}

/// Checks an EHLO name: a domain name or an address literal such as `[192.0.2.1]`.
pub fn validate_helo(value: &[u8]) -> Result<String, Error> {
    if let Some(&bad) = value.iter().find(|&&b| b <= 0x20 || b == 0x7F) {
        return Err(Error::InvalidArgument(format!(
            "Invalid helo \"{}\": it contains {}. Pass one host name with no spaces or line breaks.",
            escape_for_message(value),
            describe_byte(bad)
        )));
    }
    let is_literal = value.len() > 2
        && value[0] == b'['
        && value[value.len() - 1] == b']'
        && value[1..value.len() - 1].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b':');
    if !is_literal && !address::is_domain_name(value) {
        return Err(Error::InvalidArgument(format!(
            "Invalid helo \"{}\": use a host name such as client.example.com or an address literal such as [192.0.2.1].",
            escape_for_message(value)
        )));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(to: &[u8]) -> RawRequest<'_> {
        RawRequest { from: Some(b"a@x.test"), to: Some(to), body: Some(b"") }
    }

    fn options(list: &str) -> Options {
        let mut options = Options::default();
        options.apply_list(b"host=127.0.0.1\nport=2525").unwrap();
        options.apply_list(list.as_bytes()).unwrap();
        options
    }

    fn problem(raw: RawRequest<'_>, options: &Options) -> String {
        match Request::validate(raw, options) {
            Err(Error::InvalidArgument(message)) => message,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn valid_request() {
        let request = Request::validate(raw(b"b@x.test"), &options("")).unwrap();
        assert_eq!(request.port, 2525);
        assert_eq!(request.recipients.len(), 1);
        assert_eq!(request.helo, None);
        assert_eq!(request.tls, TlsMode::None);
        assert!(request.tls_setup.is_none());
    }

    #[test]
    fn port_zero_means_25() {
        assert_eq!(validate_port(0).unwrap(), 25);
    }

    #[test]
    fn null_arguments_named() {
        assert!(problem(RawRequest { from: None, ..raw(b"b@x.test") }, &options("")).contains("from is NULL"));
        assert!(problem(RawRequest { to: None, ..raw(b"b@x.test") }, &options("")).contains("to is NULL"));
        assert!(problem(RawRequest { body: None, ..raw(b"b@x.test") }, &options("")).contains("body is NULL"));
        assert!(problem(raw(b"b@x.test"), &Options::default()).contains("host is not set"));
    }

    #[test]
    fn bad_ports_rejected() {
        for port in [-1, 65536, i64::from(i32::MAX), i64::from(i32::MIN)] {
            assert!(validate_port(port).is_err(), "{port}");
        }
    }

    #[test]
    fn bad_hosts_rejected() {
        let hosts: &[&[u8]] = &[b"", b"  ", b"mail.example.test\r\nQUIT", b"a b", b"h\x00", b"mail.example.test\r\n", b"\tmail"];
        for host in hosts {
            let message = match validate_host(host) {
                Err(Error::InvalidArgument(message)) => message,
                other => panic!("accepted {host:?}: {other:?}"),
            };
            assert!(message.starts_with("Invalid host"), "{message}");
        }
    }

    #[test]
    fn bad_helo_rejected() {
        let names: &[&[u8]] = &[b"a b", b"x\r\nMAIL FROM:<a@b>", b"bad!name", b"[unclosed"];
        for name in names {
            assert!(validate_helo(name).is_err(), "accepted {name:?}");
        }
        assert_eq!(validate_helo(b"[192.0.2.1]").unwrap(), "[192.0.2.1]");
    }

    #[test]
    fn injection_attempt_rejected() {
        let message = problem(raw(b"a@b.example>\r\nRCPT TO:<x@y.example>"), &options(""));
        assert!(message.starts_with("Invalid recipient"), "{message}");
        assert!(message.contains("CR"), "{message}");
    }

    #[test]
    fn nul_in_body_rejected() {
        // A C string cannot hold NUL, but the command-line tool reads raw bytes.
        let message = problem(RawRequest { body: Some(b"a\x00b"), ..raw(b"b@x.test") }, &options(""));
        assert!(message.contains("offset 1"), "{message}");
    }

    #[test]
    fn no_recipient_rejected() {
        assert!(problem(raw(b""), &options("")).contains("contains no address"));
    }

    #[test]
    fn tls_defaults_follow_port() {
        let cases = [("port=465", TlsMode::Implicit), ("port=587", TlsMode::StartTls), ("port=25", TlsMode::None), ("tls=implicit\nport=", TlsMode::Implicit)];
        for (list, expected) in cases {
            let request = Request::validate(raw(b"b@x.test"), &options(list)).unwrap();
            assert_eq!(request.tls, expected, "{list}");
        }
        let request = Request::validate(raw(b"b@x.test"), &options("tls=implicit\nport=")).unwrap();
        assert_eq!(request.port, 465);
    }

    #[test]
    fn credentials_require_tls_by_default() {
        let request = Request::validate(raw(b"b@x.test"), &options("port=25\nuser=u\npassword=p")).unwrap();
        assert_eq!(request.tls, TlsMode::StartTls);
        let message = problem(raw(b"b@x.test"), &options("tls=none\nuser=u\npassword=p"));
        assert!(message.contains("insecure_plaintext_auth"), "{message}");
        let request = Request::validate(raw(b"b@x.test"), &options("tls=none\nuser=u\npassword=p\ninsecure_plaintext_auth=1")).unwrap();
        assert!(request.credentials.is_some());
    }

    #[test]
    fn credentials_must_be_complete() {
        assert!(problem(raw(b"b@x.test"), &options("password=p")).contains("user is not"));
        assert!(problem(raw(b"b@x.test"), &options("user=u")).contains("without a password"));
        assert!(problem(raw(b"b@x.test"), &options("user=u\npassword=p\nauth=XOAUTH2")).contains("oauth_token"));
        assert!(problem(raw(b"b@x.test"), &options("user=u\noauth_token=t\nauth=PLAIN")).contains("needs a password"));
    }

    #[test]
    fn cc_and_bcc_add_envelope_recipients() {
        let request = Request::validate(raw(b"b@x.test"), &options("cc=c@x.test\nbcc=d@x.test,b@x.test")).unwrap();
        let recipients: Vec<&str> = request.recipients.iter().map(Address::as_str).collect();
        assert_eq!(recipients, vec!["b@x.test", "c@x.test", "d@x.test"]);
    }

    #[test]
    fn password_never_in_messages() {
        let message = problem(raw(b"nobody"), &options("user=u\npassword=hunter2"));
        assert!(!message.contains("hunter2"), "{message}");
    }
}
