//! `mvsmtp`: send a message from the command line through libmvsmtp.
//!
//! The exit status is the library's status code (0 for sent), the error goes to stderr, and
//! `--transcript` prints the conversation on stdout. Passwords and tokens are never taken as
//! arguments, which other users could read with `ps`: they come from a profile, an
//! environment variable or a file.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mvsmtp::ffi::{calls, diagnostics, status};
use mvsmtp::options::OPTION_NAMES;
use mvsmtp::request::RawRequest;

/// Environment variable read for the password when set.
const PASSWORD_ENV: &str = "MVSMTP_PASSWORD";

/// Environment variable read for the OAuth 2.0 access token when set.
const TOKEN_ENV: &str = "MVSMTP_OAUTH_TOKEN";

#[derive(Parser)]
#[command(name = "mvsmtp", version, about = "Send e-mail over SMTP with libmvsmtp")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one message. With --subject the library composes a MIME message whose text
    /// (or HTML) is read from standard input or --file. Without it, standard input or --file
    /// holds the whole message as it goes after DATA: headers, a blank line, then the text.
    Send(Box<SendArgs>),
    /// List the status codes that the exit status can take.
    Statuses,
}

#[derive(clap::Args)]
struct SendArgs {
    /// Mail server host name or IP address (or set host in a profile).
    #[arg(long)]
    host: Option<String>,

    /// Server port. The default is 25, or 465 with --tls implicit.
    #[arg(long, allow_negative_numbers = true)]
    port: Option<String>,

    /// Name to give in EHLO; defaults to this machine's host name.
    #[arg(long)]
    helo: Option<String>,

    /// Envelope sender; "" sends the null sender <>.
    #[arg(long)]
    from: OsString,

    /// Recipients, separated by ',', ';' or a value mark (byte 0xFD or U+F8FD). Repeat the
    /// option for more.
    #[arg(long, required = true)]
    to: Vec<OsString>,

    /// Seconds to wait for connecting, the TLS handshake, each write and each reply (1 to 3600).
    #[arg(long)]
    timeout: Option<String>,

    /// TLS mode: none, starttls, implicit or opportunistic.
    #[arg(long)]
    tls: Option<String>,

    /// User name for authentication. The password comes from a profile, the
    /// MVSMTP_PASSWORD environment variable or --password-file.
    #[arg(long)]
    user: Option<String>,

    /// File whose first line is the password.
    #[arg(long)]
    password_file: Option<PathBuf>,

    /// File whose first line is an OAuth 2.0 access token (for XOAUTH2); the
    /// MVSMTP_OAUTH_TOKEN environment variable works too.
    #[arg(long)]
    oauth_token_file: Option<PathBuf>,

    /// Named block of options in the configuration file ($MVSMTP_CONFIG, ~/.mvsmtp.conf or
    /// /etc/mvsmtp.conf).
    #[arg(long)]
    profile: Option<String>,

    /// Any library option as NAME=VALUE, such as tls_ca_file=/etc/ssl/my-ca.pem. Repeatable.
    /// Not for password or oauth_token.
    #[arg(long = "option", short = 'o', value_name = "NAME=VALUE")]
    options: Vec<String>,

    /// Read the message (or, with --subject, its body) from this file instead of standard input.
    #[arg(long)]
    file: Option<PathBuf>,

    /// Compose the message: its subject. The body is read as text, in --charset.
    #[arg(long)]
    subject: Option<OsString>,

    /// With --subject: a file whose HTML becomes an alternative to the text body.
    #[arg(long)]
    html: Option<PathBuf>,

    /// With --subject: attach a file. Add ";name=SHOWN" or ";type=TYPE" to set the file name
    /// shown or the content type. Repeatable.
    #[arg(long = "attach", value_name = "PATH")]
    attachments: Vec<OsString>,

    /// With --subject: Cc recipients.
    #[arg(long)]
    cc: Vec<OsString>,

    /// With --subject: Bcc recipients, who get the message but appear in no header.
    #[arg(long)]
    bcc: Vec<OsString>,

    /// With --subject: the Reply-To address.
    #[arg(long)]
    reply_to: Option<OsString>,

    /// With --subject: the character set of the subject and body, such as ISO-8859-1
    /// (default UTF-8).
    #[arg(long)]
    charset: Option<String>,

    /// With --subject: an extra header "Name: value". Repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// Print the SMTP conversation on standard output (the body appears only as its size,
    /// and credentials are hidden).
    #[arg(long)]
    transcript: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            let code = if error.use_stderr() { status::SMTP_INVALID_ARGUMENT } else { status::SMTP_OK };
            return exit_code(code);
        }
    };
    match cli.command {
        Command::Send(args) => exit_code(send(&args)),
        Command::Statuses => {
            for (code, name) in status::STATUS_NAMES {
                println!("{code:>3}  {}", name.to_string_lossy());
            }
            ExitCode::SUCCESS
        }
    }
}

