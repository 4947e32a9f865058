//! The fault matrix: every step of an SMTP session crossed with every way a server can
//! misbehave there, played by a scripted server on 127.0.0.1 against the C host program
//! tests/c/fault_host.c.
//!
//! Each cell is one run of the C host, which keeps the default SIGPIPE disposition, calls
//! `smtp_send_with` once with timeout=2 and prints the status, the reply code, the duration,
//! its peak resident set size and the last error. For each cell the test checks:
//!
//! - the status, and the reply code where a reply decided it;
//! - that the last error names the step (it is empty after a success);
//! - that the host exited normally, not by a signal;
//! - that the call took at most the timeout plus 1 s, and the host's peak RSS stayed under
//!   64 MB;
//! - that the client sent no command but QUIT after a 421, a timeout, a lost connection or
//!   a malformed reply.
//!
//! Cells where the client must complete a TLS handshake need the Postfix test server. After
//! the client's STARTTLS, the scripted server relays the connection to Postfix's own
//! STARTTLS on 127.0.0.1:2525. The certificate is then Postfix's, signed by the CA that the
//! client trusts, and the cell also checks that Postfix delivered the message.
//!
//! The cells run 8 at a time. With `--nocapture` the test prints the matrix as a Markdown
//! table; docs/fault-matrix.md contains the output of one run.

mod common;

use std::ffi::c_int;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mvsmtp::ffi::status::*;

/// The client's timeout, as fault_host.c sets it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The maximum duration of one call: the client's timeout plus 1 s.
const CELL_TIME_LIMIT: Duration = Duration::from_secs(3);

/// The maximum peak resident set size of the C host, in kilobytes (64 MB). In the body row
/// the host keeps a 16 MB body in memory.
const MAX_RSS_KB: u64 = 64 * 1024;

/// How many cells run at the same time.
const PARALLEL_CELLS: usize = 8;

/// How long one run of the C host may take before it is killed.
const HOST_RUN_LIMIT: Duration = Duration::from_secs(60);

/// How long the scripted server waits for the client to send or to close.
const SERVER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the body that the server reads before a fault in the body row.
const BODY_BYTES_BEFORE_FAULT: usize = 256 * 1024;

/// The receive buffer of the server's socket in the body row. A small, fixed buffer turns
/// off autotuning, so a server that stops reading stops the client's writes soon.
const BODY_ROW_RECEIVE_BUFFER: c_int = 64 * 1024;

/// The pause after each byte of a reply delivered one byte per TCP segment.
const DRIP_PAUSE: Duration = Duration::from_micros(200);

// ---------------------------------------------------------------- steps and faults

/// A step of the session, where the fault happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Ehlo,
    /// HELO, after the server replied to EHLO with 502.
    Helo,
    /// The reply to STARTTLS, with tls=starttls.
    StartTls,
    /// The TLS handshake after the server's 220 to STARTTLS.
    TlsHandshake,
    /// The reply to AUTH PLAIN, without TLS and with insecure_plaintext_auth=1.
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// While the client writes a 16 MB body.
    Body,
    EndOfData,
    Quit,
}

const STEPS: [Step; 12] = [
    Step::Greeting,
    Step::Ehlo,
    Step::Helo,
    Step::StartTls,
    Step::TlsHandshake,
    Step::Auth,
    Step::MailFrom,
    Step::RcptTo,
    Step::Data,
    Step::Body,
    Step::EndOfData,
    Step::Quit,
];

impl Step {
    /// Returns the step argument of fault_host.c.
    fn argument(self) -> &'static str {
        match self {
            Step::Greeting => "greeting",
            Step::Ehlo => "ehlo",
            Step::Helo => "helo",
            Step::StartTls => "starttls",
            Step::TlsHandshake => "tls",
            Step::Auth => "auth",
            Step::MailFrom => "mail",
            Step::RcptTo => "rcpt",
            Step::Data => "data",
            Step::Body => "body",
            Step::EndOfData => "end",
            Step::Quit => "quit",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Step::Greeting => "greeting",
            Step::Ehlo => "EHLO",
            Step::Helo => "HELO",
            Step::StartTls => "STARTTLS",
            Step::TlsHandshake => "TLS handshake",
            Step::Auth => "AUTH",
            Step::MailFrom => "MAIL FROM",
            Step::RcptTo => "RCPT TO",
            Step::Data => "DATA",
            Step::Body => "body",
            Step::EndOfData => "end of data",
            Step::Quit => "QUIT",
        }
    }

    /// Returns the words of the last error that name this step.
    fn error_words(self) -> &'static [&'static str] {
        match self {
            Step::Greeting => &["greeting"],
            Step::Ehlo => &["EHLO"],
            Step::Helo => &["HELO"],
            Step::StartTls => &["STARTTLS"],
            Step::TlsHandshake => &["TLS handshake"],
            Step::Auth => &["AUTH"],
            Step::MailFrom => &["MAIL FROM"],
            Step::RcptTo => &["RCPT TO", "recipient"],
            Step::Data => &["DATA"],
            Step::Body => &["message body"],
            Step::EndOfData => &["end of data"],
            Step::Quit => &["QUIT"],
        }
    }
}

/// A way the server misbehaves at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// No reply at all.
    Silence,
    /// The server closes its side of the connection (FIN).
    Close,
    /// The server resets the connection (RST, from SO_LINGER 0).
    Reset,
    /// 421: the service is closing the connection.
    Closing421,
    /// Another temporary error.
    Temporary451,
    /// A permanent error.
    Permanent554,
    /// A line without a reply code.
    Malformed,
    /// A reply line of 1 MB.
    LongLine,
    /// A reply of 100,000 continuation lines.
    ManyLines,
    /// The normal reply, one byte per TCP segment.
    ByteByByte,
    /// The normal reply, then a second reply line that no command requested.
    ExtraLine,
    /// The normal reply with bytes that are not UTF-8 in its text.
    NonUtf8,
}

