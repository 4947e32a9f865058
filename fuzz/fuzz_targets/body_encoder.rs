//! Encodes arbitrary bodies in arbitrary chunks: the wire form has no bare CR or LF and no
//! lone dot line, and chunking never changes it. The BDAT form is the same lines without
//! dot-stuffing, and `wire_size` gives the length of the BDAT form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvsmtp::data::{encode_body, wire_size, DataEncoder};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk_size, body)) = data.split_first() else { return };
    let whole = encode_body(body);

    let mut encoder = DataEncoder::new();
    let mut chunked = Vec::new();
    for piece in body.chunks(usize::from(chunk_size).max(1)) {
        encoder.encode(piece, &mut chunked);
    }
    encoder.finish(&mut chunked);
    assert_eq!(chunked, whole);

    for (index, &byte) in whole.iter().enumerate() {
        if byte == b'\r' {
            assert_eq!(whole.get(index + 1), Some(&b'\n'));
        }
        if byte == b'\n' {
            assert!(index > 0);
            assert_eq!(whole[index - 1], b'\r');
        }
    }
    assert!(!whole.starts_with(b".\r\n"));
    assert!(!whole.windows(5).any(|window| window == b"\r\n.\r\n"));

    // Removing the stuffed dot from each DATA line gives the BDAT form.
    let mut bdat_encoder = DataEncoder::without_dot_stuffing();
    let mut bdat = Vec::new();
    for piece in body.chunks(usize::from(chunk_size).max(1)) {
        bdat_encoder.encode(piece, &mut bdat);
    }
    bdat_encoder.finish(&mut bdat);
    let mut unstuffed = Vec::with_capacity(whole.len());
    for line in whole.split_inclusive(|&byte| byte == b'\n') {
        unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    assert_eq!(bdat, unstuffed);
    assert_eq!(wire_size(body), bdat.len() as u64);
});
