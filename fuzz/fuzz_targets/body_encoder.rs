//! Encodes arbitrary bodies in arbitrary chunks: the wire form has no bare CR or LF and no
//! lone dot line, and chunking never changes it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvsmtp::data::{encode_body, DataEncoder};

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
});