const FAULTS: [Fault; 12] = [
    Fault::Silence,
    Fault::Close,
    Fault::Reset,
    Fault::Closing421,
    Fault::Temporary451,
    Fault::Permanent554,
    Fault::Malformed,
    Fault::LongLine,
    Fault::ManyLines,
    Fault::ByteByByte,
    Fault::ExtraLine,
    Fault::NonUtf8,
];

impl Fault {
    /// Returns the fault argument of fault_host.c, which only puts it into the subject.
    fn argument(self) -> &'static str {
        match self {
            Fault::Silence => "silence",
            Fault::Close => "close",
            Fault::Reset => "reset",
            Fault::Closing421 => "421",
            Fault::Temporary451 => "451",
            Fault::Permanent554 => "554",
            Fault::Malformed => "malformed",
            Fault::LongLine => "long-line",
            Fault::ManyLines => "many-lines",
            Fault::ByteByByte => "byte-by-byte",
            Fault::ExtraLine => "extra-line",
            Fault::NonUtf8 => "non-utf8",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Fault::Silence => "no reply",
            Fault::Close => "closed",
            Fault::Reset => "reset",
            Fault::Closing421 => "421",
            Fault::Temporary451 => "451",
            Fault::Permanent554 => "554",
            Fault::Malformed => "malformed",
            Fault::LongLine => "1 MB line",
            Fault::ManyLines => "100,000 lines",
            Fault::ByteByByte => "byte by byte",
            Fault::ExtraLine => "extra line",
            Fault::NonUtf8 => "non-UTF-8",
        }
    }

    /// Returns the reply code of a rejecting fault.
    fn rejection_code(self) -> Option<c_int> {
        match self {
            Fault::Closing421 => Some(421),
            Fault::Temporary451 => Some(451),
            Fault::Permanent554 => Some(554),
            _ => None,
        }
    }

    /// Returns the reply line of a rejecting fault.
    fn rejection_line(self) -> &'static [u8] {
        match self {
            Fault::Closing421 => b"421 4.3.2 Service shutting down, closing the connection\r\n",
            Fault::Temporary451 => b"451 4.3.0 Temporary failure, try again later\r\n",
            _ => b"554 5.7.1 Rejected by local policy\r\n",
        }
    }
}

/// What a cell must produce.
#[derive(Debug, Clone, Copy)]
struct Expected {
    status: c_int,
    /// The last error must contain one of these (ASCII case ignored). Empty for SMTP_OK,
    /// whose last error must be empty.
    error_words: &'static [&'static str],
    /// The reply code that decided the call: 250 after a success, 0 when no reply did.
    reply_code: c_int,
    /// The client must send no command but QUIT after the fault.
    quiet_after_fault: bool,
}

impl Expected {
    fn success() -> Expected {
        Expected { status: SMTP_OK, error_words: &[], reply_code: 250, quiet_after_fault: false }
    }

    fn failure(status: c_int, error_words: &'static [&'static str], reply_code: c_int) -> Expected {
        let quiet_after_fault = matches!(status, SMTP_TIMEOUT | SMTP_CONNECTION_LOST | SMTP_PROTOCOL_ERROR | SMTP_TLS_FAILED) || reply_code == 421;
        Expected { status, error_words, reply_code, quiet_after_fault }
    }
}

/// Returns what the cell must produce, or why the cell is skipped.
fn expected(step: Step, fault: Fault) -> Result<Expected, &'static str> {
    // The server has accepted the message before QUIT, so nothing that goes wrong there may
    // change the result.
    if step == Step::Quit {
        return Ok(Expected::success());
    }

    if step == Step::Body {
        return match fault {
            Fault::Silence => Ok(Expected::failure(SMTP_TIMEOUT, Step::Body.error_words(), 0)),
            Fault::Close | Fault::Reset => Ok(Expected::failure(SMTP_CONNECTION_LOST, Step::Body.error_words(), 0)),
            // The server replies in the middle of the body and closes; the client reports that reply.
            Fault::Closing421 | Fault::Temporary451 | Fault::Permanent554 => {
                Ok(Expected::failure(SMTP_MESSAGE_REJECTED, Step::Body.error_words(), fault.rejection_code().unwrap()))
            }
            _ => Err("The body has no reply of its own: a reply line sent during the body is read as the reply to the end of data, which the end-of-data row covers."),
        };
    }

    if step == Step::TlsHandshake {
        return match fault {
            Fault::Silence => Ok(Expected::failure(SMTP_TIMEOUT, Step::TlsHandshake.error_words(), 0)),
            Fault::ByteByByte => Ok(Expected::success()),
            Fault::ExtraLine => Err("Lines right after the 220 reply to STARTTLS are the STARTTLS row's extra-line cell; inside TLS there is no plain-text reply to add a line to."),
            // Closing, resetting or sending any text instead of TLS records fails the handshake.
            _ => Ok(Expected::failure(SMTP_TLS_FAILED, Step::TlsHandshake.error_words(), 0)),
        };
    }

    let words = step.error_words();
    let expectation = match fault {
        Fault::Silence => Expected::failure(SMTP_TIMEOUT, words, 0),
        Fault::Close | Fault::Reset => Expected::failure(SMTP_CONNECTION_LOST, words, 0),
        Fault::Malformed | Fault::LongLine | Fault::ManyLines => Expected::failure(SMTP_PROTOCOL_ERROR, words, 0),
        Fault::ByteByByte | Fault::NonUtf8 => Expected::success(),
        // The client finds the extra line when it is about to send its next command.
        Fault::ExtraLine => match step {
            Step::Greeting => Expected::failure(SMTP_PROTOCOL_ERROR, Step::Ehlo.error_words(), 0),
            Step::Ehlo | Step::Helo | Step::Auth => Expected::failure(SMTP_PROTOCOL_ERROR, Step::MailFrom.error_words(), 0),
            Step::StartTls => Expected::failure(SMTP_PROTOCOL_ERROR, Step::StartTls.error_words(), 0),
            Step::MailFrom => Expected::failure(SMTP_PROTOCOL_ERROR, &["RCPT TO"], 0),
            Step::RcptTo => Expected::failure(SMTP_PROTOCOL_ERROR, Step::Data.error_words(), 0),
            // After 354 the client sends the body, not a command.
            Step::Data => Expected::failure(SMTP_PROTOCOL_ERROR, &["DATA", "message body"], 0),
            // The message was accepted; the extra line only stops QUIT.
            _ => Expected::success(),
        },
        Fault::Closing421 | Fault::Temporary451 | Fault::Permanent554 => {
            let code = fault.rejection_code().unwrap();
            match step {
                Step::Greeting => Expected::failure(SMTP_GREETING_REJECTED, words, code),
                // A permanent error to EHLO makes the client fall back to HELO, which succeeds.
                Step::Ehlo if fault == Fault::Permanent554 => Expected::success(),
                Step::Ehlo | Step::Helo => Expected::failure(SMTP_HELLO_REJECTED, words, code),
                Step::StartTls => Expected::failure(SMTP_TLS_UNAVAILABLE, words, code),
                Step::Auth => Expected::failure(SMTP_AUTH_FAILED, words, code),
                Step::MailFrom => Expected::failure(SMTP_SENDER_REJECTED, words, code),
                Step::RcptTo => Expected::failure(SMTP_RECIPIENTS_REJECTED, words, code),
                Step::Data => Expected::failure(SMTP_DATA_REJECTED, words, code),
                _ => Expected::failure(SMTP_MESSAGE_REJECTED, words, code),
            }
        }
    };
    Ok(expectation)
}

