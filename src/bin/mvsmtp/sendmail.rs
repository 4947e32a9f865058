//! `mvsmtp sendmail`: sends a ready-made message with the arguments of the sendmail
//! command, so that programs and scripts written for sendmail work unchanged.

use std::ffi::OsString;
use std::io::Read;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use mvsmtp::ffi::calls;
use mvsmtp::request::RawRequest;

use crate::getopt::{self, Arg, ScanError, Spec};
use crate::headers;
use crate::os_bytes;
use crate::report::OutputFormat;
use crate::settings::{borrow_entries, ServerArgs};

const SPEC: Spec = Spec {
    short_flags: b"timv",
    short_with_value: b"frFob",
    long_flags: &["transcript", "json", "help"],
    long_with_value: &["host", "port", "helo", "timeout", "tls", "user", "password-file", "oauth-token-file", "profile", "option"],
};

/// The values of sendmail's `-o` that are accepted and ignored: -oi (a lone dot does not end
/// the message), -od (delivery mode), -oe (error reporting) and -om (send to the sender too).
const IGNORED_O_OPTIONS: &[&str] = &["i", "di", "db", "em", "ee", "ep", "eq", "ew", "m"];

/// The sendmail flags that are accepted and ignored, for the help text and error messages.
const IGNORED_FLAGS: &str = "-i, -oi, -odi, -odb, -oem, -oee, -oep, -oeq, -oew, -om, -m, -v, -bm";

pub const HELP: &str = "\
Send a ready-made message the way the sendmail command does.

Usage: mvsmtp sendmail [OPTIONS] [RECIPIENT]... < MESSAGE
       sendmail [OPTIONS] [RECIPIENT]... < MESSAGE     (through a link named sendmail)

Standard input contains the whole message: header lines, a blank line, then the text. It is
sent as it is, except that -t removes the Bcc header, -F may add a From header, and a
message without a Date or Message-ID header gets one, as sendmail does. Every
line ending (and every attribute mark, byte 0xFE) is sent as CRLF, and lines that start
with \".\" are dot-stuffed, so a line with a single \".\" never ends the message early,
with or without -i.

Recipients:
  RECIPIENT...        Envelope recipients. One argument may contain several, separated by ','.
  -t                  Also take the recipients from the message's To, Cc and Bcc headers,
                      and remove the Bcc header (with its continuation lines) before sending.

Sender:
  -f ADDRESS          The envelope sender (MAIL FROM). -f '' sends the null sender <>.
                      Without -f: the address of the From header, or of the Sender header
                      when From does not contain exactly one. With neither, the call fails.
  -r ADDRESS          The same as -f.
  -F NAME             The sender's full name. A message without a From header gets
                      \"From: NAME <ADDRESS>\", where ADDRESS is the envelope sender.

Accepted and ignored:
  -i, -oi, -odi, -odb, -oem, -oee, -oep, -oeq, -oew, -om, -m, -v, -bm
Any other flag is an error (exit status 2).
";

/// The help for the options that the `sendmail` and `mail` modes share.
pub const SHARED_HELP: &str = "\
Server (long options only; without --host and --profile the profile \"default\" is used):
  --profile NAME      Named block of options in the configuration file ($MVSMTP_CONFIG,
                      ~/.mvsmtp.conf or /etc/mvsmtp.conf).
  --host HOST         Mail server host name or IP address.
  --port PORT         Server port. The default is 25, or 465 with --tls implicit.
  --helo NAME         Name to give in EHLO; defaults to this machine's host name.
  --tls MODE          none, starttls, implicit or opportunistic.
  --timeout SECONDS   Wait for connecting, the TLS handshake, each write and each reply
                      (1 to 3600; default 30).
  --user NAME         User name for authentication.
  --password-file FILE
                      File whose first line is the password. The MVSMTP_PASSWORD
                      environment variable and profiles work too; passwords are never
                      taken as arguments.
  --oauth-token-file FILE
                      File whose first line is an OAuth 2.0 access token (XOAUTH2); the
                      MVSMTP_OAUTH_TOKEN environment variable works too.
  --option NAME=VALUE Any library option, such as tls_ca_file=/etc/ssl/my-ca.pem.
                      Repeatable. Not for password or oauth_token.

