//! The audit log: one line per message, appended to the file named by the option
//! `log_file=PATH`, so that administrators can see what was sent, to whom and with what result.
//!
//! A line looks like this (wrapped here, one line in the file):
//!
//! ```text
//! 2026-12-04T20:30:00Z server=127.0.0.1:2525 from=<a@x.test> to=<b@x.test>:250,<c@x.test>:550
//!   status=SMTP_PARTIAL reply="250 2.0.0 Ok: queued as X" message-id=<id@x.test>
//! ```
//!
//! The time is UTC. Each recipient carries the reply code to its RCPT TO, or 0 when the
//! conversation ended before it. `reply` is the reply that decided the call, always quoted,
//! or `-` when there was none. `message-id` is left out when the message has no Message-ID
//! header.
//!
//! Replies and header values come from outside, so every control character in any field is
//! written as `?`, which keeps a server from starting a new log line. A field other than
//! `reply` is quoted the same way as `reply` only when it is empty or contains a space, `"`
//! or `\`, so a line can always be split into fields at the spaces outside quotes.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The attribute mark of 8-bit MultiValue strings, which ends a line of a message body.
const ATTRIBUTE_MARK: u8 = 0xFE;

/// The attribute mark on NLS systems: U+F8FE encoded in UTF-8.
const ATTRIBUTE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBE];

/// The facts about one call that go into its audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the call finished.
    pub time: SystemTime,
    /// The server as `host:port`.
    pub server: String,
    /// The envelope sender, or `""` for the null sender.
    pub sender: String,
    /// Each recipient with the reply code to its RCPT TO, or 0 when RCPT TO was not reached.
    pub recipients: Vec<(String, u16)>,
    /// The status name of the call, such as `SMTP_OK`.
    pub status: &'static str,
    /// The reply that decided the call on one line, such as `250 2.0.0 Ok: queued as ABC`.
    pub reply: Option<String>,
    /// The value of the message's Message-ID header.
    pub message_id: Option<String>,
}

/// Formats the audit line of a call, ending in `\n`.
pub fn format_line(record: &AuditRecord) -> String {
    let mut line = format_time(record.time);

    line.push_str(" server=");
    line.push_str(&field_value(&record.server));

    line.push_str(" from=");
    line.push_str(&field_value(&format!("<{}>", record.sender)));

    line.push_str(" to=");
    if record.recipients.is_empty() {
        line.push('-');
    } else {
        let recipients: Vec<String> =
            record.recipients.iter().map(|(address, code)| format!("<{address}>:{code}")).collect();
        line.push_str(&field_value(&recipients.join(",")));
    }

    line.push_str(" status=");
    line.push_str(&field_value(record.status));

    line.push_str(" reply=");
    match &record.reply {
        Some(reply) => line.push_str(&quote(&replace_controls(reply))),
        None => line.push('-'),
    }

    if let Some(message_id) = &record.message_id {
        line.push_str(" message-id=");
        line.push_str(&field_value(message_id));
    }

    line.push('\n');
    line
}

/// Appends one line to the audit log, creating the file with mode 0600 if it does not
/// exist.
///
/// The line is written with a single `write_all` while an exclusive `flock` is held, so
/// lines appended by this function from several threads and processes do not interleave. `line` should come from
/// [`format_line`].
pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;

    // NOTE: flock is advisory and only protects writers that also take it, and on some
    // network file systems it is not enforced across machines.
    let _lock = lock_exclusive(&file)?;
    let mut writer = &file;
    writer.write_all(line.as_bytes())
}

