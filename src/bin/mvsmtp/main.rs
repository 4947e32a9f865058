//! `mvsmtp`: send e-mail from the command line through libmvsmtp.
//!
//! `send` takes the tool's own options. `sendmail` and `mail` take the arguments of the
//! sendmail and mailx commands, so that scripts written for those work unchanged. `outbox`
//! sends every message file in a directory over one session. Through a
//! link named `sendmail`, `mail` or `mailx`, the tool runs that mode with all its arguments.
//!
//! The exit status is the library's status code (0 for sent), and the error goes to stderr.
//! `outbox` has exit statuses of its own, which its help lists.
//! Passwords and tokens are never taken as arguments, which other users could read with
//! `ps`: they come from a profile, an environment variable or a file.

mod getopt;
mod headers;
mod mail;
mod outbox;
mod report;
mod sendmail;
mod settings;

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mvsmtp::ffi::{calls, status};
use mvsmtp::request::RawRequest;

use report::OutputFormat;
use settings::{borrow_entries, Entries, ServerArgs};

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
    /// Send a ready-made message with the arguments of the sendmail command (-t, -f, -F, -i).
    /// See mvsmtp sendmail --help.
    #[command(disable_help_flag = true)]
    Sendmail(ModeArgs),
    /// Compose and send a message with the arguments of the mail (mailx) command (-s, -c, -b,
    /// -r, -a). See mvsmtp mail --help.
    #[command(disable_help_flag = true)]
    Mail(ModeArgs),
    /// Send every message file in a directory over one connection, moving each to sent/ or
    /// failed/ after the server's reply. The envelope comes from each message's headers, as
    /// with sendmail -t.
    #[command(after_help = outbox::AFTER_HELP)]
    Outbox(Box<outbox::OutboxArgs>),
    /// List the status codes that the exit status can take.
    Statuses,
}

/// The arguments of a mode that parses its own, as the sendmail and mail commands do.
#[derive(clap::Args)]
struct ModeArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

#[derive(clap::Args)]
struct SendArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// Envelope sender; "" sends the null sender <>.
    #[arg(long)]
    from: OsString,

    /// Recipients, separated by ',', ';' or a value mark (byte 0xFD or U+F8FD). Repeat the
    /// option for more.
    #[arg(long, required = true)]
    to: Vec<OsString>,

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

    /// Print one JSON object on standard output: status, status_name, reply_code, error,
    /// message_id (for a ready-made message that has one) and, with --transcript,
    /// transcript. Library errors then go only into the object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();

    // A link named like the command it replaces runs that mode with every argument.
    let invoked_as = args.first().and_then(|program| Path::new(program).file_name()).and_then(|name| name.to_str());
    match invoked_as {
        Some("sendmail") => return exit_code(sendmail::run(&args[1..])),
        Some("mail" | "mailx") => return exit_code(mail::run(&args[1..])),
        _ => {}
    }

    // The modes parse their own arguments, and print their own help for `mvsmtp help MODE`.
    let subcommand = args.get(1).and_then(|arg| arg.to_str());
    let topic = args.get(2).and_then(|arg| arg.to_str());
    match (subcommand, topic) {
        (Some("sendmail"), _) => return exit_code(sendmail::run(&args[2..])),
        (Some("mail"), _) => return exit_code(mail::run(&args[2..])),
        (Some("help"), Some("sendmail")) => return exit_code(sendmail::run(&["--help".into()])),
        (Some("help"), Some("mail")) => return exit_code(mail::run(&["--help".into()])),
        _ => {}
    }

    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            if !error.use_stderr() {
                return exit_code(status::SMTP_OK);
            }
            // The message is already on stderr; --json callers also get the object.
            let format = OutputFormat::scan(&args);
            if format.json {
                let rendered = error.render().to_string();
                let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ");
                report::write_stdout(&report::json_result(status::SMTP_INVALID_ARGUMENT, 0, message, None, format.transcript.then_some("")));
            }
            return exit_code(status::SMTP_INVALID_ARGUMENT);
        }
    };
    match cli.command {
        Command::Send(args) => exit_code(send(&args)),
        Command::Sendmail(mode) => exit_code(sendmail::run(&mode.args)),
        Command::Mail(mode) => exit_code(mail::run(&mode.args)),
        Command::Outbox(args) => ExitCode::from(outbox::run(&args)),
        Command::Statuses => {
            for (code, name) in status::STATUS_NAMES {
                report::write_stdout(&format!("{code:>3}  {}\n", name.to_string_lossy()));
            }
            ExitCode::SUCCESS
        }
    }
}