/// Reports whether the cell's client must finish a TLS handshake with Postfix through the relay.
fn needs_postfix(step: Step, fault: Fault) -> bool {
    matches!((step, fault), (Step::StartTls, Fault::ByteByByte | Fault::NonUtf8) | (Step::TlsHandshake, Fault::ByteByByte))
}

// ------------------------------------------------------------- the scripted server

const GREETING: &[u8] = b"220 fake.example.test ESMTP\r\n";
const HELO_REPLY: &[u8] = b"250 fake.example.test\r\n";
const STARTTLS_REPLY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
const AUTH_REPLY: &[u8] = b"235 2.7.0 Authentication successful\r\n";
const MAIL_REPLY: &[u8] = b"250 2.1.0 Ok\r\n";
const RCPT_REPLY: &[u8] = b"250 2.1.5 Ok\r\n";
const DATA_REPLY: &[u8] = b"354 End data with <CR><LF>.<CR><LF>\r\n";
const END_OF_DATA_REPLY: &[u8] = b"250 2.0.0 Ok: queued as FAKE1\r\n";
const QUIT_REPLY: &[u8] = b"221 2.0.0 Bye\r\n";
const EXTRA_LINE: &[u8] = b"250 2.0.0 unsolicited extra line\r\n";

/// Returns the server's reply to EHLO for the row: 502 in the HELO row, so the client falls
/// back to HELO, and the extensions that the row's client needs.
fn ehlo_reply(row: Step) -> &'static [u8] {
    match row {
        Step::Helo => b"502 5.5.2 Error: command not recognized\r\n",
        Step::StartTls | Step::TlsHandshake => b"250-fake.example.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
        Step::Auth => b"250-fake.example.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n",
        _ => b"250-fake.example.test\r\n250 8BITMIME\r\n",
    }
}

/// Returns the reply with bytes that are not UTF-8 (0xE9, 0xFF, 0xFE) at the start of the
/// text of its first line. The code and any further lines stay as they were.
fn with_non_utf8_text(reply: &[u8]) -> Vec<u8> {
    let mut changed = reply[..4].to_vec();
    changed.extend_from_slice(b"caf\xe9 \xff\xfe ");
    changed.extend_from_slice(&reply[4..]);
    changed
}

/// Returns a reply of one line of 1 MB with the code of `reply`.
fn long_line(reply: &[u8]) -> Vec<u8> {
    let mut line = reply[..3].to_vec();
    line.push(b' ');
    line.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    line.extend_from_slice(b"\r\n");
    line
}

/// Returns a reply of 100,000 continuation lines and a last line, with the code of `reply`.
fn many_lines(reply: &[u8]) -> Vec<u8> {
    let code = &reply[..3];
    let mut lines = Vec::with_capacity(100_001 * 10);
    for _ in 0..100_000 {
        lines.extend_from_slice(code);
        lines.extend_from_slice(b"-more\r\n");
    }
    lines.extend_from_slice(code);
    lines.extend_from_slice(b" end\r\n");
    lines
}