/// Finds the Message-ID header in the header section of a raw message body and returns its
/// trimmed value, or `None` when there is none or it is empty.
///
/// The header section ends at the first empty line, or at the first line that is neither a
/// header field nor a continuation line, so text in the body is never taken for a header.
/// Lines may end in CRLF, LF, CR or an attribute mark, as message bodies passed by callers do.
pub fn message_id(body: &[u8]) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    let mut in_message_id = false;

    for line in BodyLines::new(body) {
        if line.is_empty() {
            break;
        }

        // A line starting with a space or a tab continues the field above it (RFC 5322,
        // section 2.2.3). Unfolding removes only the line break.
        if line[0] == b' ' || line[0] == b'\t' {
            if in_message_id {
                if let Some(value) = value.as_mut() {
                    value.extend_from_slice(line);
                }
            }
            continue;
        }

        let Some(field_value) = header_field_value(line, b"Message-ID") else {
            break;
        };
        if value.is_some() {
            // Only the first Message-ID counts, but the scan continues to skip its folds.
            in_message_id = false;
            continue;
        }
        in_message_id = field_value.is_some();
        value = field_value.map(<[u8]>::to_vec);
    }

    let value = value?;
    let text = String::from_utf8_lossy(&value).trim().to_string();
    if text.is_empty() {
        None
    } else {
        Some(text)
    }
}

/// Classifies a header line: `None` when it is not a header field at all, `Some(None)` for
/// a field with another name, and `Some(Some(value))` for the field `expected_name`.
fn header_field_value<'a>(line: &'a [u8], expected_name: &[u8]) -> Option<Option<&'a [u8]>> {
    let colon = line.iter().position(|&byte| byte == b':')?;

    // RFC 5322 names are printable ASCII without ':'. The obsolete syntax allows spaces
    // and tabs before the colon, which are ignored here.
    let name = &line[..colon];
    let name_end = name.iter().rposition(|&byte| byte != b' ' && byte != b'\t').map_or(0, |last| last + 1);
    let name = &name[..name_end];
    if name.is_empty() || !name.iter().all(|&byte| (33..=126).contains(&byte)) {
        return None;
    }

    if name.eq_ignore_ascii_case(expected_name) {
        Some(Some(&line[colon + 1..]))
    } else {
        Some(None)
    }
}

/// The lines of a message body, split at CRLF, LF, CR and attribute marks.
struct BodyLines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> BodyLines<'a> {
    fn new(body: &'a [u8]) -> Self {
        BodyLines { rest: Some(body) }
    }
}

impl<'a> Iterator for BodyLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        for index in 0..rest.len() {
            let ending = match rest[index] {
                b'\r' if rest.get(index + 1) == Some(&b'\n') => 2,
                b'\r' | b'\n' | ATTRIBUTE_MARK => 1,
                _ if rest[index..].starts_with(&ATTRIBUTE_MARK_UTF8) => ATTRIBUTE_MARK_UTF8.len(),
                _ => continue,
            };
            self.rest = Some(&rest[index + ending..]);
            return Some(&rest[..index]);
        }

        // The last line has no ending.
        self.rest = None;
        Some(rest)
    }
}

/// Holds an exclusive `flock` on a file and releases it when dropped.
#[cfg(unix)]
struct FileLock<'a>(&'a std::fs::File);

#[cfg(unix)]
impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // Closing the file would release the lock too, so a failed unlock loses nothing.
        // SAFETY: the descriptor belongs to the borrowed file, which outlives this guard.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &std::fs::File) -> std::io::Result<FileLock<'_>> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: the descriptor belongs to `file`, which is open for the whole call.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if result == 0 {
            return Ok(FileLock(file));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