fn send(args: &SendArgs) -> i32 {
    let entries = match option_entries(args) {
        Ok(entries) => entries,
        Err(message) => return usage_error(&message),
    };

    let body = match read_message(args.file.as_deref()) {
        Ok(body) => body,
        Err(error) => {
            let source = args.file.as_ref().map_or("standard input".to_owned(), |path| path.display().to_string());
            return usage_error(&format!("Reading the message from {source} failed: {error}."));
        }
    };

    let from = os_bytes(&args.from);
    let to = join_lists(&args.to);

    let borrowed: Vec<(&[u8], &[u8])> = entries.iter().map(|(name, value)| (name.as_bytes(), value.as_slice())).collect();
    let code = match &args.subject {
        Some(subject) => {
            let subject = os_bytes(subject);
            let attachments = attachment_list(&args.attachments);
            calls::send_message_with_entries(
                &borrowed,
                calls::MessageArguments {
                    from: Some(&from),
                    to: Some(&to),
                    subject: Some(&subject),
                    body: Some(&body),
                    attachments: Some(&attachments),
                },
            )
        }
        None => calls::send_with_entries(&borrowed, RawRequest { from: Some(&from), to: Some(&to), body: Some(&body) }),
    };

    if args.transcript {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(diagnostics::last_transcript().as_bytes());
        let _ = stdout.flush();
    }
    if code != status::SMTP_OK {
        report_failure(code);
    }
    code
}

/// Joins repeated address options into one list.
fn join_lists(values: &[OsString]) -> Vec<u8> {
    values.iter().map(|value| os_bytes(value)).collect::<Vec<_>>().join(&b","[..])
}

/// Builds the attachments argument: one attachment per attribute mark, with path, name and
/// type separated by value marks.
fn attachment_list(specs: &[OsString]) -> Vec<u8> {
    let mut list = Vec::new();
    for spec in specs {
        let spec = os_bytes(spec);
        let mut parts = spec.split(|&b| b == b';');
        let path = parts.next().unwrap_or(b"");
        let (mut name, mut content_type): (&[u8], &[u8]) = (b"", b"");
        for part in parts {
            if let Some(value) = part.strip_prefix(b"name=") {
                name = value;
            } else if let Some(value) = part.strip_prefix(b"type=") {
                content_type = value;
            }
        }
        if !list.is_empty() {
            list.push(0xFE);
        }
        list.extend_from_slice(path);
        list.push(0xFD);
        list.extend_from_slice(name);
        list.push(0xFD);
        list.extend_from_slice(content_type);
    }
    list
}

/// Collects the library options from the arguments, the environment and the secret files,
/// in that order of increasing precedence for secrets.
fn option_entries(args: &SendArgs) -> Result<Vec<(String, Vec<u8>)>, String> {
    let composing = !args.attachments.is_empty() || args.html.is_some() || !args.cc.is_empty() || !args.bcc.is_empty() || args.reply_to.is_some() || args.charset.is_some() || !args.headers.is_empty();
    if composing && args.subject.is_none() {
        return Err("The options --attach, --html, --cc, --bcc, --reply-to, --charset and --header compose a message, which needs --subject.".into());
    }

    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    if !args.cc.is_empty() {
        entries.push(("cc".into(), join_lists(&args.cc)));
    }
    if !args.bcc.is_empty() {
        entries.push(("bcc".into(), join_lists(&args.bcc)));
    }
    if let Some(reply_to) = &args.reply_to {
        entries.push(("reply_to".into(), os_bytes(reply_to)));
    }
    if let Some(charset) = &args.charset {
        entries.push(("charset".into(), charset.clone().into_bytes()));
    }
    if let Some(html) = &args.html {
        entries.push(("html_file".into(), os_bytes(html.as_os_str())));
    }
    for header in &args.headers {
        entries.push(("header".into(), header.clone().into_bytes()));
    }

    let named = [
        ("profile", &args.profile),
        ("host", &args.host),
        ("port", &args.port),
        ("helo", &args.helo),
        ("timeout", &args.timeout),
        ("tls", &args.tls),
        ("user", &args.user),
    ];
    for (name, value) in named {
        if let Some(value) = value {
            entries.push((name.to_owned(), value.clone().into_bytes()));
        }
    }

    for option in &args.options {
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
        entries.push((name.to_owned(), value.as_bytes().to_vec()));
    }

    for (name, variable, file) in [("password", PASSWORD_ENV, &args.password_file), ("oauth_token", TOKEN_ENV, &args.oauth_token_file)] {
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

/// Reads the first line of a secret file, without its line ending.
fn read_secret_file(path: &Path) -> io::Result<Vec<u8>> {
    let content = std::fs::read(path)?;
    let first_line = content.split(|&b| b == b'\n').next().unwrap_or(&[]);
    Ok(first_line.strip_suffix(b"\r").unwrap_or(first_line).to_vec())
}

fn read_message(file: Option<&Path>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match file {
        Some(path) => body = std::fs::read(path)?,
        None => {
            io::stdin().lock().read_to_end(&mut body)?;
        }
    }
    Ok(body)
}

/// Returns the bytes of an argument as the operating system passed them, so that a value
/// mark byte (0xFD) from a system without NLS survives.
#[cfg(unix)]
fn os_bytes(value: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    value.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(value: &std::ffi::OsStr) -> Vec<u8> {
    value.to_string_lossy().into_owned().into_bytes()
}

fn usage_error(message: &str) -> i32 {
    eprintln!("mvsmtp: SMTP_INVALID_ARGUMENT: {message}");
    status::SMTP_INVALID_ARGUMENT
}

fn report_failure(code: i32) {
    let name = status::status_name(code).to_string_lossy();
    let reply_code = diagnostics::last_reply_code();
    if reply_code != 0 {
        eprintln!("mvsmtp: {name} (reply {reply_code}): {}", diagnostics::last_error());
    } else {
        eprintln!("mvsmtp: {name}: {}", diagnostics::last_error());
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
