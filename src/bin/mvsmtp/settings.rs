//! Server settings shared by every subcommand, and the library options they become.
//!
//! Passwords and tokens are never taken as arguments, which other users could read with
//! `ps`: they come from a profile, an environment variable or the first line of a file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use mvsmtp::options::OPTION_NAMES;

use crate::os_bytes;

/// Environment variable read for the password when set.
pub const PASSWORD_ENV: &str = "MVSMTP_PASSWORD";

/// Environment variable read for the OAuth 2.0 access token when set.
pub const TOKEN_ENV: &str = "MVSMTP_OAUTH_TOKEN";

/// The profile that the `sendmail` and `mail` modes load when no server is named.
pub const DEFAULT_PROFILE: &str = "default";

/// Library options as (name, value) pairs, in the order they are applied.
pub type Entries = Vec<(String, Vec<u8>)>;

/// The options that choose the server and how to reach it.
#[derive(clap::Args, Default)]
pub struct ServerArgs {
    /// Mail server host name or IP address (or set host in a profile). A comma-separated
    /// list names fallback hosts, tried in order when one cannot be reached or rejects the
    /// session in its greeting (such as a 421 while busy).
    #[arg(long)]
    pub host: Option<String>,

    /// Server port. The default is 25, or 465 with --tls implicit.
    #[arg(long, allow_negative_numbers = true)]
    pub port: Option<String>,

    /// Name to give in EHLO; defaults to this machine's host name.
    #[arg(long)]
    pub helo: Option<String>,

    /// Seconds to wait for connecting, the TLS handshake, each write and each reply (1 to 3600).
    #[arg(long)]
    pub timeout: Option<String>,

    /// TLS mode: none, starttls, implicit or opportunistic.
    #[arg(long)]
    pub tls: Option<String>,

    /// User name for authentication. The password comes from a profile, the
    /// MVSMTP_PASSWORD environment variable or --password-file.
    #[arg(long)]
    pub user: Option<String>,

    /// File whose first line is the password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,

    /// File whose first line is an OAuth 2.0 access token (for XOAUTH2); the
    /// MVSMTP_OAUTH_TOKEN environment variable works too.
    #[arg(long)]
    pub oauth_token_file: Option<PathBuf>,

    /// Named block of options in the configuration file ($MVSMTP_CONFIG, ~/.mvsmtp.conf or
    /// /etc/mvsmtp.conf).
    #[arg(long)]
    pub profile: Option<String>,

    /// Any library option as NAME=VALUE, such as tls_ca_file=/etc/ssl/my-ca.pem. Repeatable.
    /// Not for password or oauth_token.
    #[arg(long = "option", short = 'o', value_name = "NAME=VALUE")]
    pub options: Vec<String>,
}