// NOTE: on other systems the line is appended without a lock.
#[cfg(not(unix))]
fn lock_exclusive(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// Formats a time as RFC 3339 in UTC with whole seconds, such as `2026-12-04T20:30:00Z`.
fn format_time(time: SystemTime) -> String {
    // Sub-second parts are dropped, rounding toward the past, also before 1970.
    let seconds: i64 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => {
            let before = before.duration();
            -(before.as_secs() as i64) - i64::from(before.subsec_nanos() > 0)
        }
    };

    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_date(days);

    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Converts a count of days since 1970-01-01 into a Gregorian (year, month, day).
fn civil_date(days_since_epoch: i64) -> (i64, u32, u32) {
    // The Gregorian calendar repeats every 400 years, which are 146,097 days. Whole cycles
    // are skipped at once, so the loops below run at most 400 + 12 times.
    const DAYS_PER_400_YEARS: i64 = 146_097;
    let mut year = 1970 + 400 * days_since_epoch.div_euclid(DAYS_PER_400_YEARS);
    let mut day_of_cycle = days_since_epoch.rem_euclid(DAYS_PER_400_YEARS);

    loop {
        let year_length = if is_leap_year(year) { 366 } else { 365 };
        if day_of_cycle < year_length {
            break;
        }
        day_of_cycle -= year_length;
        year += 1;
    }

    let february = if is_leap_year(year) { 29 } else { 28 };
    let month_lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in month_lengths {
        if day_of_cycle < length {
            break;
        }
        day_of_cycle -= length;
        month += 1;
    }

    (year, month, day_of_cycle as u32 + 1)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Prepares a field other than `reply`: control characters become `?`, and the value is
/// quoted when it is empty or would otherwise break the split into fields.
fn field_value(text: &str) -> String {
    let text = replace_controls(text);
    if text.is_empty() || text.contains([' ', '"', '\\']) {
        quote(&text)
    } else {
        text
    }
}

/// Replaces every control character, and the Unicode line and paragraph separators that
/// some viewers also break lines at, with `?`.
fn replace_controls(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() || c == '\u{2028}' || c == '\u{2029}' { '?' } else { c })
        .collect()
}

/// Puts `"` around a value, with `\` before each `"` and `\` inside it.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;
    use std::time::Duration;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn record() -> AuditRecord {
        AuditRecord {
            time: at(1_796_416_200),
            server: "127.0.0.1:2525".into(),
            sender: "a@x.test".into(),
            recipients: vec![("b@x.test".into(), 250), ("c@x.test".into(), 550)],
            status: "SMTP_PARTIAL",
            reply: Some("250 2.0.0 Ok: queued as X".into()),
            message_id: Some("<id@x.test>".into()),
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mvsmtp-audit-test-{}-{name}.log", std::process::id()))
    }

    #[test]
    fn time_known_instants() {
        let cases = [
            (at(0), "1970-01-01T00:00:00Z"),
            (at(951_782_400), "2000-02-29T00:00:00Z"),
            (at(951_868_799), "2000-02-29T23:59:59Z"),
            (at(1_709_164_800), "2024-02-29T00:00:00Z"),
            (at(4_107_542_400), "2100-03-01T00:00:00Z"),
            (at(1_796_416_200), "2026-12-04T20:30:00Z"),
            (at(1_796_416_200) + Duration::from_millis(999), "2026-12-04T20:30:00Z"),
            (at(253_402_300_799), "9999-12-31T23:59:59Z"),
            (UNIX_EPOCH - Duration::from_secs(1), "1969-12-31T23:59:59Z"),
            (UNIX_EPOCH - Duration::from_millis(500), "1969-12-31T23:59:59Z"),
            (UNIX_EPOCH - Duration::from_secs(86_400 * 365), "1969-01-01T00:00:00Z"),
        ];
        for (time, expected) in cases {
            assert_eq!(format_time(time), expected);
        }
    }

    #[test]
    fn civil_date_every_day_continuous() {
        // Walks 2,000 years day by day from 1900 and checks that dates advance by one.
        let mut previous = civil_date(-25_567);
        assert_eq!(previous, (1900, 1, 1));
        for days in -25_566..705_000 {
            let date = civil_date(days);
            let (year, month, day) = previous;
            let next_day = (year, month, day + 1);
            let next_month = (year, month + 1, 1);
            let next_year = (year + 1, 1, 1);
            assert!(date == next_day || date == next_month || date == next_year, "{previous:?} then {date:?}");
            previous = date;
        }
    }

    #[test]
    fn line_matches_documented_example() {
        let expected = "2026-12-04T20:30:00Z server=127.0.0.1:2525 from=<a@x.test> to=<b@x.test>:250,<c@x.test>:550 status=SMTP_PARTIAL reply=\"250 2.0.0 Ok: queued as X\" message-id=<id@x.test>\n";
        assert_eq!(format_line(&record()), expected);
    }

    #[test]
    fn line_without_optional_fields() {
        let record = AuditRecord {
            sender: String::new(),
            recipients: vec![("b@x.test".into(), 0)],
            status: "SMTP_CONNECT_FAILED",
            reply: None,
            message_id: None,
            ..record()
        };
        let line = format_line(&record);

        assert!(line.contains(" from=<> "), "{line}");
        assert!(line.contains(" to=<b@x.test>:0 "), "{line}");
        assert!(line.ends_with(" status=SMTP_CONNECT_FAILED reply=-\n"), "{line}");
        assert!(!line.contains("message-id"), "{line}");
    }

    #[test]
    fn line_without_recipients() {
        let line = format_line(&AuditRecord { recipients: Vec::new(), ..record() });
        assert!(line.contains(" to=- "), "{line}");
    }

    #[test]
    fn reply_quotes_escaped() {
        let reply = r#"550 5.7.1 "bad" \ path"#.to_string();
        let line = format_line(&AuditRecord { reply: Some(reply), ..record() });
        assert!(line.contains(r#" reply="550 5.7.1 \"bad\" \\ path" "#), "{line}");
    }

    #[test]
    fn fields_with_spaces_quoted() {
        let record = AuditRecord {
            sender: "\"john smith\"@x.test".into(),
            message_id: Some("<a b@x.test>".into()),
            ..record()
        };
        let line = format_line(&record);

        assert!(line.contains(r#" from="<\"john smith\"@x.test>" "#), "{line}");
        assert!(line.ends_with(" message-id=\"<a b@x.test>\"\n"), "{line}");
    }

    #[test]
    fn control_characters_replaced() {
        let record = AuditRecord {
            server: "host\n:25".into(),
            sender: "a\r@x.test".into(),
            recipients: vec![("b\u{0}@x.test".into(), 250)],
            reply: Some("250 ok\r\n2026-01-01T00:00:00Z forged\u{7f}\u{85}\u{2028}".into()),
            message_id: Some("<id\t@x.test>".into()),
            ..record()
        };
        let line = format_line(&record);

        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'), "{line:?}");
        assert!(!line[..line.len() - 1].chars().any(char::is_control), "{line:?}");
        assert!(line.contains(" server=host?:25 "), "{line}");
        assert!(line.contains(" from=<a?@x.test> "), "{line}");
        assert!(line.contains(" to=<b?@x.test>:250 "), "{line}");
        assert!(line.contains(" reply=\"250 ok??2026-01-01T00:00:00Z forged???\" "), "{line}");
        assert!(line.contains(" message-id=<id?@x.test>"), "{line}");
    }

    #[test]
    fn message_id_simple() {
        let body = b"From: a@x.test\r\nMessage-ID: <abc@x.test>\r\nSubject: hi\r\n\r\ntext\r\n";
        assert_eq!(message_id(body).as_deref(), Some("<abc@x.test>"));
    }

    #[test]
    fn message_id_name_case_and_spacing() {
        assert_eq!(message_id(b"message-id:<a@x>\n\n").as_deref(), Some("<a@x>"));
        assert_eq!(message_id(b"MESSAGE-ID :   <a@x>   \n\n").as_deref(), Some("<a@x>"));
    }

    #[test]
    fn message_id_folded() {
        let body = b"Subject: x\nMessage-ID:\n <folded@x.test>\nTo: b@x.test\n\nbody\n";
        assert_eq!(message_id(body).as_deref(), Some("<folded@x.test>"));

        let split = b"Message-Id: <part1\r\n\t.part2@x.test>\r\n\r\n";
        assert_eq!(message_id(split).as_deref(), Some("<part1\t.part2@x.test>"));
    }

    #[test]
    fn message_id_ignores_other_folds() {
        let body = b"Received: from a\n Message-ID: <not@x.test>\nSubject: s\n\n";
        assert_eq!(message_id(body), None);
    }

    #[test]
    fn message_id_absent_or_empty() {
        assert_eq!(message_id(b""), None);
        assert_eq!(message_id(b"Subject: x\r\n\r\nhello\r\n"), None);
        assert_eq!(message_id(b"Message-ID:   \r\n\r\n"), None);
        assert_eq!(message_id(b"Message-IDs: <a@x>\r\n\r\n"), None);
    }

    #[test]
    fn message_id_in_body_ignored() {
        assert_eq!(message_id(b"Subject: x\r\n\r\nMessage-ID: <body@x.test>\r\n"), None);
        assert_eq!(message_id(b"Hello there\nMessage-ID: <text@x.test>\n"), None);
        assert_eq!(message_id(b"Subject: x\r\r\nMessage-ID: <a@x>\r\n"), None);
    }

    #[test]
    fn message_id_first_one_wins() {
        let body = b"Message-ID: <first@x>\n\t\nMessage-ID: <second@x>\n continued\n\n";
        assert_eq!(message_id(body).as_deref(), Some("<first@x>"));
    }

    #[test]
    fn message_id_with_marks() {
        let byte_marks = b"Subject: x\xFEMessage-ID: <mark@x.test>\xFE\xFEbody";
        assert_eq!(message_id(byte_marks).as_deref(), Some("<mark@x.test>"));

        let utf8_marks = "Subject: x\u{F8FE}Message-ID:\u{F8FE} <nls@x.test>\u{F8FE}\u{F8FE}body";
        assert_eq!(message_id(utf8_marks.as_bytes()).as_deref(), Some("<nls@x.test>"));

        let body_after_marks = "Subject: x\u{F8FE}\u{F8FE}Message-ID: <b@x.test>";
        assert_eq!(message_id(body_after_marks.as_bytes()), None);
    }

    #[test]
    fn message_id_without_final_line_ending() {
        assert_eq!(message_id(b"Message-ID: <last@x.test>").as_deref(), Some("<last@x.test>"));
    }

    #[cfg(unix)]
    #[test]
    fn append_creates_private_file() {
        use std::os::unix::fs::PermissionsExt;

        let path = temp_path("mode");
        let _ = std::fs::remove_file(&path);
        append_line(&path, "one\n").unwrap();
        append_line(&path, "two\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();

        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(text, "one\ntwo\n");
    }

    #[test]
    fn append_concurrent_lines_intact() {
        const THREADS: usize = 8;
        const LINES_PER_THREAD: usize = 200;

        let path = temp_path("concurrent");
        let _ = std::fs::remove_file(&path);

        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for index in 0..LINES_PER_THREAD {
                        let mut line = format_line(&AuditRecord {
                            server: format!("thread{thread}:{index}"),
                            reply: Some("x".repeat(3000 + index)),
                            ..record()
                        });
                        line.insert_str(0, &format!("{thread} {index} "));
                        append_line(&path, &line).unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();

        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), THREADS * LINES_PER_THREAD);
        let mut seen = vec![vec![false; LINES_PER_THREAD]; THREADS];
        for line in lines {
            let mut parts = line.splitn(3, ' ');
            let thread: usize = parts.next().unwrap().parse().unwrap();
            let index: usize = parts.next().unwrap().parse().unwrap();
            let rest = parts.next().unwrap();
            let expected = format_line(&AuditRecord {
                server: format!("thread{thread}:{index}"),
                reply: Some("x".repeat(3000 + index)),
                ..record()
            });
            assert_eq!(format!("{rest}\n"), expected, "line of thread {thread}, index {index} is damaged");
            assert!(!seen[thread][index], "line of thread {thread}, index {index} appears twice");
            seen[thread][index] = true;
        }
    }
}