fn send(args: &SendArgs) -> i32 {
    let output = OutputFormat { json: args.json, transcript: args.transcript };
    let entries = match option_entries(args) {
        Ok(entries) => entries,
        Err(message) => return output.usage_error(&message),
    };

    let body = match read_message(args.file.as_deref()) {
        Ok(body) => body,
        Err(error) => {
            let source = args.file.as_ref().map_or("standard input".to_owned(), |path| path.display().to_string());
            return output.usage_error(&format!("Reading the message from {source} failed: {error}."));
        }
    };

    let from = os_bytes(&args.from);
    let to = join_lists(&args.to);

    let borrowed = borrow_entries(&entries);
    let (code, message_id) = match &args.subject {
        Some(subject) => {
            let subject = os_bytes(subject);
            let attachments = match attachment_list(&args.attachments) {
                Ok(attachments) => attachments,
                Err(message) => return output.usage_error(&message),
            };
            let code = calls::send_message_with_entries(
                &borrowed,
                calls::MessageArguments {
                    from: Some(&from),
                    to: Some(&to),
                    subject: Some(&subject),
                    body: Some(&body),
                    attachments: Some(&attachments),
                },
            );
            // NOTE: the library does not return the Message-ID of a composed message.
            (code, None)
        }
        None => {
            let code = calls::send_with_entries(&borrowed, RawRequest { from: Some(&from), to: Some(&to), body: Some(&body) });
            (code, mvsmtp::audit::message_id(&body))
        }
    };
    output.finish(code, message_id.as_deref())
}

/// Joins repeated address options into one list.
fn join_lists(values: &[OsString]) -> Vec<u8> {
    values.iter().map(|value| os_bytes(value)).collect::<Vec<_>>().join(&b","[..])
}

/// Builds the attachments argument from `--attach PATH[;name=NAME][;type=TYPE]` values:
/// one attachment per attribute mark, with path, name and type separated by value marks.
/// A value runs to the next `;name=` or `;type=`, so a name may contain other semicolons.
fn attachment_list(specs: &[OsString]) -> Result<Vec<u8>, String> {
    let mut list = Vec::new();
    for spec in specs {
        let spec = os_bytes(spec);
        let fields = split_attach_spec(&spec);
        for value in [&fields.0, &fields.1, &fields.2] {
            if let Some(&byte) = value.iter().find(|&&b| b < 0x20 || (0xFC..=0xFE).contains(&b)) {
                return Err(format!(
                    "The --attach value \"{}\" contains the byte 0x{byte:02X}, which separates attachments and their fields. Rename the file or choose another name.",
                    String::from_utf8_lossy(&spec)
                ));
            }
        }
        let (path, name, content_type) = fields;
        if path.is_empty() {
            return Err("An --attach value has no path. Write it as PATH, optionally followed by ;name=NAME and ;type=TYPE.".into());
        }
        if !list.is_empty() {
            list.push(0xFE);
        }
        list.extend_from_slice(&path);
        list.push(0xFD);
        list.extend_from_slice(&name);
        list.push(0xFD);
        list.extend_from_slice(&content_type);
    }
    Ok(list)
}

/// Splits `PATH;name=NAME;type=TYPE` (either key optional, in any order) into its values.
fn split_attach_spec(spec: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    const KEYS: [&[u8]; 2] = [b";name=", b";type="];
    let mut markers: Vec<(usize, usize)> = Vec::new();
    for (key_index, key) in KEYS.iter().enumerate() {
        let mut start = 0;
        while let Some(offset) = spec[start..].windows(key.len()).position(|window| window == *key) {
            markers.push((start + offset, key_index));
            start += offset + key.len();
        }
    }
    markers.sort_unstable();

    let path_end = markers.first().map_or(spec.len(), |(position, _)| *position);
    let (mut name, mut content_type) = (Vec::new(), Vec::new());
    for (index, &(position, key_index)) in markers.iter().enumerate() {
        let value_start = position + KEYS[key_index].len();
        let value_end = markers.get(index + 1).map_or(spec.len(), |(next, _)| *next);
        let value = spec[value_start..value_end].to_vec();
        if key_index == 0 {
            name = value;
        } else {
            content_type = value;
        }
    }
    (spec[..path_end].to_vec(), name, content_type)
}

/// Collects the library options of `send`: the composing options, then the server
/// settings and secrets.
fn option_entries(args: &SendArgs) -> Result<Entries, String> {
    let composing = !args.attachments.is_empty() || args.html.is_some() || !args.cc.is_empty() || !args.bcc.is_empty() || args.reply_to.is_some() || args.charset.is_some() || !args.headers.is_empty();
    if composing && args.subject.is_none() {
        return Err("The options --attach, --html, --cc, --bcc, --reply-to, --charset and --header compose a message, which needs --subject.".into());
    }

    let mut entries: Entries = Vec::new();
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

    entries.extend(args.server.entries(false)?);
    Ok(entries)
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

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_spec_keeps_semicolons_in_names() {
        let (path, name, content_type) = split_attach_spec(b"/tmp/a.pdf;name=Invoice; 42.pdf;type=application/pdf");
        assert_eq!(path, b"/tmp/a.pdf");
        assert_eq!(name, b"Invoice; 42.pdf");
        assert_eq!(content_type, b"application/pdf");
    }

    #[test]
    fn attach_spec_without_keys() {
        assert_eq!(split_attach_spec(b"/tmp/a;b.pdf"), (b"/tmp/a;b.pdf".to_vec(), Vec::new(), Vec::new()));
    }

    #[test]
    fn attach_marks_refused() {
        assert!(attachment_list(&[OsString::from("/tmp/a.pdf;name=x")]).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let error = attachment_list(&[OsString::from_vec(b"/tmp/a.pdf;name=x\xfe/tmp/b".to_vec())]).unwrap_err();
            assert!(error.contains("0xFE"), "{error}");
        }
    }
}
