//! The message body as it goes over the wire after DATA (RFC 5321, sections 4.1.1.4 and 4.5.2).
//!
//! The encoder turns every line ending into CRLF (CRLF, bare LF and bare CR alike), turns
//! MultiValue attribute marks into CRLF, dot-stuffs every line that starts with ".", and adds
//! a final CRLF when the body does not end with one. Passing a bare LF through would let a
//! body end the DATA phase early on servers that accept `LF.LF` ("SMTP smuggling").
//!
//! It works on chunks and keeps its state across chunk boundaries, so a body can be encoded
//! piece by piece without ever being copied whole.

use std::iter::Peekable;

use memchr::{memchr2_iter, memchr3_iter, memchr_iter, Memchr, Memchr3};

/// An attribute mark in an 8-bit MultiValue string.
pub const ATTRIBUTE_MARK: u8 = 0xFE;

/// An attribute mark on NLS systems: U+F8FE encoded in UTF-8.
pub const ATTRIBUTE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBE];

/// The end-of-data line that closes the message.
pub const END_OF_DATA: &[u8] = b".\r\n";

/// Streaming body encoder. Call [`DataEncoder::encode`] for each chunk, then
/// [`DataEncoder::finish`] once.
#[derive(Debug)]
pub struct DataEncoder {
    at_line_start: bool,
    pending_cr: bool,
    /// Leading bytes of a possible UTF-8 attribute mark cut off at the end of a chunk.
    partial_mark: Vec<u8>,
    /// Reports whether any output has been written, so that an empty body stays empty.
    wrote_anything: bool,
    /// Doubles a leading ".", which DATA needs and BDAT (RFC 3030) must not have.
    dot_stuffing: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataEncoder {
    /// Creates an encoder for DATA, which dot-stuffs.
    pub fn new() -> Self {
        DataEncoder { at_line_start: true, pending_cr: false, partial_mark: Vec::new(), wrote_anything: false, dot_stuffing: true }
    }

    /// Creates an encoder for BDAT chunks: the same line endings, but no dot-stuffing,
    /// because BDAT announces the length of each chunk instead of ending it with a line.
    pub fn without_dot_stuffing() -> Self {
        DataEncoder { dot_stuffing: false, ..DataEncoder::new() }
    }

    /// Encodes one chunk of the body, appending the wire bytes to `out`.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len());
        let input = self.complete_partial_mark(chunk, out);

        // Most bytes are text that goes out as it is. Copy each run of text in one piece,
        // and encode the special bytes between the runs one at a time.
        let mut text_start = 0;
        for position in SpecialBytes::new(input) {
            if position < text_start {
                // The LF of a CRLF, already encoded with its CR.
                continue;
            }
            self.push_text(&input[text_start..position], out);
            text_start = position + self.push_special(&input[position..], out);
        }
        self.push_text(&input[text_start..], out);
    }

    /// Completes a UTF-8 mark that the previous chunk cut off, and returns the rest of the
    /// chunk. When the chunk does not continue the mark, the held bytes go out as text.
    fn complete_partial_mark<'c>(&mut self, chunk: &'c [u8], out: &mut Vec<u8>) -> &'c [u8] {
        let mut input = chunk;
        while !self.partial_mark.is_empty() && !input.is_empty() {
            let expected = ATTRIBUTE_MARK_UTF8[self.partial_mark.len()];
            if input[0] != expected {
                let held = std::mem::take(&mut self.partial_mark);
                for byte in held {
                    self.push_byte(byte, out);
                }
                break;
            }
            self.partial_mark.push(input[0]);
            input = &input[1..];
            if self.partial_mark.len() == ATTRIBUTE_MARK_UTF8.len() {
                self.partial_mark.clear();
                self.push_line_break(out);
            }
        }
        input
    }

    /// Appends text that contains no special byte (see [`SpecialBytes`]). Only its first byte
    /// can need more than a copy: it may follow a pending CR, which then becomes a line break,
    /// or be a "." at the start of a line, which needs stuffing. The rest is copied as it is.
    fn push_text(&mut self, text: &[u8], out: &mut Vec<u8>) {
        if let Some((&first, rest)) = text.split_first() {
            self.push_byte(first, out);
            out.extend_from_slice(rest);
        }
    }

    /// Encodes the special byte at the start of `rest` and returns how many bytes of `rest`
    /// it used. A whole UTF-8 mark and a CRLF each become one line break. The start of a
    /// UTF-8 mark that the end of the chunk cuts off is held until the next chunk.
    fn push_special(&mut self, rest: &[u8], out: &mut Vec<u8>) -> usize {
        if rest.starts_with(&ATTRIBUTE_MARK_UTF8) {
            self.push_line_break(out);
            return ATTRIBUTE_MARK_UTF8.len();
        }
        if rest.len() < ATTRIBUTE_MARK_UTF8.len() && ATTRIBUTE_MARK_UTF8.starts_with(rest) {
            self.partial_mark.extend_from_slice(rest);
            return rest.len();
        }
        if rest.starts_with(b"\r\n") {
            self.push_line_break(out);
            return 2;
        }
        self.push_byte(rest[0], out);
        1
    }

    /// Ends the body: flushes held bytes and adds the final CRLF when the body does not
    /// already end with a line break. An empty body stays empty. The end-of-data line is
    /// not included, see [`END_OF_DATA`].
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.partial_mark);
        for byte in held {
            self.push_byte(byte, out);
        }
        if self.pending_cr {
            self.pending_cr = false;
            self.emit_line_break(out);
        }
        if self.wrote_anything && !self.at_line_start {
            self.emit_line_break(out);
        }
    }

    fn push_byte(&mut self, byte: u8, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.emit_line_break(out);
            if byte == b'\n' {
                return;
            }
        }
        match byte {
            b'\r' => self.pending_cr = true,
            b'\n' | ATTRIBUTE_MARK => self.emit_line_break(out),
            _ => {
                if self.dot_stuffing && self.at_line_start && byte == b'.' {
                    out.push(b'.');
                }
                out.push(byte);
                self.at_line_start = false;
                self.wrote_anything = true;
            }
        }
    }

    fn push_line_break(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            self.emit_line_break(out);
        }
        self.emit_line_break(out);
    }

    fn emit_line_break(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.at_line_start = true;
        self.wrote_anything = true;
    }
}

