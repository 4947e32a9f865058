//! SMTP replies (RFC 5321, section 4.2) and their enhanced status codes (RFC 3463).
//!
//! Everything here parses bytes that a server sent, so it treats them as hostile: no panics,
//! a limit on the number of lines, and text that is not UTF-8 is kept with replacement
//! characters instead of failing the call.

use std::fmt;

/// Maximum number of lines accepted in one reply. Real EHLO replies have about twenty.
pub const MAX_REPLY_LINES: usize = 512;

/// An enhanced mail system status code such as `5.1.1` (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete reply: the three-digit code, the enhanced status code when the first line
/// starts with one, and the text of every line without its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<EnhancedStatus>,
    pub lines: Vec<String>,
}

impl Reply {
    /// Reports whether the code is 2xx (positive completion).
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Reports whether the code is 3xx, as 354 to DATA is.
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// Reports whether the code is 5xx (permanent failure).
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// Reports whether the server announced that it is closing the connection.
    pub fn is_closing(&self) -> bool {
        self.code == 421
    }

    /// Formats the reply on one line, such as `550 5.1.1 User unknown`, joining the lines
    /// of a multi-line reply with " / ".
    pub fn one_line(&self) -> String {
        let mut text = self.code.to_string();
        let mut first = true;
        for line in &self.lines {
            if line.is_empty() {
                continue;
            }
            text.push_str(if first { " " } else { " / " });
            text.push_str(line);
            first = false;
        }
        text
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// A reply line that could not be accepted, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// The line does not start with a valid three-digit code followed by a space, a hyphen
    /// or the end of the line.
    Malformed(String),
    /// A continuation line carries a different code from the first line.
    CodeMismatch { first: u16, line: String },
    /// The reply has more than [`MAX_REPLY_LINES`] lines.
    TooManyLines,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed(line) => write!(f, "the reply line \"{line}\" does not start with a 3-digit reply code"),
            ReplyError::CodeMismatch { first, line } => {
                write!(f, "the reply line \"{line}\" does not repeat the code {first} of the first line")
            }
            ReplyError::TooManyLines => write!(f, "the reply has more than {MAX_REPLY_LINES} lines"),
        }
    }
}

/// Incremental reply parser: feed it one line at a time (without the line ending) until it
/// returns a complete reply.
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one line. Returns `Ok(Some(reply))` when the line ends the reply, `Ok(None)`
    /// when more lines must follow.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let (code, is_last, text) = split_reply_line(line).ok_or_else(|| ReplyError::Malformed(printable(line)))?;

        match self.code {
            Some(first) if first != code => {
                return Err(ReplyError::CodeMismatch { first, line: printable(line) });
            }
            _ => self.code = Some(code),
        }

        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.lines.push(String::from_utf8_lossy(text).into_owned());

        if !is_last {
            return Ok(None);
        }

        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        let enhanced = lines.first().and_then(|first| parse_enhanced_status(first, code));
        Ok(Some(Reply { code, enhanced, lines }))
    }
}

