//! Parses arbitrary bytes as a sender and as a recipient list. Whatever is accepted must be
//! safe to put in a command line: no CR, LF, NUL or angle bracket outside quotes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvsmtp::address::{parse_mailboxes, parse_recipients, parse_sender};
use mvsmtp::command::Command;

fuzz_target!(|data: &[u8]| {
    let _ = parse_sender(data);
    let _ = parse_mailboxes(data);
    if let Ok(recipients) = parse_recipients(data) {
        for recipient in recipients {
            let mut line = Vec::new();
            Command::RcptTo(recipient.clone()).render(&mut line);
            let body = &line[..line.len() - 2];
            assert!(!body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0), "{line:?}");
            let _ = recipient.to_ascii();
        }
    }
});