/// Reports whether a line the client sent is an SMTP command.
fn is_command(line: &str) -> bool {
    const VERBS: [&str; 10] = ["EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "QUIT", "RSET", "NOOP"];
    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
    VERBS.contains(&verb.as_str())
}

/// What the scripted server saw.
#[derive(Debug, Default)]
struct ServerLog {
    /// Every command line the client sent, message data excluded.
    commands: Vec<String>,
    /// The command lines the client sent after the fault.
    commands_after_fault: Vec<String>,
    /// Anything in the conversation that the script did not expect.
    problems: Vec<String>,
}

/// Whether the conversation goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The server side of one connection, playing one cell. The streams are `None` once the
/// server has reset the connection or handed it to the Postfix relay.
struct Server {
    reader: Option<BufReader<TcpStream>>,
    writer: Option<TcpStream>,
    step: Step,
    fault: Fault,
    fault_done: bool,
    client_exited: Arc<AtomicBool>,
    log: ServerLog,
}

impl Server {
    fn new(stream: TcpStream, step: Step, fault: Fault, client_exited: Arc<AtomicBool>) -> io::Result<Server> {
        stream.set_read_timeout(Some(SERVER_READ_TIMEOUT))?;
        stream.set_write_timeout(Some(SERVER_READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Server {
            reader: Some(BufReader::new(stream)),
            writer: Some(writer),
            step,
            fault,
            fault_done: false,
            client_exited,
            log: ServerLog::default(),
        })
    }

    /// Writes bytes. Errors are ignored, because after some faults the client has gone.
    fn send(&mut self, bytes: &[u8]) {
        if let Some(writer) = &mut self.writer {
            let _ = writer.write_all(bytes);
        }
    }

    /// Writes the bytes one per TCP segment: one write each, without Nagle's delay, and a
    /// short pause after each.
    fn drip(&mut self, bytes: &[u8]) {
        let Some(writer) = &mut self.writer else { return };
        for byte in bytes {
            if writer.write_all(std::slice::from_ref(byte)).is_err() {
                return;
            }
            thread::sleep(DRIP_PAUSE);
        }
    }

    /// Sends FIN: the client reads the end of the stream, and the server can still read.
    fn close_for_writing(&mut self) {
        if let Some(writer) = &self.writer {
            let _ = writer.shutdown(Shutdown::Write);
        }
    }

    /// Closes the connection with RST instead of FIN: SO_LINGER with a zero time, then close.
    fn reset(&mut self) {
        if let Some(writer) = &self.writer {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: the descriptor is open, and the pointer and length describe `linger`.
            let result = unsafe {
                libc::setsockopt(
                    writer.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            if result != 0 {
                self.log.problems.push(format!("setsockopt(SO_LINGER) failed: {}", io::Error::last_os_error()));
            }
        }
        // Closing the last descriptor of the socket sends RST.
        self.reader = None;
        self.writer = None;
    }

    /// Reads one line without its line ending. `None` at the end of the stream or after an
    /// error; a timeout is also recorded as a problem.
    fn read_line(&mut self) -> Option<String> {
        let reader = self.reader.as_mut()?;
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                Some(String::from_utf8_lossy(&line).into_owned())
            }
            Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                self.log.problems.push(format!("the client neither sent anything nor closed for {} s", SERVER_READ_TIMEOUT.as_secs()));
                None
            }
            Err(_) => None,
        }
    }

    /// Reads one line and records it when it is a command.
    fn read_command(&mut self) -> Option<String> {
        let line = self.read_line()?;
        if is_command(&line) {
            self.log.commands.push(line.clone());
            if self.fault_done {
                self.log.commands_after_fault.push(line.clone());
            }
        }
        Some(line)
    }

    /// Reads what the client sends until it closes, recording the commands among it.
    fn record_until_closed(&mut self) {
        while self.read_command().is_some() {}
    }

    /// Waits until the client process has exited, at most as long as a run may take.
    fn wait_for_client_exit(&self) {
        let deadline = Instant::now() + HOST_RUN_LIMIT;
        while !self.client_exited.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Plays the reply to a command: the fault when this is the cell's step, or else the
    /// normal reply. Faults that leave the connection open let the conversation go on, so
    /// that the server records whatever the client sends next.
    fn respond(&mut self, step: Step, normal_reply: &[u8]) -> Flow {
        if step != self.step || self.fault_done {
            self.send(normal_reply);
            return Flow::Continue;
        }
        self.fault_done = true;
        match self.fault {
            Fault::Silence => {
                self.wait_for_client_exit();
                self.record_until_closed();
                Flow::Stop
            }
            Fault::Close => {
                self.close_for_writing();
                self.record_until_closed();
                Flow::Stop
            }
            Fault::Reset => {
                self.reset();
                Flow::Stop
            }
            Fault::Closing421 | Fault::Temporary451 | Fault::Permanent554 => {
                self.send(self.fault.rejection_line());
                Flow::Continue
            }
            Fault::Malformed => {
                self.send(b"hello\r\n");
                Flow::Continue
            }
            Fault::LongLine => {
                self.send(&long_line(normal_reply));
                Flow::Continue
            }
            Fault::ManyLines => {
                self.send(&many_lines(normal_reply));
                Flow::Continue
            }
            Fault::ByteByByte => {
                self.drip(normal_reply);
                Flow::Continue
            }
            Fault::ExtraLine => {
                let mut bytes = normal_reply.to_vec();
                bytes.extend_from_slice(EXTRA_LINE);
                self.send(&bytes);
                Flow::Continue
            }
            Fault::NonUtf8 => {
                self.send(&with_non_utf8_text(normal_reply));
                Flow::Continue
            }
        }
    }

    /// Plays DATA, and the message data when the reply was a 354 that the client may accept.
    fn play_data(&mut self) -> Flow {
        let flow = self.respond(Step::Data, DATA_REPLY);
        // After a 354 followed by an extra line, the client must stop before the message.
        let data_follows = self.step != Step::Data || matches!(self.fault, Fault::ByteByByte | Fault::NonUtf8);
        if flow == Flow::Stop || !data_follows {
            return flow;
        }
        if self.step == Step::Body {
            return self.fault_in_body();
        }
        loop {
            match self.read_line() {
                Some(line) if line == "." => break,
                Some(_) => continue,
                None => {
                    self.log.problems.push("the connection ended inside the message data".into());
                    return Flow::Stop;
                }
            }
        }
        self.respond(Step::EndOfData, END_OF_DATA_REPLY)
    }

    /// Reads the first part of the body, then plays the fault in the middle of it.
    fn fault_in_body(&mut self) -> Flow {
        let mut received = 0;
        while received < BODY_BYTES_BEFORE_FAULT {
            let Some(reader) = self.reader.as_mut() else { return Flow::Stop };
            let available = match reader.fill_buf() {
                Ok([]) | Err(_) => {
                    self.log.problems.push(format!("the connection ended after {received} bytes of the body"));
                    return Flow::Stop;
                }
                Ok(bytes) => bytes.len(),
            };
            reader.consume(available);
            received += available;
        }

        self.fault_done = true;
        match self.fault {
            Fault::Silence => {
                // Stop reading: the client's writes fill the socket buffers and then block.
                self.wait_for_client_exit();
                self.record_until_closed();
            }
            Fault::Reset => self.reset(),
            fault => {
                if fault.rejection_code().is_some() {
                    self.send(fault.rejection_line());
                }
                // FIN first. Closing later with unread body bytes then sends RST, as a server
                // that gives up on a message does.
                self.close_for_writing();
                thread::sleep(Duration::from_millis(200));
                self.reader = None;
                self.writer = None;
            }
        }
        Flow::Stop
    }

    /// Plays STARTTLS in the STARTTLS and TLS handshake rows, then the handshake: a relay to
    /// Postfix where the client must complete it, or the fault in place of the server's
    /// TLS records.
    fn play_starttls(&mut self) -> Flow {
        let postfix = if needs_postfix(self.step, self.fault) {
            match open_postfix_tunnel() {
                Ok(stream) => Some(stream),
                Err(problem) => {
                    self.log.problems.push(problem);
                    return Flow::Stop;
                }
            }
        } else {
            None
        };

        if self.step == Step::StartTls {
            let flow = self.respond(Step::StartTls, STARTTLS_REPLY);
            return match postfix {
                Some(postfix) => self.relay_to(postfix, false),
                None => flow,
            };
        }

        // The TLS handshake row: a normal 220, then the fault in place of the TLS records.
        self.send(STARTTLS_REPLY);
        if let Some(postfix) = postfix {
            self.fault_done = true;
            return self.relay_to(postfix, true);
        }
        let mut client_hello = [0u8; 4096];
        let read = self.reader.as_mut().map(|reader| reader.read(&mut client_hello));
        if !matches!(read, Some(Ok(count)) if count > 0) {
            self.log.problems.push("the client sent no TLS ClientHello after the 220 to STARTTLS".into());
            return Flow::Stop;
        }
        if self.respond(Step::TlsHandshake, STARTTLS_REPLY) == Flow::Continue {
            // The client must give up on the handshake and close without a command.
            self.record_until_closed();
        }
        Flow::Stop
    }

    /// Hands the client's connection to the Postfix tunnel and relays until both close.
    fn relay_to(&mut self, postfix: TcpStream, drip: bool) -> Flow {
        let Some(reader) = self.reader.take() else { return Flow::Stop };
        self.writer = None;
        if !reader.buffer().is_empty() {
            self.log.problems.push("the client sent bytes before the 220 reply to STARTTLS".into());
            return Flow::Stop;
        }
        relay(reader.into_inner(), postfix, drip);
        Flow::Stop
    }
}

/// Connects to the Postfix test server and runs its STARTTLS, so that the next bytes on the
/// returned stream belong to a TLS handshake.
fn open_postfix_tunnel() -> Result<TcpStream, String> {
    let host = std::env::var("MVSMTP_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("MVSMTP_TEST_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(2525);
    let stream = TcpStream::connect((host.as_str(), port)).map_err(|error| {
        format!("connecting to the Postfix test server at {host}:{port} failed ({error}); start it with `sudo bash tests/postfix/test-server.sh up`")
    })?;
    stream.set_read_timeout(Some(SERVER_READ_TIMEOUT)).map_err(|error| error.to_string())?;
    let mut writer = stream.try_clone().map_err(|error| error.to_string())?;
    let mut reader = BufReader::new(stream);

    let mut exchange = |command: &[u8], expected_code: &str| -> Result<(), String> {
        writer.write_all(command).map_err(|error| format!("writing to Postfix failed: {error}"))?;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).map_err(|error| format!("reading from Postfix failed: {error}"))?;
            if !line.starts_with(expected_code) {
                return Err(format!("Postfix answered {line:?}, expected {expected_code}"));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    exchange(b"", "220")?;
    exchange(b"EHLO fault-matrix.example.test\r\n", "250")?;
    exchange(b"STARTTLS\r\n", "220")?;
    if !reader.buffer().is_empty() {
        return Err("Postfix sent more after its 220 reply to STARTTLS".into());
    }
    Ok(reader.into_inner())
}

/// Copies bytes both ways between the client and Postfix until both sides close. With
/// `drip`, the bytes from Postfix reach the client one per TCP segment.
fn relay(client: TcpStream, postfix: TcpStream, drip: bool) {
    for stream in [&client, &postfix] {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    }
    let (Ok(mut client_reader), Ok(mut postfix_writer)) = (client.try_clone(), postfix.try_clone()) else { return };
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut client_reader, &mut postfix_writer);
        let _ = postfix_writer.shutdown(Shutdown::Write);
    });

    let (mut postfix_reader, mut client_writer) = (postfix, client);
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let count = match postfix_reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        let written = if drip {
            buffer[..count].iter().try_for_each(|byte| {
                client_writer.write_all(std::slice::from_ref(byte))?;
                thread::sleep(DRIP_PAUSE);
                Ok::<(), io::Error>(())
            })
        } else {
            client_writer.write_all(&buffer[..count])
        };
        if written.is_err() {
            break;
        }
    }
    let _ = client_writer.shutdown(Shutdown::Write);
    let _ = upstream.join();
}