/// Splits `ddd-text`, `ddd text` or `ddd` into the code, whether this is the last line,
/// and the text. The first digit must be 2 to 5 and the second 0 to 5 (RFC 5321, 4.2).
fn split_reply_line(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    if line.len() < 3 {
        return None;
    }
    let digits = &line[..3];
    if !(b'2'..=b'5').contains(&digits[0]) || !(b'0'..=b'5').contains(&digits[1]) || !digits[2].is_ascii_digit() {
        return None;
    }
    let code = digits.iter().fold(0u16, |value, digit| value * 10 + u16::from(digit - b'0'));

    match line.get(3) {
        None => Some((code, true, &[])),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

/// Reads an enhanced status code such as `5.1.1` at the start of the text, when its class
/// matches the first digit of the reply code.
fn parse_enhanced_status(text: &str, code: u16) -> Option<EnhancedStatus> {
    let token = text.split(' ').next()?;
    let mut parts = token.split('.');
    let class: u8 = parse_number(parts.next()?, 1)?.try_into().ok()?;
    let subject = parse_number(parts.next()?, 3)?;
    let detail = parse_number(parts.next()?, 3)?;
    if parts.next().is_some() || u16::from(class) != code / 100 {
        return None;
    }
    Some(EnhancedStatus { class, subject, detail })
}

fn parse_number(digits: &str, max_digits: usize) -> Option<u16> {
    if digits.is_empty() || digits.len() > max_digits || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Renders server bytes for an error message: control characters and invalid UTF-8 are
/// escaped, and the result is cut to 120 characters.
pub fn printable(bytes: &[u8]) -> String {
    const LIMIT: usize = 120;
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (count, ch) in text.chars().enumerate() {
        if count == LIMIT {
            out.push_str("...");
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(lines: &[&[u8]]) -> Result<Option<Reply>, ReplyError> {
        let mut parser = ReplyParser::new();
        let mut result = None;
        for line in lines {
            result = parser.push_line(line)?;
        }
        Ok(result)
    }

    #[test]
    fn single_line_reply() {
        let reply = parse_all(&[b"250 OK"]).unwrap().unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, vec!["OK"]);
        assert_eq!(reply.enhanced, None);
    }

    #[test]
    fn multi_line_reply() {
        let reply = parse_all(&[b"250-mail.example.test", b"250-PIPELINING", b"250 8BITMIME"]).unwrap().unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, vec!["mail.example.test", "PIPELINING", "8BITMIME"]);
        assert_eq!(reply.one_line(), "250 mail.example.test / PIPELINING / 8BITMIME");
    }

    #[test]
    fn continuation_waits_for_last_line() {
        let mut parser = ReplyParser::new();
        assert_eq!(parser.push_line(b"220-first"), Ok(None));
        assert!(parser.push_line(b"220 second").unwrap().is_some());
    }

    #[test]
    fn enhanced_status_parsed() {
        let reply = parse_all(&[b"550 5.1.1 <x@example.test>: Recipient address rejected"]).unwrap().unwrap();
        assert_eq!(reply.enhanced, Some(EnhancedStatus { class: 5, subject: 1, detail: 1 }));
        assert_eq!(reply.enhanced.unwrap().to_string(), "5.1.1");
    }

    #[test]
    fn enhanced_status_class_must_match() {
        let reply = parse_all(&[b"250 5.1.1 odd"]).unwrap().unwrap();
        assert_eq!(reply.enhanced, None);
    }

    #[test]
    fn code_alone_is_valid() {
        let reply = parse_all(&[b"354"]).unwrap().unwrap();
        assert_eq!(reply.code, 354);
        assert_eq!(reply.one_line(), "354");
    }

    #[test]
    fn invalid_lines_rejected() {
        let cases: &[&[u8]] = &[b"", b"25", b"abc", b"250x", b"150 too low", b"650 too high", b"260 second digit", b"2 5 0", b"     "];
        for line in cases {
            assert!(matches!(parse_all(&[line]), Err(ReplyError::Malformed(_))), "accepted {:?}", line);
        }
    }

    #[test]
    fn code_mismatch_rejected() {
        let result = parse_all(&[b"250-first", b"251 second"]);
        assert!(matches!(result, Err(ReplyError::CodeMismatch { first: 250, .. })));
    }

    #[test]
    fn too_many_lines_rejected() {
        let mut parser = ReplyParser::new();
        for _ in 0..MAX_REPLY_LINES {
            assert_eq!(parser.push_line(b"250-x"), Ok(None));
        }
        assert_eq!(parser.push_line(b"250-x"), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn invalid_utf8_text_kept() {
        let reply = parse_all(&[b"550 bad \xff byte"]).unwrap().unwrap();
        assert_eq!(reply.lines, vec!["bad \u{fffd} byte"]);
    }

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable(b"a\x1bb\tc"), "a\\u{1b}b\\tc");
        assert!(printable(&[b'x'; 500]).ends_with("..."));
    }
}