Output:
  --transcript        Print the SMTP conversation on standard output (the message appears
                      only as its size, and credentials are hidden).
  --json              Print one JSON object on standard output: status, status_name,
                      reply_code, error, message_id (when known) and, with --transcript,
                      transcript. Library errors then go only into the object.
  --help              Print this help.

Exit status: the library's status code, 0 when the server accepted the message for every
recipient (mvsmtp statuses lists them all).
";

/// The parsed arguments of the mode.
#[derive(Default)]
struct SendmailArgs {
    server: ServerArgs,
    output: OutputFormat,
    envelope: EnvelopeRules,
    help: bool,
}

/// The rules that build the envelope of a ready-made message: from arguments, from its
/// headers, or both.
#[derive(Default)]
pub struct EnvelopeRules {
    /// Whether the recipients come from the To, Cc and Bcc headers, with the Bcc header
    /// removed, as with sendmail -t.
    pub recipients_from_headers: bool,
    /// The envelope sender given as an argument. Without it, the From or Sender header gives it.
    pub sender: Option<OsString>,
    /// The sender's full name, for a From header added to a message that has none.
    pub full_name: Option<OsString>,
    /// Recipients given as arguments.
    pub recipients: Vec<OsString>,
    /// The option that sets the sender, such as `-f`, named when no sender can be found.
    pub sender_option: &'static str,
    /// Whether the mode takes recipients as arguments, as sendmail does and the outbox
    /// does not; the message for a missing recipient names them only then.
    pub takes_recipient_arguments: bool,
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

    let entries = match parsed.server.entries(true) {
        Ok(entries) => entries,
        Err(message) => return output.usage_error(&message),
    };

    let mut message = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut message) {
        return output.usage_error(&format!("Reading the message from standard input failed: {error}."));
    }

    let envelope = match envelope(&parsed.envelope, &message) {
        Ok(envelope) => envelope,
        Err(problem) => return output.usage_error(&problem),
    };

    let borrowed = borrow_entries(&entries);
    let request = RawRequest { from: Some(&envelope.sender), to: Some(&envelope.recipients), body: Some(&envelope.message) };
    let code = calls::send_with_entries(&borrowed, request);
    let message_id = mvsmtp::audit::message_id(&envelope.message);
    output.finish(code, message_id.as_deref())
}

fn parse(args: &[OsString]) -> Result<SendmailArgs, String> {
    let scanned = getopt::scan(args, &SPEC).map_err(|error| match error {
        ScanError::Unknown(flag) if flag.starts_with("--") => format!("Unknown option {flag}. See mvsmtp sendmail --help."),
        ScanError::Unknown(flag) => unsupported(&flag),
        other => format!("{other} See mvsmtp sendmail --help."),
    })?;

    let mut parsed = SendmailArgs::default();
    parsed.envelope.sender_option = "-f";
    parsed.envelope.takes_recipient_arguments = true;
    for arg in scanned {
        match arg {
            Arg::Operand(recipient) => parsed.envelope.recipients.push(recipient),
            Arg::Short(b't', _) => parsed.envelope.recipients_from_headers = true,
            Arg::Short(b'f' | b'r', value) => parsed.envelope.sender = value,
            Arg::Short(b'F', value) => parsed.envelope.full_name = value,
            Arg::Short(b'o', Some(value)) => {
                if !IGNORED_O_OPTIONS.iter().any(|ignored| value == *ignored) {
                    return Err(unsupported(&format!("-o{}", value.to_string_lossy())));
                }
            }
            Arg::Short(b'b', Some(value)) => {
                if value != "m" {
                    return Err(unsupported(&format!("-b{}", value.to_string_lossy())));
                }
            }
            Arg::Short(_, _) => {}
            Arg::Long(name, None) => match name.as_str() {
                "json" => parsed.output.json = true,
                "transcript" => parsed.output.transcript = true,
                "help" => parsed.help = true,
                _ => {}
            },
            Arg::Long(name, Some(value)) => {
                parsed.server.set_long(&name, &value)?;
            }
        }
    }
    Ok(parsed)
}

