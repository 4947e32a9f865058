//! `mvsmtp mail`: composes and sends a message with the arguments of the mailx command,
//! `mail -s SUBJECT [-c CC] [-b BCC] [-r FROM] [-a FILE]... TO... < text`, as scripts and
//! the SENDMAIL statement of ScarletDME call it.

use std::ffi::OsString;
use std::io::Read;

use mvsmtp::ffi::calls;

use crate::getopt::{self, Arg, Spec};
use crate::os_bytes;
use crate::report::OutputFormat;
use crate::sendmail::SHARED_HELP;
use crate::settings::{borrow_entries, ServerArgs};

/// Environment variable with the sender address when -r is not given.
pub const FROM_ENV: &str = "MVSMTP_FROM";

const SPEC: Spec = Spec {
    short_flags: b"nNv",
    short_with_value: b"scbra",
    long_flags: &["transcript", "json", "help"],
    long_with_value: &["host", "port", "helo", "timeout", "tls", "user", "password-file", "oauth-token-file", "profile", "option", "charset"],
};

pub const HELP: &str = "\
Compose and send a message the way the mail (mailx) command does.

Usage: mvsmtp mail [-s SUBJECT] [-c CC] [-b BCC] [-r FROM] [-a FILE]... [OPTIONS] TO... < TEXT
       mail [-s SUBJECT] ... TO... < TEXT     (through a link named mail or mailx)

Standard input contains the text of the message, read until its end. Attribute marks (byte
0xFE, or U+F8FE) in it become line breaks, so a MultiValue record can be mailed as it is.
The message gets From, To, Cc, Subject, Date, Message-ID and MIME headers, and the text
goes out as UTF-8.

Message:
  TO...               Recipients. One argument may contain several, separated by ','.
  -s SUBJECT          The subject (default: none).
  -c ADDRESSES        Cc recipients. Repeatable.
  -b ADDRESSES        Bcc recipients, who get the message but appear in no header.
                      Repeatable.
  -r ADDRESS          The sender, \"address\" or \"Name <address>\": the From header and the
                      envelope sender. Without -r the MVSMTP_FROM environment variable is
                      used; with neither, the call fails (no address is made up from the
                      user and host names).
  -a FILE             Attach a file; its content type is guessed from its name. Repeatable.
                      (As in Heirloom mailx. Some other mail commands use -a to add
                      a header instead.)
  --charset CHARSET   The character set of the subject and text, such as ISO-8859-1
                      (default UTF-8). Text that is not valid UTF-8 needs it.

Accepted and ignored: -n, -N, -v.
Any other flag is an error (exit status 2).
";

/// The parsed arguments of the mode.
#[derive(Default)]
struct MailArgs {
    server: ServerArgs,
    output: OutputFormat,
    subject: Option<OsString>,
    cc: Vec<OsString>,
    bcc: Vec<OsString>,
    sender: Option<OsString>,
    attachments: Vec<OsString>,
    charset: Option<String>,
    recipients: Vec<OsString>,
    help: bool,
}

/// Runs the mode with its arguments (without the program and subcommand names) and
/// returns the exit status.
pub fn run(args: &[OsString]) -> i32 {
    let parsed = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => return OutputFormat::scan(args).usage_error(&message),
    };
    if parsed.help {
        crate::report::write_stdout(&format!("{HELP}\n{SHARED_HELP}"));
        return 0;
    }
    let output = parsed.output;

    let sender = match &parsed.sender {
        Some(sender) => os_bytes(sender),
        None => match std::env::var_os(FROM_ENV).filter(|value| !value.is_empty()) {
            Some(sender) => os_bytes(&sender),
            None => return output.usage_error(&format!("No sender: pass -r ADDRESS, or set the {FROM_ENV} environment variable.")),
        },
    };
    if parsed.recipients.is_empty() && parsed.cc.is_empty() && parsed.bcc.is_empty() {
        return output.usage_error("No recipient: give the addresses after the options, or use -c or -b.");
    }
    let attachments = match attachment_list(&parsed.attachments) {
        Ok(list) => list,
        Err(message) => return output.usage_error(&message),
    };

    let mut entries = Vec::new();
    if !parsed.cc.is_empty() {
        entries.push(("cc".to_owned(), join_lists(&parsed.cc)));
    }
    if !parsed.bcc.is_empty() {
        entries.push(("bcc".to_owned(), join_lists(&parsed.bcc)));
    }
    if let Some(charset) = &parsed.charset {
        entries.push(("charset".to_owned(), charset.clone().into_bytes()));
    }
    match parsed.server.entries(true) {
        Ok(server_entries) => entries.extend(server_entries),
        Err(message) => return output.usage_error(&message),
    }

    let mut text = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut text) {
        return output.usage_error(&format!("Reading the text from standard input failed: {error}."));
    }

    let to = join_lists(&parsed.recipients);
    let subject = parsed.subject.as_deref().map(os_bytes).unwrap_or_default();
    let borrowed = borrow_entries(&entries);
    let code = calls::send_message_with_entries(
        &borrowed,
        calls::MessageArguments { from: Some(&sender), to: Some(&to), subject: Some(&subject), body: Some(&text), attachments: Some(&attachments) },
    );
    // NOTE: the library does not return the Message-ID it wrote into a composed message,
    // so the JSON output has no message_id here.
    output.finish(code, None)
}