/// Accepts the client's connection and plays the cell on it.
fn serve(listener: TcpListener, step: Step, fault: Fault, client_exited: Arc<AtomicBool>) -> ServerLog {
    let stream = match accept(&listener, &client_exited) {
        Ok(stream) => stream,
        Err(problem) => return ServerLog { problems: vec![problem], ..ServerLog::default() },
    };
    let mut server = match Server::new(stream, step, fault, client_exited) {
        Ok(server) => server,
        Err(error) => return ServerLog { problems: vec![format!("setting up the accepted socket failed: {error}")], ..ServerLog::default() },
    };

    let mut flow = server.respond(Step::Greeting, GREETING);
    while flow == Flow::Continue {
        let Some(line) = server.read_command() else { break };
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        flow = match verb.as_str() {
            "EHLO" => server.respond(Step::Ehlo, ehlo_reply(step)),
            "HELO" => server.respond(Step::Helo, HELO_REPLY),
            "STARTTLS" if matches!(step, Step::StartTls | Step::TlsHandshake) => server.play_starttls(),
            "AUTH" => server.respond(Step::Auth, AUTH_REPLY),
            "MAIL" => server.respond(Step::MailFrom, MAIL_REPLY),
            "RCPT" => server.respond(Step::RcptTo, RCPT_REPLY),
            "DATA" => server.play_data(),
            "QUIT" => {
                let flow = server.respond(Step::Quit, QUIT_REPLY);
                if flow == Flow::Continue {
                    server.record_until_closed();
                }
                Flow::Stop
            }
            _ => {
                if !server.fault_done {
                    server.log.problems.push(format!("unexpected line from the client: {line:?}"));
                }
                server.send(b"502 5.5.2 Error: command not recognized\r\n");
                Flow::Continue
            }
        };
    }
    server.log
}

