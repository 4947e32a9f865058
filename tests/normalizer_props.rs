//! Properties of the body encoder, checked on generated input: whatever bytes a caller
//! passes, the wire form has only CRLF line endings, no line that would end the DATA phase,
//! and un-stuffing it gives back the input with its line endings normalized. The BDAT form
//! gives the same lines without dot-stuffing.
//!
//! The encoder copies runs of text in bulk. A reference encoder below handles one byte at a
//! time, and the encoder must give the same bytes as the reference for every input and every
//! way of cutting it into chunks.

use mvsmtp::data::{encode_body, has_8bit_text, wire_size, DataEncoder, ATTRIBUTE_MARK, ATTRIBUTE_MARK_UTF8};
use proptest::prelude::*;

/// Input biased toward what matters: line ending bytes, dots and both forms of the marks,
/// with runs of text long enough for the vectorized search in the encoder.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(vec![0xFE]),
        Just(vec![0xEF, 0xA3, 0xBE]),
        Just(vec![0xEF, 0xA3]),
        Just(b"text".to_vec()),
        any::<u8>().prop_map(|byte| vec![byte]),
        prop::collection::vec(b' '..=b'~', 0..100),
        prop::collection::vec(any::<u8>(), 0..100),
    ];
    prop::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
}

/// The expected lines: every line ending and attribute mark is a break, and a final break
/// is implied when the body does not end with one.
fn expected_lines(input: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut index = 0;
    let mut ended_with_break = false;
    while index < input.len() {
        let rest = &input[index..];
        let break_len = if rest.starts_with(b"\r\n") || rest.starts_with(&[0xEF, 0xA3, 0xBE]) {
            if rest[0] == b'\r' { 2 } else { 3 }
        } else if rest[0] == b'\r' || rest[0] == b'\n' || rest[0] == 0xFE {
            1
        } else {
            0
        };
        if break_len > 0 {
            lines.push(std::mem::take(&mut line));
            index += break_len;
            ended_with_break = true;
        } else {
            line.push(rest[0]);
            index += 1;
            ended_with_break = false;
        }
    }
    if !input.is_empty() && !ended_with_break {
        lines.push(line);
    }
    lines
}

/// Splits wire bytes at CRLF; every line must be followed by CRLF.
fn wire_lines(wire: &[u8]) -> Vec<Vec<u8>> {
    assert!(wire.is_empty() || wire.ends_with(b"\r\n"), "the wire form does not end with CRLF: {wire:?}");
    let mut lines = Vec::new();
    let mut rest = wire;
    while let Some(position) = rest.windows(2).position(|pair| pair == b"\r\n") {
        lines.push(rest[..position].to_vec());
        rest = &rest[position + 2..];
    }
    assert!(rest.is_empty(), "bytes after the last CRLF: {rest:?}");
    lines
}

/// Cuts the input into pieces of the given sizes, some of them empty, and puts whatever
/// remains into one last piece.
fn split_at_sizes<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = input;
    for &size in sizes {
        let (piece, remainder) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = remainder;
    }
    pieces.push(rest);
    pieces
}

/// Encodes the pieces one after another with the library's encoder.
fn encode_pieces(pieces: &[&[u8]], dot_stuffing: bool) -> Vec<u8> {
    let mut encoder = if dot_stuffing { DataEncoder::new() } else { DataEncoder::without_dot_stuffing() };
    let mut wire = Vec::new();
    for piece in pieces {
        encoder.encode(piece, &mut wire);
    }
    encoder.finish(&mut wire);
    wire
}

/// The byte-at-a-time body encoder that the library used before it copied runs of text in
/// bulk. Its rules are easy to check by reading, so it is the reference that the library's
/// encoder must match byte for byte.
struct ReferenceEncoder {
    at_line_start: bool,
    pending_cr: bool,
    partial_mark: Vec<u8>,
    wrote_anything: bool,
    dot_stuffing: bool,
}

impl ReferenceEncoder {
    fn new(dot_stuffing: bool) -> Self {
        ReferenceEncoder { at_line_start: true, pending_cr: false, partial_mark: Vec::new(), wrote_anything: false, dot_stuffing }
    }

    fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut input = chunk;

        // Complete a UTF-8 mark that the previous chunk cut off.
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

