//! Properties of the body encoder, checked on generated input: whatever bytes a caller
//! passes, the wire form has only CRLF line endings, no line that would end the DATA phase,
//! and un-stuffing it gives back the input with its line endings normalized. The BDAT form
//! gives the same lines without dot-stuffing.

use mvsmtp::data::{encode_body, DataEncoder};
use proptest::prelude::*;

/// Input biased toward what matters: line ending bytes, dots and both forms of the marks.
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
}