fn unsupported(flag: &str) -> String {
    format!(
        "The sendmail flag {flag} is not supported. mvsmtp sendmail takes -t, -f, -r and -F, accepts and ignores {IGNORED_FLAGS}, and reads its server settings from long options (see mvsmtp sendmail --help)."
    )
}

/// The envelope and the message as they are sent.
#[derive(Debug)]
pub struct Envelope {
    pub sender: Vec<u8>,
    /// Recipients separated by ','.
    pub recipients: Vec<u8>,
    pub message: Vec<u8>,
}

/// Works out the sender and the recipients, and removes the Bcc header when the recipients
/// come from the headers.
pub fn envelope(rules: &EnvelopeRules, message: &[u8]) -> Result<Envelope, String> {
    let fields = headers::fields(message);

    let mut recipients: Vec<Vec<u8>> = Vec::new();
    if rules.recipients_from_headers {
        for name in ["To", "Cc", "Bcc"] {
            for field in fields.iter().filter(|field| field.is_named(name)) {
                let addresses = headers::addresses(&field.value).map_err(|problem| format!("The {name} header of the message {problem}."))?;
                for address in addresses {
                    if !recipients.contains(&address) {
                        recipients.push(address);
                    }
                }
            }
        }
    }
    for recipient in &rules.recipients {
        let recipient = os_bytes(recipient);
        if !recipients.contains(&recipient) {
            recipients.push(recipient);
        }
    }
    if recipients.is_empty() {
        return Err(if rules.recipients_from_headers && rules.takes_recipient_arguments {
            "No recipient: the To, Cc and Bcc headers of the message contain no address, and none was given as an argument.".into()
        } else if rules.recipients_from_headers {
            "No recipient: the To, Cc and Bcc headers of the message contain no address. Add a To header.".into()
        } else {
            "No recipient: give the addresses after the options, or pass -t to take them from the To, Cc and Bcc headers.".into()
        });
    }

    let sender = match &rules.sender {
        Some(sender) => os_bytes(sender),
        None => sender_from_headers(&fields, rules.sender_option)?,
    };

    let mut sent = if rules.recipients_from_headers { headers::without_fields(message, &fields, "Bcc") } else { message.to_vec() };
    if let Some(full_name) = &rules.full_name {
        let has_from = fields.iter().any(|field| field.is_named("From"));
        if !has_from && !sender.is_empty() {
            let mut from_line = format!("From: {} <", display_name(full_name)?).into_bytes();
            from_line.extend_from_slice(&sender);
            from_line.extend_from_slice(b">\n");
            sent.splice(0..0, from_line);
        }
    }

    add_missing_date_and_id(&mut sent, &fields, &sender);

    Ok(Envelope { sender, recipients: recipients.join(&b","[..]), message: sent })
}

