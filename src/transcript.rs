//! The record of one conversation: one line per command or reply line, written as the
//! session sends and reads, so that nothing added later can leak what it left out.
//!
//! Lines start with `C: ` (sent by the client), `S: ` (received from the server) or `* `
//! (a note from the library, such as the address it connected to). The message body is
//! recorded only as its size.

/// Maximum size of a transcript. Lines past it are dropped and one note says so.
pub const MAX_TRANSCRIPT_BYTES: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
pub struct Transcript {
    text: String,
    truncated: bool,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a command line sent by the client, without its CRLF.
    pub fn client(&mut self, line: &str) {
        self.push("C: ", line);
    }

    /// Records a line received from the server, escaping control characters.
    pub fn server(&mut self, line: &[u8]) {
        self.push("S: ", &printable_unbounded(line));
    }

    /// Records a note from the library.
    pub fn note(&mut self, text: &str) {
        self.push("* ", text);
    }

    /// Records the message body as a placeholder with its size on the wire.
    pub fn body(&mut self, wire_bytes: usize) {
        self.push("C: ", &format!("<message body, {wire_bytes} bytes>"));
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }

    fn push(&mut self, prefix: &str, line: &str) {
        if self.truncated {
            return;
        }
        if self.text.len() + prefix.len() + line.len() + 1 > MAX_TRANSCRIPT_BYTES {
            self.truncated = true;
            self.text.push_str("* transcript truncated\n");
            return;
        }
        self.text.push_str(prefix);
        self.text.push_str(line);
        self.text.push('\n');
    }
}

/// Escapes control characters but keeps the whole line, whose length the reply reader
/// already bounds.
fn printable_unbounded(line: &[u8]) -> String {
    if line.iter().all(|&b| (0x20..0x7F).contains(&b)) {
        // Plain ASCII with no controls is kept as it is.
        return String::from_utf8_lossy(line).into_owned();
    }
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
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

    #[test]
    fn lines_prefixed() {
        let mut transcript = Transcript::new();
        transcript.note("Connected to 127.0.0.1:2525");
        transcript.server(b"220 mail.example.test ESMTP");
        transcript.client("EHLO client.example.test");
        transcript.body(1234);
        assert_eq!(
            transcript.as_str(),
            "* Connected to 127.0.0.1:2525\nS: 220 mail.example.test ESMTP\nC: EHLO client.example.test\nC: <message body, 1234 bytes>\n"
        );
    }

    #[test]
    fn server_controls_escaped() {
        let mut transcript = Transcript::new();
        transcript.server(b"250 a\x1b[31mb");
        assert_eq!(transcript.as_str(), "S: 250 a\\u{1b}[31mb\n");
    }

    #[test]
    fn size_bounded() {
        let mut transcript = Transcript::new();
        let line = "x".repeat(4000);
        for _ in 0..1000 {
            transcript.client(&line);
        }
        assert!(transcript.as_str().len() <= MAX_TRANSCRIPT_BYTES + 100);
        assert!(transcript.as_str().ends_with("* transcript truncated\n"));
    }
}
