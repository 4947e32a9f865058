//! The output after a call: the transcript, the error on stderr, or one JSON object on
//! stdout.

use std::ffi::OsString;
use std::io::{self, Write};

use mvsmtp::ffi::{diagnostics, status};

/// The output format of a call's result, set by --json and --transcript.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputFormat {
    pub json: bool,
    pub transcript: bool,
}

impl OutputFormat {
    /// Finds --json and --transcript among raw arguments, for reporting an error in
    /// arguments that could not be parsed. Arguments after `--` are operands.
    pub fn scan(args: &[OsString]) -> OutputFormat {
        let mut format = OutputFormat::default();
        for arg in args.iter().take_while(|arg| *arg != "--") {
            if arg == "--json" {
                format.json = true;
            } else if arg == "--transcript" {
                format.transcript = true;
            }
        }
        format
    }

    /// Prints the result of the library call that just returned `code` on this thread and
    /// returns `code`.
    ///
    /// With --json, stdout gets one JSON object and stderr gets nothing. Otherwise the
    /// transcript goes to stdout when requested, and a failure to stderr.
    pub fn finish(self, code: i32, message_id: Option<&str>) -> i32 {
        let reply_code = diagnostics::last_reply_code();
        let error = diagnostics::last_error();

        if self.json {
            let transcript = self.transcript.then(diagnostics::last_transcript);
            print_stdout(&json_result(code, reply_code, &error, message_id, transcript.as_deref()));
            return code;
        }

        if self.transcript {
            print_stdout(&diagnostics::last_transcript());
        }
        if code != status::SMTP_OK {
            let name = status::status_name(code).to_string_lossy();
            if reply_code != 0 {
                eprintln!("mvsmtp: {name} (reply {reply_code}): {error}");
            } else {
                eprintln!("mvsmtp: {name}: {error}");
            }
        }
        code
    }

    /// Reports invalid arguments that the tool found before calling the library, and
    /// returns `SMTP_INVALID_ARGUMENT`.
    ///
    /// The message always goes to stderr. With --json, stdout also gets the JSON object, so
    /// a caller that parses it gets every outcome.
    pub fn usage_error(self, message: &str) -> i32 {
        let code = status::SMTP_INVALID_ARGUMENT;
        eprintln!("mvsmtp: SMTP_INVALID_ARGUMENT: {message}");
        if self.json {
            let transcript = self.transcript.then_some("");
            print_stdout(&json_result(code, 0, message, None, transcript));
        }
        code
    }
}

fn print_stdout(text: &str) {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Formats the JSON object of one result, followed by a line break. `message_id` and
/// `transcript` are left out when `None`.
pub fn json_result(code: i32, reply_code: i32, error: &str, message_id: Option<&str>, transcript: Option<&str>) -> String {
    let name = status::status_name(code).to_string_lossy();
    let mut json = format!(
        "{{\"status\":{code},\"status_name\":{},\"reply_code\":{reply_code},\"error\":{}",
        json_string(&name),
        json_string(error)
    );
    if let Some(message_id) = message_id {
        json.push_str(",\"message_id\":");
        json.push_str(&json_string(message_id));
    }
    if let Some(transcript) = transcript {
        json.push_str(",\"transcript\":");
        json.push_str(&json_string(transcript));
    }
    json.push_str("}\n");
    json
}

/// Returns `text` as a JSON string literal (RFC 8259): quotes, backslashes and control
/// characters are escaped, and other characters stay as they are in UTF-8.
pub fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for ch in text.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            ch if u32::from(ch) < 0x20 => quoted.push_str(&format!("\\u{:04x}", u32::from(ch))),
            ch => quoted.push(ch),
        }
    }
    quoted.push('"');
    quoted
}

/// Writes text to standard output, ignoring a reader that has gone away (as with
/// `mvsmtp statuses | head -1`), since `print!` would panic there.
pub fn write_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_plain() {
        assert_eq!(json_string("SMTP_OK"), "\"SMTP_OK\"");
        assert_eq!(json_string(""), "\"\"");
    }

    #[test]
    fn json_string_escapes_quote_and_backslash() {
        assert_eq!(json_string(r#"say "hi" \ bye"#), r#""say \"hi\" \\ bye""#);
    }

    #[test]
    fn json_string_escapes_controls() {
        assert_eq!(json_string("a\nb\r\tc\u{8}\u{c}"), r#""a\nb\r\tc\b\f""#);
        assert_eq!(json_string("\u{0}\u{1f}"), r#""\u0000\u001f""#);
    }

    #[test]
    fn json_string_keeps_unicode() {
        // DEL and non-ASCII characters need no escape in JSON.
        assert_eq!(json_string("\u{7f}été \u{f8fd}"), "\"\u{7f}été \u{f8fd}\"");
    }

    #[test]
    fn result_leaves_out_unknown_fields() {
        assert_eq!(json_result(0, 250, "", None, None), "{\"status\":0,\"status_name\":\"SMTP_OK\",\"reply_code\":250,\"error\":\"\"}\n");
    }

    #[test]
    fn result_with_all_fields() {
        let json = json_result(11, 550, "rejected \"x\"", Some("<id@example.test>"), Some("S: 220 ok\nC: QUIT"));
        assert_eq!(
            json,
            "{\"status\":11,\"status_name\":\"SMTP_RECIPIENTS_REJECTED\",\"reply_code\":550,\"error\":\"rejected \\\"x\\\"\",\"message_id\":\"<id@example.test>\",\"transcript\":\"S: 220 ok\\nC: QUIT\"}\n"
        );
    }

    #[test]
    fn scan_stops_at_double_dash() {
        let args: Vec<OsString> = ["-t", "--json", "--", "--transcript"].iter().map(OsString::from).collect();
        assert_eq!(OutputFormat::scan(&args), OutputFormat { json: true, transcript: false });
    }
}