/// Adds a Date header, which RFC 5322 requires, and a Message-ID, which it recommends, to
/// a message that lacks them, as sendmail does for a message submitted on its machine. The
/// Message-ID is on the sender's domain.
fn add_missing_date_and_id(message: &mut Vec<u8>, fields: &[headers::Field<'_>], sender: &[u8]) {
    let mut added = Vec::new();
    if !fields.iter().any(|field| field.is_named("Date")) {
        added.extend_from_slice(format!("Date: {}\n", mail_builder::headers::date::Date::now().to_rfc822()).as_bytes());
    }
    if !fields.iter().any(|field| field.is_named("Message-ID")) {
        let domain = sender.rsplit(|&b| b == b'@').next().filter(|domain| sender.contains(&b'@') && !domain.is_empty() && domain.is_ascii());
        let domain = domain.map_or_else(|| "localhost".to_owned(), |domain| String::from_utf8_lossy(domain).into_owned());
        added.extend_from_slice(format!("Message-ID: <{}>\n", mvsmtp::compose::new_message_id(&domain)).as_bytes());
    }
    message.splice(0..0, added);
}

/// Returns the address of the From header when it contains exactly one, else that of the
/// Sender header (RFC 5322 requires Sender when From contains several). `sender_option` is
/// the option that the error message suggests instead.
fn sender_from_headers(fields: &[headers::Field<'_>], sender_option: &str) -> Result<Vec<u8>, String> {
    for name in ["From", "Sender"] {
        let Some(field) = fields.iter().find(|field| field.is_named(name)) else { continue };
        let mut addresses = headers::addresses(&field.value).map_err(|problem| format!("The {name} header of the message {problem}."))?;
        if addresses.len() == 1 {
            return Ok(addresses.remove(0));
        }
    }
    Err(format!("No envelope sender: pass {sender_option} ADDRESS, or give the message a From header with one address (or a Sender header)."))
}

/// Formats the -F name for the From header: a quoted string when it is ASCII, or RFC 2047
/// encoded words in UTF-8 otherwise.
fn display_name(full_name: &OsString) -> Result<String, String> {
    let Some(name) = full_name.to_str() else {
        return Err("The -F name is not valid UTF-8. Pass the name in UTF-8.".into());
    };
    if name.chars().any(char::is_control) {
        return Err("The -F name contains a line break or another control character. Keep it on one line.".into());
    }
    if name.is_ascii() {
        return Ok(format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\"")));
    }

    // Each encoded word must stay within 75 characters (RFC 2047 section 2): 45 bytes of
    // text become 60 base64 characters, plus 12 for "=?UTF-8?B?" and "?=".
    let mut words = Vec::new();
    let mut chunk = String::new();
    for ch in name.chars() {
        if chunk.len() + ch.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(ch);
    }
    words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(&chunk)));
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<SendmailArgs, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn harmless_flags_accepted() {
        let parsed = parsed(&["-i", "-oi", "-odi", "-oem", "-v", "-bm", "-m", "a@example.test"]).unwrap();
        assert_eq!(parsed.envelope.recipients, ["a@example.test"]);
    }

    #[test]
    fn other_flags_named() {
        for flag in ["-q", "-bs", "-oQ/tmp", "-N"] {
            let error = parsed(&[flag, "never", "a@example.test"]).map(|_| ()).unwrap_err();
            assert!(error.contains(&format!("flag {flag} ")), "{flag}: {error}");
        }
    }

    #[test]
    fn sender_and_name_forms() {
        let parsed = parsed(&["-ti", "-fsender@example.test", "-F", "Jo Doe"]).unwrap();
        assert!(parsed.envelope.recipients_from_headers);
        assert_eq!(parsed.envelope.sender.as_deref(), Some("sender@example.test".as_ref()));
        assert_eq!(parsed.envelope.full_name.as_deref(), Some("Jo Doe".as_ref()));
    }

    #[test]
    fn server_options_long_only() {
        let parsed = parsed(&["--host", "127.0.0.1", "--option=timeout=5", "--json", "a@example.test"]).unwrap();
        assert_eq!(parsed.server.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(parsed.server.options, ["timeout=5"]);
        assert!(parsed.output.json);
    }

    #[test]
    fn sender_taken_from_headers() {
        let message = b"From: Jo <jo@example.test>\nTo: a@example.test\n\ntext\n";
        assert_eq!(sender_from_headers(&headers::fields(message), "-f").unwrap(), b"jo@example.test");
        let message = b"From: a@example.test, b@example.test\nSender: s@example.test\n\ntext\n";
        assert_eq!(sender_from_headers(&headers::fields(message), "-f").unwrap(), b"s@example.test");
        assert!(sender_from_headers(&headers::fields(b"To: a@example.test\n\ntext\n"), "-f").unwrap_err().contains("-f ADDRESS"));
    }

    /// Returns the message without the Date and Message-ID lines that `envelope` adds at
    /// the top.
    fn without_added_headers(message: &[u8]) -> &[u8] {
        let mut rest = message;
        while rest.starts_with(b"Date: ") || rest.starts_with(b"Message-ID: ") {
            let line_end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |index| index + 1);
            rest = &rest[line_end..];
        }
        rest
    }

    #[test]
    fn date_and_id_added_when_missing() {
        let parsed = parsed(&["-t"]).unwrap();
        let envelope = envelope(&parsed.envelope, b"From: jo@example.test\nTo: a@example.test\n\ntext\n").unwrap();
        let text = String::from_utf8(envelope.message).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Date: "), "{text}");
        assert!(lines[0].ends_with(" +0000"), "{text}");
        assert!(lines[1].starts_with("Message-ID: <"), "{text}");
        assert!(lines[1].ends_with("@example.test>"), "{text}");
        assert_eq!(&lines[2..], ["From: jo@example.test", "To: a@example.test", "", "text"]);

        let complete = b"Date: Fri, 4 Dec 2026 10:00:00 +0100\nMessage-ID: <x@example.test>\nFrom: jo@example.test\nTo: a@example.test\n\ntext\n";
        assert_eq!(super::envelope(&parsed.envelope, complete).unwrap().message, complete);
    }

    #[test]
    fn full_name_added_without_from() {
        let parsed = parsed(&["-f", "jo@example.test", "-F", "Jo \"JD\" Doe", "a@example.test"]).unwrap();
        let envelope = envelope(&parsed.envelope, b"Subject: s\n\ntext\n").unwrap();
        assert_eq!(without_added_headers(&envelope.message), b"From: \"Jo \\\"JD\\\" Doe\" <jo@example.test>\nSubject: s\n\ntext\n");
        let envelope = super::envelope(&parsed.envelope, b"From: other@example.test\n\ntext\n").unwrap();
        assert_eq!(without_added_headers(&envelope.message), b"From: other@example.test\n\ntext\n");
    }

    #[test]
    fn full_name_encoded_when_not_ascii() {
        assert_eq!(display_name(&OsString::from("Jos\u{e9}")).unwrap(), "=?UTF-8?B?Sm9zw6k=?=");
        let long = "\u{e9}".repeat(40);
        let encoded = display_name(&OsString::from(long)).unwrap();
        assert!(encoded.split(' ').all(|word| word.len() <= 75), "{encoded}");
        assert_eq!(encoded.split(' ').count(), 2, "{encoded}");
    }

    #[test]
    fn recipients_merged_without_repeats() {
        let parsed = parsed(&["-t", "-f", "s@example.test", "b@example.test", "extra@example.test"]).unwrap();
        let message = b"To: A <a@example.test>\nCc: b@example.test\nBcc: hidden@example.test\nSubject: s\n\ntext\n";
        let envelope = envelope(&parsed.envelope, message).unwrap();
        assert_eq!(envelope.recipients, b"a@example.test,b@example.test,hidden@example.test,extra@example.test");
        assert_eq!(without_added_headers(&envelope.message), b"To: A <a@example.test>\nCc: b@example.test\nSubject: s\n\ntext\n");
    }

    #[test]
    fn no_recipient_refused() {
        let parsed = parsed(&["-t", "-f", "s@example.test"]).unwrap();
        assert!(envelope(&parsed.envelope, b"Subject: s\n\ntext\n").unwrap_err().contains("No recipient"));
    }
}
