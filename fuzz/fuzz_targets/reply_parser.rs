//! Feeds arbitrary server bytes, split into lines, to the reply parser: it must return
//! replies or errors, never panic, and never keep more lines than its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvsmtp::reply::{ReplyParser, MAX_REPLY_LINES};

fuzz_target!(|data: &[u8]| {
    let mut parser = ReplyParser::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match parser.push_line(line) {
            Ok(Some(reply)) => {
                assert!((200..600).contains(&reply.code));
                assert!(reply.lines.len() <= MAX_REPLY_LINES);
                let _ = reply.one_line();
            }
            Ok(None) => {}
            Err(_) => parser = ReplyParser::new(),
        }
    }
});