/// Accepts the client's connection, giving up when the client exits without connecting.
fn accept(listener: &TcpListener, client_exited: &AtomicBool) -> Result<TcpStream, String> {
    listener.set_nonblocking(true).map_err(|error| error.to_string())?;
    let deadline = Instant::now() + HOST_RUN_LIMIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|error| error.to_string())?;
                return Ok(stream);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if client_exited.load(Ordering::SeqCst) || Instant::now() > deadline {
                    return Err("the client never connected".into());
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(error) => return Err(format!("accept failed: {error}")),
        }
    }
}

/// Sets SO_RCVBUF on the listener, which accepted sockets inherit.
fn set_receive_buffer(listener: &TcpListener, bytes: c_int) {
    // SAFETY: the descriptor is open, and the pointer and length describe `bytes`.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(result, 0, "setsockopt(SO_RCVBUF) failed: {}", io::Error::last_os_error());
}

// ------------------------------------------------------------------ the C host

/// Returns the repository root, where Cargo.toml is.
fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the folder of the libmvsmtp.so that this test run links against: target/<profile>/deps,
/// where `cargo test` builds it, or else target/<profile>.
fn library_dir() -> PathBuf {
    let executable = std::env::current_exe().expect("the test executable has a path");
    let deps_dir = executable.parent().expect("the test executable is in a folder").to_path_buf();
    let profile_dir = deps_dir.parent().expect("target/<profile>/deps has a parent").to_path_buf();
    [deps_dir.clone(), profile_dir.clone()]
        .into_iter()
        .find(|folder| folder.join("libmvsmtp.so").is_file())
        .unwrap_or_else(|| panic!("libmvsmtp.so not found in {} or {}; run `cargo build --release` first", deps_dir.display(), profile_dir.display()))
}

/// A temporary folder for the compiled host, removed on drop.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Compiles tests/c/fault_host.c as C99 with strict warnings and links it against libmvsmtp.
fn compile_host() -> (WorkDir, PathBuf) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let folder = std::env::temp_dir().join(format!("mvsmtp-fault-matrix-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&folder).unwrap_or_else(|error| panic!("creating {} failed: {error}", folder.display()));
    let program = folder.join("fault_host");
    let library_dir = library_dir();

    let output = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(format!("-I{}", repo_dir().join("include").display()))
        .arg(repo_dir().join("tests/c/fault_host.c"))
        .arg(format!("-L{}", library_dir.display()))
        .arg("-lmvsmtp")
        .arg(format!("-Wl,-rpath,{}", library_dir.display()))
        .arg("-o")
        .arg(&program)
        .output()
        .unwrap_or_else(|error| panic!("starting the C compiler cc failed: {error}"));
    assert!(
        output.status.success(),
        "compiling tests/c/fault_host.c failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (WorkDir(folder), program)
}

/// The exit status and output of one run of the C host.
struct HostRun {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs the C host and kills it when it takes longer than [`HOST_RUN_LIMIT`].
fn run_host(program: &Path, arguments: &[&str]) -> HostRun {
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {} failed: {error}", program.display()));

    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout_reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut bytes);
        bytes
    });
    let stderr_reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut bytes);
        bytes
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the C host failed") {
            break status;
        }
        if started.elapsed() > HOST_RUN_LIMIT {
            let _ = child.kill();
            break child.wait().expect("waiting for the killed C host failed");
        }
        thread::sleep(Duration::from_millis(5));
    };
    HostRun { status, stdout: stdout_reader.join().unwrap_or_default(), stderr: stderr_reader.join().unwrap_or_default() }
}

/// The fields of the line that fault_host.c prints.
#[derive(Debug, Default, Clone)]
struct HostReport {
    status: c_int,
    name: String,
    reply_code: c_int,
    milliseconds: u64,
    /// ru_maxrss from getrusage. On Linux it includes the peak of the test process that
    /// started the host, because execve keeps the high-water mark of the memory it replaces.
    maxrss_kb: u64,
    /// The peak resident set size of the host alone (VmHWM), or `None` where the host could
    /// not read it.
    own_peak_kb: Option<u64>,
    error: String,
}