impl ServerArgs {
    /// Sets the field of a long option such as `--host`, for the modes that parse their own
    /// arguments. Returns false when `name` is not a server option.
    pub fn set_long(&mut self, name: &str, value: &OsString) -> Result<bool, String> {
        let text = || {
            value.to_str().map(str::to_owned).ok_or_else(|| format!("The value of --{name} is not valid UTF-8."))
        };
        match name {
            "host" => self.host = Some(text()?),
            "port" => self.port = Some(text()?),
            "helo" => self.helo = Some(text()?),
            "timeout" => self.timeout = Some(text()?),
            "tls" => self.tls = Some(text()?),
            "user" => self.user = Some(text()?),
            "password-file" => self.password_file = Some(PathBuf::from(value)),
            "oauth-token-file" => self.oauth_token_file = Some(PathBuf::from(value)),
            "profile" => self.profile = Some(text()?),
            "option" => self.options.push(text()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Reports whether neither --host, --profile nor an `-o host=` or `-o profile=` option
    /// names the server.
    pub fn names_no_server(&self) -> bool {
        let named_by_option = self.options.iter().any(|option| {
            let name = option.split_once('=').map_or(option.as_str(), |(name, _)| name).trim();
            name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("profile")
        });
        self.host.is_none() && self.profile.is_none() && !named_by_option
    }

    /// Collects the library options from the arguments, the environment and the secret
    /// files, in that order of increasing precedence for secrets.
    ///
    /// With `use_default_profile`, arguments that name no server get `profile=default`. That
    /// profile is loaded once here, so that a missing one is reported with the reason it
    /// was needed.
    pub fn entries(&self, use_default_profile: bool) -> Result<Entries, String> {
        let mut entries: Entries = Vec::new();

        if use_default_profile && self.names_no_server() {
            if let Err(error) = mvsmtp::profile::load_profile(DEFAULT_PROFILE) {
                return Err(format!(
                    "No --host or --profile was given, so the settings come from the profile \"{DEFAULT_PROFILE}\", which could not be used: {error} Fix that, or pass --host."
                ));
            }
            entries.push(("profile".into(), DEFAULT_PROFILE.as_bytes().to_vec()));
        }

        let named = [
            ("profile", &self.profile),
            ("host", &self.host),
            ("port", &self.port),
            ("helo", &self.helo),
            ("timeout", &self.timeout),
            ("tls", &self.tls),
            ("user", &self.user),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                entries.push((name.to_owned(), value.clone().into_bytes()));
            }
        }

        for option in &self.options {
            entries.push(parse_option(option)?);
        }

        for (name, variable, file) in [("password", PASSWORD_ENV, &self.password_file), ("oauth_token", TOKEN_ENV, &self.oauth_token_file)] {
            if let Some(value) = std::env::var_os(variable).filter(|value| !value.is_empty()) {
                entries.push((name.to_owned(), os_bytes(&value)));
            }
            if let Some(path) = file {
                let flag = if name == "password" { "--password-file" } else { "--oauth-token-file" };
                let secret = read_secret_file(path)
                    .map_err(|error| format!("Reading {flag} {} failed: {error}. Check the path and that you may read the file.", path.display()))?;
                if secret.is_empty() {
                    return Err(format!("The first line of {flag} {} is empty. Put the {} on its first line.", path.display(), name.replace('_', " ")));
                }
                entries.push((name.to_owned(), secret));
            }
        }
        Ok(entries)
    }
}

/// Checks one `-o NAME=VALUE` argument and splits it.
fn parse_option(option: &str) -> Result<(String, Vec<u8>), String> {
    let Some((name, value)) = option.split_once('=') else {
        return Err(format!("The option \"{option}\" has no '='. Write it as NAME=VALUE."));
    };
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    if lower == "password" || lower == "oauth_token" {
        return Err(format!(
            "The option {lower} is not accepted on the command line, because other users can read command lines with ps. Use --{}-file, the {} environment variable, or a profile.",
            lower.replace('_', "-"),
            if lower == "password" { PASSWORD_ENV } else { TOKEN_ENV }
        ));
    }
    if !OPTION_NAMES.contains(&lower.as_str()) {
        return Err(format!("Unknown option \"{name}\". Known options: {}.", OPTION_NAMES.join(", ")));
    }
    Ok((name.to_owned(), value.as_bytes().to_vec()))
}

/// Reads the first line of a secret file, without its line ending.
fn read_secret_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let content = std::fs::read(path)?;
    let first_line = content.split(|&b| b == b'\n').next().unwrap_or(&[]);
    Ok(first_line.strip_suffix(b"\r").unwrap_or(first_line).to_vec())
}

/// Borrows the entries in the form that the library's calls take.
pub fn borrow_entries(entries: &Entries) -> Vec<(&[u8], &[u8])> {
    entries.iter().map(|(name, value)| (name.as_bytes(), value.as_slice())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_needs_equals_sign() {
        assert!(parse_option("timeout").unwrap_err().contains("NAME=VALUE"));
    }

    #[test]
    fn option_password_refused() {
        let error = parse_option("Password=secret").unwrap_err();
        assert!(error.contains("with ps"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn option_name_kept_as_written() {
        assert_eq!(parse_option(" TLS_CA_FILE =/tmp/ca.pem").unwrap(), ("TLS_CA_FILE".to_owned(), b"/tmp/ca.pem".to_vec()));
    }

    #[test]
    fn server_named_by_option() {
        let mut server = ServerArgs::default();
        assert!(server.names_no_server());
        server.options.push(" Host =127.0.0.1".into());
        assert!(!server.names_no_server());
    }

    #[test]
    fn long_option_sets_field() {
        let mut server = ServerArgs::default();
        assert!(server.set_long("port", &OsString::from("2525")).unwrap());
        assert_eq!(server.port.as_deref(), Some("2525"));
        assert!(!server.set_long("subject", &OsString::from("x")).unwrap());
    }
}