fn parse(args: &[OsString]) -> Result<MailArgs, String> {
    let scanned = getopt::scan(args, &SPEC).map_err(|error| format!("{error} See mvsmtp mail --help."))?;

    let mut parsed = MailArgs::default();
    for arg in scanned {
        match arg {
            Arg::Operand(recipient) => parsed.recipients.push(recipient),
            Arg::Short(b's', value) => parsed.subject = value,
            Arg::Short(b'c', Some(value)) => parsed.cc.push(value),
            Arg::Short(b'b', Some(value)) => parsed.bcc.push(value),
            Arg::Short(b'r', value) => parsed.sender = value,
            Arg::Short(b'a', Some(value)) => parsed.attachments.push(value),
            Arg::Short(_, _) => {}
            Arg::Long(name, None) => match name.as_str() {
                "json" => parsed.output.json = true,
                "transcript" => parsed.output.transcript = true,
                "help" => parsed.help = true,
                _ => {}
            },
            Arg::Long(name, Some(value)) if name == "charset" => {
                parsed.charset = Some(value.into_string().map_err(|_| "The value of --charset is not valid UTF-8.".to_owned())?);
            }
            Arg::Long(name, Some(value)) => {
                parsed.server.set_long(&name, &value)?;
            }
        }
    }
    Ok(parsed)
}

/// Joins repeated address arguments into one list.
fn join_lists(values: &[OsString]) -> Vec<u8> {
    values.iter().map(|value| os_bytes(value)).collect::<Vec<_>>().join(&b","[..])
}

/// Builds the library's attachments argument: one path per attribute mark.
fn attachment_list(paths: &[OsString]) -> Result<Vec<u8>, String> {
    let mut list = Vec::new();
    for path in paths {
        let bytes = os_bytes(path);
        if bytes.is_empty() {
            return Err("The -a option needs a file path.".into());
        }
        if let Some(&mark) = bytes.iter().find(|&&b| matches!(b, b'\n' | b'\r' | 0xFC..=0xFE)) {
            return Err(format!(
                "The attachment path {} contains the byte 0x{mark:02X}, which separates attachments and their fields. Rename the file.",
                path.to_string_lossy()
            ));
        }
        if !list.is_empty() {
            list.push(0xFE);
        }
        list.extend_from_slice(&bytes);
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<MailArgs, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn scarletdme_pattern_parsed() {
        let parsed = parsed(&["-s", "Month end", "-c", "cc@example.test", "-b", "bcc@example.test", "to@example.test"]).unwrap();
        assert_eq!(parsed.subject.as_deref(), Some("Month end".as_ref()));
        assert_eq!(parsed.cc, ["cc@example.test"]);
        assert_eq!(parsed.bcc, ["bcc@example.test"]);
        assert_eq!(parsed.recipients, ["to@example.test"]);
    }

    #[test]
    fn repeated_and_attached_values() {
        let parsed = parsed(&["-sHello", "-a", "/tmp/a.pdf", "-a/tmp/b.csv", "-rme@example.test", "-n", "x@example.test", "--charset=ISO-8859-1"]).unwrap();
        assert_eq!(parsed.subject.as_deref(), Some("Hello".as_ref()));
        assert_eq!(parsed.attachments, ["/tmp/a.pdf", "/tmp/b.csv"]);
        assert_eq!(parsed.sender.as_deref(), Some("me@example.test".as_ref()));
        assert_eq!(parsed.charset.as_deref(), Some("ISO-8859-1"));
    }

    #[test]
    fn unknown_flag_named() {
        let error = parsed(&["-s", "x", "-E", "to@example.test"]).map(|_| ()).unwrap_err();
        assert!(error.contains("-E"), "{error}");
    }

    #[test]
    fn attachment_paths_joined_by_marks() {
        let paths: Vec<OsString> = ["/tmp/a.pdf", "/tmp/b.csv"].iter().map(OsString::from).collect();
        assert_eq!(attachment_list(&paths).unwrap(), b"/tmp/a.pdf\xfe/tmp/b.csv");
        assert!(attachment_list(&[OsString::from("bad\nname")]).unwrap_err().contains("0x0A"));
    }
}