/// Positions, in order, of the bytes in one chunk that the encoder cannot copy as they are:
/// CR, LF, the 8-bit attribute mark and the first byte of the UTF-8 attribute mark. A "."
/// is not among them, because it needs attention only at the start of a line, and a line
/// starts only after one of these bytes or at the start of the body.
///
/// The memchr crate searches for at most three different bytes at once, so the UTF-8 mark has
/// a search of its own, and the two lists of positions are merged.
struct SpecialBytes<'c> {
    line_breaks: Peekable<Memchr3<'c>>,
    utf8_marks: Peekable<Memchr<'c>>,
}

impl<'c> SpecialBytes<'c> {
    fn new(chunk: &'c [u8]) -> Self {
        SpecialBytes {
            line_breaks: memchr3_iter(b'\r', b'\n', ATTRIBUTE_MARK, chunk).peekable(),
            utf8_marks: memchr_iter(ATTRIBUTE_MARK_UTF8[0], chunk).peekable(),
        }
    }
}

impl Iterator for SpecialBytes<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match (self.line_breaks.peek(), self.utf8_marks.peek()) {
            (Some(line_break), Some(utf8_mark)) if utf8_mark < line_break => self.utf8_marks.next(),
            (Some(_), _) => self.line_breaks.next(),
            (None, _) => self.utf8_marks.next(),
        }
    }
}

/// Encodes a whole body in one go. Meant for tests and small bodies; the session streams.
pub fn encode_body(body: &[u8]) -> Vec<u8> {
    let mut encoder = DataEncoder::new();
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 2);
    encoder.encode(body, &mut out);
    encoder.finish(&mut out);
    out
}

/// Counts the octets of the message once its line endings are CRLF, encoding piece by
/// piece so that the body is never copied whole. This is the size announced with `SIZE=`,
/// which RFC 1870 counts without the dots added by dot-stuffing and without the end-of-data
/// line, so it equals the length sent with BDAT.
pub fn wire_size(body: &[u8]) -> u64 {
    let mut encoder = DataEncoder::without_dot_stuffing();
    let mut buffer = Vec::with_capacity(16 * 1024);
    let mut total = 0u64;
    for chunk in body.chunks(8 * 1024) {
        encoder.encode(chunk, &mut buffer);
        total += buffer.len() as u64;
        buffer.clear();
    }
    encoder.finish(&mut buffer);
    total + buffer.len() as u64
}

