//! Sends many messages on one session through the library's Rust interface, announcing each
//! message's successor with `Persistent::send_before`, as `mvsmtp outbox` does. On a server
//! with PIPELINING but without CHUNKING, the next envelope then goes out with each end of
//! data, so a message costs one wait instead of two. benches/bench.py runs it beside the C
//! driver and prints one line of key=value pairs, like benches/driver.c.
//!
//!   bulk_send session HOST PORT COUNT TEXT_BYTES   COUNT messages, timed as a whole
//!   bulk_send steady HOST PORT RECIPIENTS COUNT    milliseconds per message after the first
//!
//! Run it with `cargo run --release --example bulk_send -- session 127.0.0.1 2525 100 1024`.
//! It sends only to the host given, which the benchmark sets to loopback.

use std::process::ExitCode;
use std::time::Instant;

use mvsmtp::options::Options;
use mvsmtp::request::{RawRequest, Request};
use mvsmtp::session::{self, Persistent};
use mvsmtp::transcript::Transcript;

const SENDER: &str = "bench@example.test";
const HEADERS: &str = "From: <bench@example.test>\r\nTo: <sink@example.test>\r\nSubject: benchmark\r\n\r\n";

/// Builds HEADERS followed by `text_bytes` of text in CRLF lines of at most 80 octets.
fn make_body(text_bytes: usize) -> Vec<u8> {
    let mut body = HEADERS.as_bytes().to_vec();
    let mut remaining = text_bytes.max(3);
    while remaining > 0 {
        let line = if remaining <= 80 { remaining } else { 80.min(remaining - 3) };
        body.extend(std::iter::repeat_n(b'x', line - 2));
        body.extend_from_slice(b"\r\n");
        remaining -= line;
    }
    body
}

fn make_recipients(count: usize) -> String {
    (1..=count).map(|index| format!("bench-{index}@example.test")).collect::<Vec<_>>().join(",")
}

fn options(host: &str, port: &str) -> Result<Options, String> {
    let mut options = Options::default();
    for (name, value) in [("host", host), ("port", port), ("timeout", "30")] {
        options.set(name.as_bytes(), value.as_bytes()).map_err(|error| error.to_string())?;
    }
    Ok(options)
}

/// Sends `count` copies of one message on a new session and returns the seconds taken by
/// the messages after the first `untimed` ones.
fn send_many(options: &Options, to: &str, body: &[u8], count: usize, untimed: usize) -> Result<f64, String> {
    let raw = RawRequest { from: Some(SENDER.as_bytes()), to: Some(to.as_bytes()), body: Some(body) };
    let request = Request::validate(raw, options).map_err(|error| error.to_string())?;
    let open_request = Request::with_envelope(None, Vec::new(), b"", options).map_err(|error| error.to_string())?;
    let mut persistent: Persistent = session::open(&open_request, &mut Transcript::new()).map_err(|error| error.to_string())?;

    let mut start = Instant::now();
    for index in 0..count {
        if index == untimed {
            start = Instant::now();
        }
        let next = (index + 1 < count).then_some(&request);
        let mut transcript = Transcript::new();
        if let Err(error) = persistent.send_before(&request, next, &mut transcript) {
            return Err(format!("message {index} failed: {error}\n{}", transcript.as_str()));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    persistent.close(&mut Transcript::new());
    Ok(seconds)
}

fn number(text: &str, name: &str) -> Result<usize, String> {
    text.parse::<usize>().ok().filter(|&value| value > 0).ok_or_else(|| format!("{name} must be a whole number above 0, not \"{text}\""))
}

fn run(args: &[String]) -> Result<String, String> {
    match args {
        [mode, host, port, count, text_bytes] if mode == "session" => {
            let count = number(count, "COUNT")?;
            let body = make_body(number(text_bytes, "TEXT_BYTES")?);
            let seconds = send_many(&options(host, port)?, "sink@example.test", &body, count, 0)?;
            Ok(format!("messages={count} seconds={seconds:.6}"))
        }
        [mode, host, port, recipients, count] if mode == "steady" => {
            let count = number(count, "COUNT")?;
            let to = make_recipients(number(recipients, "RECIPIENTS")?);
            let body = make_body(1024);
            // The first message opens the steady state and is not timed.
            let seconds = send_many(&options(host, port)?, &to, &body, count + 1, 1)?;
            Ok(format!("messages={count} ms_per_message={:.3}", seconds * 1000.0 / count as f64))
        }
        _ => Err("usage: bulk_send session HOST PORT COUNT TEXT_BYTES | steady HOST PORT RECIPIENTS COUNT".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bulk_send: {message}");
            ExitCode::FAILURE
        }
    }
}