impl HostReport {
    /// Returns the host's own peak resident set size: VmHWM where available, else ru_maxrss.
    fn peak_rss_kb(&self) -> u64 {
        self.own_peak_kb.unwrap_or(self.maxrss_kb)
    }
}

/// Parses `status=N name=S reply=N ms=N maxrss_kb=N hwm_kb=N error=TEXT`.
fn parse_report(line: &str) -> Option<HostReport> {
    let (fields, error) = line.split_once(" error=")?;
    let mut report = HostReport { error: error.to_string(), ..HostReport::default() };
    for field in fields.split(' ') {
        let (name, value) = field.split_once('=')?;
        match name {
            "status" => report.status = value.parse().ok()?,
            "name" => report.name = value.to_string(),
            "reply" => report.reply_code = value.parse().ok()?,
            "ms" => report.milliseconds = value.parse().ok()?,
            "maxrss_kb" => report.maxrss_kb = value.parse().ok()?,
            "hwm_kb" => report.own_peak_kb = value.parse::<i64>().ok().and_then(|kb| u64::try_from(kb).ok()),
            _ => return None,
        }
    }
    Some(report)
}

// ------------------------------------------------------------------- the matrix

/// The outcome of one cell.
struct CellResult {
    step: Step,
    fault: Fault,
    expected: Expected,
    report: Option<HostReport>,
    failures: Vec<String>,
    transcript: String,
}

/// Runs one cell: a scripted server on a free port, then the C host against it.
fn run_cell(program: &Path, step: Step, fault: Fault, expected: Expected) -> CellResult {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port failed");
    if step == Step::Body {
        set_receive_buffer(&listener, BODY_ROW_RECEIVE_BUFFER);
    }
    let port = listener.local_addr().expect("the listener has an address").port().to_string();
    let client_exited = Arc::new(AtomicBool::new(false));
    let server = {
        let client_exited = Arc::clone(&client_exited);
        thread::spawn(move || serve(listener, step, fault, client_exited))
    };

    let recipient = common::unique_address("fault-matrix");
    let run = run_host(program, &[step.argument(), fault.argument(), &port, &recipient]);
    client_exited.store(true, Ordering::SeqCst);
    let log = server.join().unwrap_or_else(|_| ServerLog { problems: vec!["the scripted server panicked".into()], ..ServerLog::default() });

    let transcript = String::from_utf8_lossy(&run.stderr).into_owned();
    let (report, mut failures) = check_run(&run, &expected);
    if let Some(report) = &report {
        failures.extend(check_report(step, fault, &expected, report));
    }
    failures.extend(check_server(step, fault, &expected, &log));
    if failures.is_empty() && needs_postfix(step, fault) {
        let delivered = common::postfix().try_delivered(&recipient, Duration::from_secs(10));
        if delivered.is_none() {
            failures.push(format!("Postfix delivered no message to {recipient} within 10 s, although the call returned SMTP_OK"));
        }
    }
    CellResult { step, fault, expected, report, failures, transcript }
}

/// Checks how the C host ended and parses its line.
fn check_run(run: &HostRun, expected: &Expected) -> (Option<HostReport>, Vec<String>) {
    let mut failures = Vec::new();
    if let Some(signal) = run.status.signal() {
        failures.push(format!("the C host was killed by signal {signal} (13 is SIGPIPE, 6 is SIGABRT, 11 is SIGSEGV)"));
    } else if run.status.code() != Some(0) {
        failures.push(format!("the C host exited with {:?}", run.status.code()));
    }
    let Ok(stdout) = std::str::from_utf8(&run.stdout) else {
        failures.push(format!("the C host's output is not valid UTF-8: {:?}", String::from_utf8_lossy(&run.stdout)));
        return (None, failures);
    };
    let Some(report) = stdout.lines().next().and_then(parse_report) else {
        failures.push(format!("the C host printed no result line: {stdout:?}"));
        return (None, failures);
    };
    if report.status != expected.status {
        failures.push(format!("status {} ({}), expected {} ({})", report.status, report.name, expected.status, status_label(expected.status)));
    }
    (Some(report), failures)
}

/// Checks the reply code, the last error, the time and the memory.
fn check_report(step: Step, fault: Fault, expected: &Expected, report: &HostReport) -> Vec<String> {
    let mut failures = Vec::new();
    if report.reply_code != expected.reply_code {
        failures.push(format!("reply code {}, expected {}", report.reply_code, expected.reply_code));
    }
    if expected.status == SMTP_OK {
        if !report.error.is_empty() {
            failures.push(format!("the last error is not empty after a success: {:?}", report.error));
        }
    } else {
        let error = report.error.to_ascii_lowercase();
        if !expected.error_words.iter().any(|word| error.contains(&word.to_ascii_lowercase())) {
            failures.push(format!("the last error names none of {:?}: {:?}", expected.error_words, report.error));
        }
    }
    let limit = u64::try_from(CELL_TIME_LIMIT.as_millis()).unwrap();
    if report.milliseconds > limit {
        failures.push(format!("the call took {} ms, more than the {} ms allowed with timeout={}", report.milliseconds, limit, CLIENT_TIMEOUT.as_secs()));
    }
    if fault == Fault::Silence && step != Step::Quit && report.milliseconds + 100 < u64::try_from(CLIENT_TIMEOUT.as_millis()).unwrap() {
        failures.push(format!("the call gave up after {} ms, before the {} s timeout", report.milliseconds, CLIENT_TIMEOUT.as_secs()));
    }
    if report.peak_rss_kb() > MAX_RSS_KB {
        failures.push(format!("the C host's peak RSS was {} kB, more than {} kB", report.peak_rss_kb(), MAX_RSS_KB));
    }
    failures
}