/// Reports whether the body has bytes above 127 once attribute marks are counted as line
/// breaks, which decides whether MAIL FROM carries `BODY=8BITMIME`.
pub fn has_8bit_text(body: &[u8]) -> bool {
    // Both marks start with a byte above 127. Split the body at those start bytes: the text
    // between the marks must be all ASCII.
    let mut text_start = 0;
    for position in memchr2_iter(ATTRIBUTE_MARK, ATTRIBUTE_MARK_UTF8[0], body) {
        if !body[text_start..position].is_ascii() {
            return true;
        }
        let mark_len = if body[position] == ATTRIBUTE_MARK {
            1
        } else if body[position..].starts_with(&ATTRIBUTE_MARK_UTF8) {
            ATTRIBUTE_MARK_UTF8.len()
        } else {
            // An 0xEF that does not start a UTF-8 mark is itself 8-bit text.
            return true;
        };
        text_start = position + mark_len;
    }
    !body[text_start..].is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_in_chunks(body: &[u8], chunk_size: usize) -> Vec<u8> {
        let mut encoder = DataEncoder::new();
        let mut out = Vec::new();
        for chunk in body.chunks(chunk_size.max(1)) {
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    #[test]
    fn line_endings_become_crlf() {
        assert_eq!(encode_body(b"a\r\nb\nc\rd"), b"a\r\nb\r\nc\r\nd\r\n");
    }

    #[test]
    fn cr_then_lf_is_one_break() {
        assert_eq!(encode_body(b"a\r\n\r\nb"), b"a\r\n\r\nb\r\n");
    }

    #[test]
    fn double_cr_is_two_breaks() {
        assert_eq!(encode_body(b"a\r\rb"), b"a\r\n\r\nb\r\n");
    }

    #[test]
    fn trailing_cr_becomes_crlf() {
        assert_eq!(encode_body(b"a\r"), b"a\r\n");
    }

    #[test]
    fn dot_lines_stuffed() {
        assert_eq!(encode_body(b".\n..\n. x\nx.y"), b"..\r\n...\r\n.. x\r\nx.y\r\n");
    }

    #[test]
    fn bdat_encoder_keeps_dots() {
        let mut encoder = DataEncoder::without_dot_stuffing();
        let mut out = Vec::new();
        encoder.encode(b".\n..\r\nx\xfe.y\r", &mut out);
        encoder.finish(&mut out);
        assert_eq!(out, b".\r\n..\r\nx\r\n.y\r\n");
    }

    #[test]
    fn first_line_dot_stuffed() {
        assert_eq!(encode_body(b".hidden"), b"..hidden\r\n");
    }

    #[test]
    fn smuggling_sequences_neutralized() {
        // Bare LF and bare CR around a dot must not form an end-of-data line.
        assert_eq!(encode_body(b"a\n.\nb"), b"a\r\n..\r\nb\r\n");
        assert_eq!(encode_body(b"a\r.\rb"), b"a\r\n..\r\nb\r\n");
        assert_eq!(encode_body(b"a\r\n.\r\nb"), b"a\r\n..\r\nb\r\n");
    }

    #[test]
    fn empty_body_stays_empty() {
        assert_eq!(encode_body(b""), b"");
    }

    #[test]
    fn final_crlf_added_once() {
        assert_eq!(encode_body(b"a"), b"a\r\n");
        assert_eq!(encode_body(b"a\r\n"), b"a\r\n");
        assert_eq!(encode_body(b"\n"), b"\r\n");
    }

    #[test]
    fn attribute_marks_become_crlf() {
        assert_eq!(encode_body(b"Subject: x\xfe\xfeline\xfe.dot"), b"Subject: x\r\n\r\nline\r\n..dot\r\n");
        assert_eq!(encode_body("a\u{f8fe}b".as_bytes()), b"a\r\nb\r\n");
    }

    #[test]
    fn value_marks_kept() {
        assert_eq!(encode_body(b"a\xfdb"), b"a\xfdb\r\n");
    }

    #[test]
    fn partial_utf8_mark_kept_as_text() {
        assert_eq!(encode_body(b"a\xef\xa3x"), b"a\xef\xa3x\r\n");
        assert_eq!(encode_body(b"a\xef"), b"a\xef\r\n");
        assert_eq!(encode_body("é\u{f8fd}".as_bytes()), "é\u{f8fd}\r\n".as_bytes());
    }

    #[test]
    fn chunking_gives_same_output() {
        let mut body = "x\r\n.a\rb\n.\u{f8fe}.c".as_bytes().to_vec();
        body.extend_from_slice(b"\xfe\r\r\n");
        body.extend_from_slice("\u{f8fe}".as_bytes());
        body.extend_from_slice(b"\xef\xa3\xef\xa3\xbe.\xef");
        let whole = encode_body(&body);
        for size in 1..body.len() {
            assert_eq!(encode_in_chunks(&body, size), whole, "chunk size {size}");
        }
    }

    #[test]
    fn wire_size_matches_encoding() {
        let mut body = b".a\nb\rc\xfe".repeat(5000);
        body.extend_from_slice(b"end");
        let stuffed_dots = 5000;
        assert_eq!(wire_size(&body), encode_body(&body).len() as u64 - stuffed_dots);
        assert_eq!(wire_size(b""), 0);
    }

    #[test]
    fn eight_bit_detection() {
        assert!(!has_8bit_text(b"plain ascii\r\n"));
        assert!(!has_8bit_text(b"marks\xfeonly"));
        assert!(!has_8bit_text("marks\u{f8fe}only".as_bytes()));
        assert!(has_8bit_text("caf\u{e9}".as_bytes()));
        assert!(has_8bit_text(b"value\xfdmark"));
        assert!(has_8bit_text(b"\xef\xa3x"));
        assert!(has_8bit_text(b"cut off mark\xef\xa3"));
        assert!(has_8bit_text("\u{f8fe}caf\u{e9}\u{f8fe}".as_bytes()));
    }
}