        let mut index = 0;
        while index < input.len() {
            let byte = input[index];
            if byte == ATTRIBUTE_MARK_UTF8[0] {
                let rest = &input[index..];
                let available = rest.len().min(ATTRIBUTE_MARK_UTF8.len());
                if rest[..available] == ATTRIBUTE_MARK_UTF8[..available] {
                    if available == ATTRIBUTE_MARK_UTF8.len() {
                        self.push_line_break(out);
                    } else {
                        self.partial_mark.extend_from_slice(rest);
                    }
                    index += available;
                    continue;
                }
            }
            self.push_byte(byte, out);
            index += 1;
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
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

/// Encodes the pieces one after another with the reference encoder.
fn encode_pieces_by_reference(pieces: &[&[u8]], dot_stuffing: bool) -> Vec<u8> {
    let mut encoder = ReferenceEncoder::new(dot_stuffing);
    let mut wire = Vec::new();
    for piece in pieces {
        encoder.encode(piece, &mut wire);
    }
    encoder.finish(&mut wire);
    wire
}

/// Reports whether the body has 8-bit text, one byte at a time, as the library did before it
/// searched for the marks.
fn has_8bit_text_by_reference(body: &[u8]) -> bool {
    let mut index = 0;
    while index < body.len() {
        let byte = body[index];
        if byte < 0x80 || byte == ATTRIBUTE_MARK {
            index += 1;
        } else if body[index..].starts_with(&ATTRIBUTE_MARK_UTF8) {
            index += ATTRIBUTE_MARK_UTF8.len();
        } else {
            return true;
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_bare_cr_or_lf(input in body_bytes()) {
        let wire = encode_body(&input);
        for (index, &byte) in wire.iter().enumerate() {
            if byte == b'\r' {
                prop_assert_eq!(wire.get(index + 1), Some(&b'\n'), "bare CR at {}", index);
            }
            if byte == b'\n' {
                prop_assert!(index > 0 && wire[index - 1] == b'\r', "bare LF at {}", index);
            }
        }
    }

    #[test]
    fn no_lone_dot_line(input in body_bytes()) {
        let wire = encode_body(&input);
        for line in wire_lines(&wire) {
            prop_assert_ne!(line, b".".to_vec());
        }
    }

    #[test]
    fn unstuffing_restores_input(input in body_bytes()) {
        let wire = encode_body(&input);
        let unstuffed: Vec<Vec<u8>> = wire_lines(&wire)
            .into_iter()
            .map(|line| if line.starts_with(b".") { line[1..].to_vec() } else { line })
            .collect();
        prop_assert_eq!(unstuffed, expected_lines(&input));
    }

    #[test]
    fn chunking_changes_nothing(input in body_bytes(), chunk in 1usize..17) {
        let mut encoder = DataEncoder::new();
        let mut wire = Vec::new();
        for piece in input.chunks(chunk) {
            encoder.encode(piece, &mut wire);
        }
        encoder.finish(&mut wire);
        prop_assert_eq!(wire, encode_body(&input));
    }

    #[test]
    fn bdat_form_is_unstuffed_lines(input in body_bytes(), chunk in 1usize..17) {
        // The encoder for BDAT chunks gives the same lines, with CRLF, but no dot-stuffing.
        let mut encoder = DataEncoder::without_dot_stuffing();
        let mut wire = Vec::new();
        for piece in input.chunks(chunk) {
            encoder.encode(piece, &mut wire);
        }
        encoder.finish(&mut wire);
        prop_assert_eq!(wire_lines(&wire), expected_lines(&input));
    }

    #[test]
    fn encoder_matches_reference(
        input in body_bytes(),
        sizes in prop::collection::vec(0usize..80, 0..24),
        dot_stuffing in any::<bool>(),
    ) {
        let pieces = split_at_sizes(&input, &sizes);
        prop_assert_eq!(encode_pieces(&pieces, dot_stuffing), encode_pieces_by_reference(&pieces, dot_stuffing));
    }

    #[test]
    fn wire_size_matches_encoding(input in body_bytes()) {
        // SIZE counts the message without the dots that dot-stuffing adds (RFC 1870).
        let stuffed_dots = wire_lines(&encode_body(&input)).iter().filter(|line| line.starts_with(b".")).count() as u64;
        prop_assert_eq!(wire_size(&input), encode_body(&input).len() as u64 - stuffed_dots);
    }

    #[test]
    fn eight_bit_check_matches_reference(input in body_bytes()) {
        prop_assert_eq!(has_8bit_text(&input), has_8bit_text_by_reference(&input));
    }
}