/// Checks what the scripted server saw.
fn check_server(step: Step, fault: Fault, expected: &Expected, log: &ServerLog) -> Vec<String> {
    let mut failures: Vec<String> = log.problems.iter().map(|problem| format!("server: {problem}")).collect();
    if expected.quiet_after_fault {
        let commands: Vec<&String> = log.commands_after_fault.iter().filter(|line| !line.eq_ignore_ascii_case("QUIT")).collect();
        if !commands.is_empty() {
            failures.push(format!("the client sent {commands:?} after the fault; only QUIT may follow"));
        }
    }
    if (step, fault) == (Step::Ehlo, Fault::Permanent554) && !log.commands.iter().any(|line| line.starts_with("HELO ")) {
        failures.push(format!("the client did not fall back to HELO after 554 to EHLO; it sent {:?}", log.commands));
    }
    failures
}

fn status_label(status: c_int) -> String {
    // SAFETY: smtp_status_name returns a static NUL-terminated string for any number.
    unsafe { std::ffi::CStr::from_ptr(mvsmtp::ffi::smtp_status_name(status)) }.to_string_lossy().into_owned()
}

/// Formats the matrix as Markdown: the table, the skipped cells and the failures.
fn markdown(results: &[CellResult], skipped: &[(Step, Fault, &str)], elapsed: Duration) -> String {
    let mut text = String::new();
    let _ = write!(text, "| step |");
    for fault in FAULTS {
        let _ = write!(text, " {} |", fault.label());
    }
    let _ = write!(text, " peak RSS |\n|---|");
    for _ in FAULTS {
        let _ = write!(text, "---|");
    }
    text.push_str("---|\n");

    for step in STEPS {
        let _ = write!(text, "| {} |", step.label());
        for fault in FAULTS {
            let cell = results.iter().find(|result| result.step == step && result.fault == fault);
            let content = match cell {
                None => "skipped".to_string(),
                Some(result) => {
                    let summary = match &result.report {
                        Some(report) => format!("{} {} ms", report.name.trim_start_matches("SMTP_"), report.milliseconds),
                        None => "no result".to_string(),
                    };
                    if result.failures.is_empty() {
                        summary
                    } else {
                        format!("**FAIL** {summary}")
                    }
                }
            };
            let _ = write!(text, " {content} |");
        }
        let row_rss = results
            .iter()
            .filter(|result| result.step == step)
            .filter_map(|result| result.report.as_ref())
            .map(HostReport::peak_rss_kb)
            .max()
            .unwrap_or(0);
        let _ = writeln!(text, " {} MB |", row_rss.div_ceil(1024));
    }

    let cells = results.len();
    let failed = results.iter().filter(|result| !result.failures.is_empty()).count();
    let max_rss = results.iter().filter_map(|result| result.report.as_ref()).map(HostReport::peak_rss_kb).max().unwrap_or(0);
    let _ = writeln!(
        text,
        "\n{cells} cells run, {failed} failed, {} skipped, in {:.1} s with {PARALLEL_CELLS} at a time. Highest peak RSS of the C host: {max_rss} kB.",
        skipped.len(),
        elapsed.as_secs_f64()
    );

    text.push_str("\nSkipped cells:\n\n");
    for (step, fault, reason) in skipped {
        let _ = writeln!(text, "- {} × {}: {reason}", step.label(), fault.label());
    }

    if failed > 0 {
        text.push_str("\nFailed cells:\n");
        for result in results.iter().filter(|result| !result.failures.is_empty()) {
            let _ = writeln!(
                text,
                "\n- {} × {} (expected {}):",
                result.step.label(),
                result.fault.label(),
                status_label(result.expected.status)
            );
            for failure in &result.failures {
                let _ = writeln!(text, "  - {failure}");
            }
            if let Some(report) = &result.report {
                let _ = writeln!(text, "  - last error: {:?}", report.error);
            }
            let _ = writeln!(text, "  - transcript:\n\n```\n{}\n```", result.transcript.trim_end());
        }
    }
    text
}

#[test]
fn fault_matrix_every_cell() {
    let (_work_dir, program) = compile_host();

    let mut cells = Vec::new();
    let mut skipped = Vec::new();
    for step in STEPS {
        for fault in FAULTS {
            match expected(step, fault) {
                Ok(expectation) => cells.push((step, fault, expectation)),
                Err(reason) => skipped.push((step, fault, reason)),
            }
        }
    }

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..PARALLEL_CELLS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(step, fault, expectation)) = cells.get(index) else { break };
                let result = run_cell(&program, step, fault, expectation);
                results.lock().unwrap().push(result);
            });
        }
    });
    let elapsed = started.elapsed();
    let mut results = results.into_inner().unwrap();
    let position = |result: &CellResult| {
        let row = STEPS.iter().position(|&step| step == result.step);
        let column = FAULTS.iter().position(|&fault| fault == result.fault);
        (row, column)
    };
    results.sort_by_key(position);

    let table = markdown(&results, &skipped, elapsed);
    println!("{table}");

    // The last error of every cell, so each status in the table can be read with its message.
    println!("\nLast error of each cell:\n");
    for result in &results {
        let error = result.report.as_ref().map_or("(no report)", |report| report.error.as_str());
        let shown = if error.is_empty() { "(none)" } else { error };
        println!("- {} × {}: {}", result.step.label(), result.fault.label(), shown);
    }

    let failed: Vec<String> = results
        .iter()
        .filter(|result| !result.failures.is_empty())
        .map(|result| format!("{} × {}: {}", result.step.label(), result.fault.label(), result.failures.join("; ")))
        .collect();
    assert!(failed.is_empty(), "{} of {} cells failed:\n{}\n\n{table}", failed.len(), results.len(), failed.join("\n"));
    assert!(elapsed < Duration::from_secs(60), "the matrix took {elapsed:?}, more than 60 s");
}
