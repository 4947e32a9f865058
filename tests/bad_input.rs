//! Bad input through every C entry point, called from Rust with raw pointers as a C program
//! calls them. The cases are NULL in every pointer argument, empty strings, bytes that are
//! not UTF-8, CR and LF, and strings that a NUL ends early. Then come ports and sizes out of
//! range, MultiValue marks in every position, a 100 MB body and 10,000 recipients.
//!
//! Every case that sends runs against a sink server on 127.0.0.1 that accepts everything and
//! records each connection. A case with invalid input must return SMTP_INVALID_ARGUMENT
//! with a last error that names the problem, and the sink must see no connection. A case
//! with valid input must be delivered, and the sink checks what arrived.
//!
//! The tests of this file hold one lock while they run, because some of them change the
//! process-wide defaults with `smtp_set_option`.

use std::ffi::{c_char, c_int, CStr};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use mvsmtp::ffi::{self, status::*};

/// Serializes the tests of this file, because some change the process-wide defaults.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The greeting of the sink. Its "été" puts characters of two bytes into every transcript,
/// for the checks that a copy is never cut inside a character.
const SINK_GREETING: &[u8] = "220 sink.example.test ESMTP \u{e9}t\u{e9}\r\n".as_bytes();

/// How much of each message's data the sink keeps for checks; it counts the rest.
const SINK_KEPT_DATA: usize = 1024 * 1024;

/// The MultiValue marks: value mark and attribute mark, as single bytes and in UTF-8.
const VM: &str = "\u{F8FD}";
const AM: &str = "\u{F8FE}";

// ------------------------------------------------------------------ arguments

/// A C string argument: NULL, or bytes that get a terminating NUL. A NUL among the bytes
/// ends the string there for the library, as it would in C.
#[derive(Debug, Clone)]
enum Arg {
    Null,
    Bytes(Vec<u8>),
}

fn text(bytes: impl AsRef<[u8]>) -> Arg {
    Arg::Bytes(bytes.as_ref().to_vec())
}

/// Joins pieces of bytes, for arguments that mix text with single-byte marks.
fn join(pieces: &[&[u8]]) -> Arg {
    Arg::Bytes(pieces.concat())
}

impl Arg {
    /// Returns the argument with "PORT" replaced by the sink's port.
    fn with_port(&self, port: u16) -> Arg {
        match self {
            Arg::Null => Arg::Null,
            Arg::Bytes(bytes) => {
                let port = port.to_string();
                let mut replaced = Vec::with_capacity(bytes.len());
                let mut rest = bytes.as_slice();
                while let Some(index) = rest.windows(4).position(|window| window == b"PORT") {
                    replaced.extend_from_slice(&rest[..index]);
                    replaced.extend_from_slice(port.as_bytes());
                    rest = &rest[index + 4..];
                }
                replaced.extend_from_slice(rest);
                Arg::Bytes(replaced)
            }
        }
    }

    /// Returns the bytes as C stores them, with the terminating NUL, or `None` for NULL.
    fn to_c(&self) -> Option<Vec<u8>> {
        match self {
            Arg::Null => None,
            Arg::Bytes(bytes) => {
                let mut with_nul = bytes.clone();
                with_nul.push(0);
                Some(with_nul)
            }
        }
    }
}

/// Returns a pointer to C bytes, or NULL.
fn pointer(bytes: &Option<Vec<u8>>) -> *const c_char {
    bytes.as_ref().map_or(std::ptr::null(), |bytes| bytes.as_ptr().cast())
}

// ------------------------------------------------------------------ the sink

/// What the sink saw on one connection.
#[derive(Debug, Clone, Default)]
struct Session {
    /// Every command line, without CRLF.
    commands: Vec<String>,
    /// The message data as it arrived, without the closing ".", up to [`SINK_KEPT_DATA`].
    data: Vec<u8>,
    /// The size of the message data in bytes, CRLFs included.
    data_bytes: u64,
}

impl Session {
    fn ehlo(&self) -> &str {
        self.commands.first().map(String::as_str).unwrap_or("")
    }

    fn mail_from(&self) -> Vec<&str> {
        self.commands.iter().filter(|line| line.starts_with("MAIL FROM:")).map(String::as_str).collect()
    }

    /// Returns the recipient addresses of the RCPT TO commands, in order.
    fn recipients(&self) -> Vec<&str> {
        self.commands
            .iter()
            .filter_map(|line| line.strip_prefix("RCPT TO:<"))
            .map(|rest| rest.split('>').next().unwrap_or(""))
            .collect()
    }

    fn data_contains(&self, needle: &[u8]) -> bool {
        self.data.windows(needle.len()).any(|window| window == needle)
    }

    /// Returns the data after the header section of a composed message.
    fn data_text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// An SMTP server on 127.0.0.1 that accepts every command and message and records them.
struct Sink {
    port: u16,
    accepted: Arc<AtomicUsize>,
    sessions: Arc<Mutex<Vec<Session>>>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port failed");
        let port = listener.local_addr().expect("the listener has an address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let sessions = Arc::new(Mutex::new(Vec::new()));
        {
            let (accepted, sessions) = (Arc::clone(&accepted), Arc::clone(&sessions));
            // The thread serves one connection at a time until the test process ends.
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let session = play_sink(stream);
                    sessions.lock().unwrap().push(session);
                }
            });
        }
        Sink { port, accepted, sessions }
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits up to 10 s for the session of connection number `count` (from 1) to end, and
    /// returns it.
    fn session(&self, count: usize) -> Option<Session> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(session) = self.sessions.lock().unwrap().get(count - 1) {
                return Some(session.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Plays an accepting SMTP server on one connection until the client closes it.
fn play_sink(stream: TcpStream) -> Session {
    let mut session = Session::default();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else { return session };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();

    let _ = writer.write_all(SINK_GREETING);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let command = String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(&line)).into_owned();
        let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
        session.commands.push(command);
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.example.test\r\n250 8BITMIME\r\n",
            "DATA" => {
                let _ = writer.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                read_message_data(&mut reader, &mut session);
                b"250 2.0.0 Ok: queued\r\n"
            }
            "QUIT" => b"221 2.0.0 Bye\r\n",
            _ => b"250 2.0.0 Ok\r\n",
        };
        let _ = writer.write_all(reply);
    }
    session
}

/// Reads message data up to the lone "." line, keeping the first part and counting all.
fn read_message_data(reader: &mut BufReader<TcpStream>, session: &mut Session) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == b".\r\n" => return,
            Ok(count) => {
                session.data_bytes += count as u64;
                if session.data.len() < SINK_KEPT_DATA {
                    session.data.extend_from_slice(&line);
                }
            }
        }
    }
}

// ------------------------------------------------------------------ cases

/// The outcome of one call, read from the calling thread's diagnostics.
#[derive(Debug)]
struct Outcome {
    status: c_int,
    reply_code: c_int,
    error: String,
    transcript: String,
}

fn collect(status: c_int) -> Outcome {
    // SAFETY: the library returns NUL-terminated strings that stay valid until this thread's
    // next sending call, and they are copied at once.
    let (error, transcript) = unsafe {
        (
            CStr::from_ptr(ffi::smtp_last_error_text()).to_string_lossy().into_owned(),
            CStr::from_ptr(ffi::smtp_last_transcript_text()).to_string_lossy().into_owned(),
        )
    };
    Outcome { status, reply_code: ffi::smtp_last_reply_code(), error, transcript }
}

/// A check of what the sink received for a valid case.
type SessionCheck = fn(&Session) -> Result<(), String>;

/// What a case must produce.
enum Expect {
    /// SMTP_INVALID_ARGUMENT without a connection. The last error contains every one of
    /// `words` (ASCII case ignored) and none of `absent`.
    Invalid { words: &'static [&'static str], absent: &'static [&'static str] },
    /// SMTP_OK through one connection, and the check passes on what the sink received.
    Sent(SessionCheck),
}

fn invalid(words: &'static [&'static str]) -> Expect {
    Expect::Invalid { words, absent: &[] }
}

fn sent(check: SessionCheck) -> Expect {
    Expect::Sent(check)
}

fn delivered(_: &Session) -> Result<(), String> {
    Ok(())
}

/// Fails unless the sink saw exactly these recipients.
fn recipients_are(session: &Session, expected: &[&str]) -> Result<(), String> {
    if session.recipients() == expected {
        Ok(())
    } else {
        Err(format!("the sink got RCPT TO for {:?}, expected {expected:?}", session.recipients()))
    }
}

/// Fails unless MAIL FROM named `expected`.
fn sender_is(session: &Session, expected: &str) -> Result<(), String> {
    let prefix = format!("MAIL FROM:<{expected}>");
    if session.commands.iter().any(|command| command.starts_with(&prefix)) {
        Ok(())
    } else {
        Err(format!("the sink got no {prefix}: {:?}", session.commands))
    }
}

/// Fails unless the message data is exactly `expected`.
fn data_is(session: &Session, expected: &[u8]) -> Result<(), String> {
    if session.data == expected {
        Ok(())
    } else {
        Err(format!("the sink got the data {:?}, expected {:?}", String::from_utf8_lossy(&session.data), String::from_utf8_lossy(expected)))
    }
}

/// Fails unless the commands are exactly one EHLO, MAIL FROM, RCPT TO, DATA and QUIT: no
/// command was smuggled in.
fn plain_conversation(session: &Session) -> Result<(), String> {
    let verbs: Vec<&str> = session.commands.iter().map(|line| line.split([' ', ':']).next().unwrap_or("")).collect();
    if verbs == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"] {
        Ok(())
    } else {
        Err(format!("the sink got the commands {:?}", session.commands))
    }
}

/// Runs one case and returns its failures, each naming the case.
fn check_case(sink: &Sink, name: &str, expect: &Expect, call: impl FnOnce() -> c_int) -> Vec<String> {
    let before = sink.connections();
    let outcome = collect(call());
    let connections = sink.connections() - before;
    let mut failures = Vec::new();
    let mut fail = |problem: String| failures.push(format!("{name}: {problem} (error: {:?})", outcome.error));

    if outcome.error.contains('\n') {
        fail("the last error has more than one line".into());
    }
    match expect {
        Expect::Invalid { words, absent } => {
            if outcome.status != SMTP_INVALID_ARGUMENT {
                fail(format!("status {}, expected SMTP_INVALID_ARGUMENT", outcome.status));
            }
            if connections != 0 {
                fail(format!("the sink saw {connections} connection(s) for invalid input"));
            }
            if outcome.reply_code != 0 {
                fail(format!("reply code {}, expected 0", outcome.reply_code));
            }
            if !outcome.transcript.is_empty() {
                fail(format!("the transcript is not empty: {:?}", outcome.transcript));
            }
            let error = outcome.error.to_ascii_lowercase();
            for word in words.iter().filter(|word| !error.contains(&word.to_ascii_lowercase())) {
                fail(format!("the last error does not contain {word:?}"));
            }
            for word in absent.iter().filter(|word| outcome.error.contains(*word)) {
                fail(format!("the last error contains {word:?}, which it must not show"));
            }
        }
        Expect::Sent(check) => {
            if outcome.status != SMTP_OK {
                fail(format!("status {}, expected SMTP_OK; transcript:\n{}", outcome.status, outcome.transcript));
            }
            if connections != 1 {
                fail(format!("the sink saw {connections} connections, expected 1"));
            }
            if outcome.reply_code != 250 {
                fail(format!("reply code {}, expected 250", outcome.reply_code));
            }
            if !outcome.error.is_empty() {
                fail("the last error is not empty after a success".into());
            }
            if connections == 1 {
                match sink.session(before + 1) {
                    Some(session) => {
                        if let Err(problem) = check(&session) {
                            fail(problem);
                        }
                    }
                    None => fail("the sink did not finish the session within 10 s".into()),
                }
            }
        }
    }
    failures
}

fn assert_no_failures(failures: &[String], cases: usize) {
    assert!(failures.is_empty(), "{} problem(s) in {cases} cases:\n{}", failures.len(), failures.join("\n"));
}

// ------------------------------------------------------------------ smtp_send

/// The arguments of `smtp_send`. `port` of `None` means the sink's port.
#[derive(Clone)]
struct SendArgs {
    host: Arg,
    port: Option<c_int>,
    helo: Arg,
    from: Arg,
    to: Arg,
    body: Arg,
}

impl SendArgs {
    fn valid() -> SendArgs {
        SendArgs {
            host: text("127.0.0.1"),
            port: None,
            helo: text("client.example.test"),
            from: text("sender@example.test"),
            to: text("rcpt@example.test"),
            body: text("Subject: bad input\r\n\r\nHello.\r\n"),
        }
    }
    fn host(self, host: Arg) -> Self {
        SendArgs { host, ..self }
    }
    fn port(self, port: c_int) -> Self {
        SendArgs { port: Some(port), ..self }
    }
    fn helo(self, helo: Arg) -> Self {
        SendArgs { helo, ..self }
    }
    fn from(self, from: Arg) -> Self {
        SendArgs { from, ..self }
    }
    fn to(self, to: Arg) -> Self {
        SendArgs { to, ..self }
    }
    fn body(self, body: Arg) -> Self {
        SendArgs { body, ..self }
    }

    fn call(&self, sink_port: u16) -> c_int {
        let [host, helo, from, to, body] = [&self.host, &self.helo, &self.from, &self.to, &self.body].map(Arg::to_c);
        let port = self.port.unwrap_or(c_int::from(sink_port));
        // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
        unsafe { ffi::smtp_send(pointer(&host), port, pointer(&helo), pointer(&from), pointer(&to), pointer(&body)) }
    }
}

#[test]
fn send_rejects_bad_arguments() {
    let _serial = serial();
    let sink = Sink::start();
    let base = SendArgs::valid;
    let vm = &[0xFDu8][..];
    let am = &[0xFEu8][..];

    let cases: Vec<(&str, SendArgs, Expect)> = vec![
        ("valid baseline", base(), sent(plain_conversation)),
        // NULL in every pointer argument. helo may be NULL: the machine's name is used.
        ("host NULL", base().host(Arg::Null), invalid(&["host", "NULL"])),
        ("helo NULL", base().helo(Arg::Null), sent(|s| if s.ehlo().len() > 5 && s.ehlo() != "EHLO client.example.test" { Ok(()) } else { Err(format!("EHLO {:?}", s.ehlo())) })),
        ("from NULL", base().from(Arg::Null), invalid(&["from", "NULL"])),
        ("to NULL", base().to(Arg::Null), invalid(&["to", "NULL"])),
        ("body NULL", base().body(Arg::Null), invalid(&["body", "NULL"])),
        // Empty strings. "" as from is the null sender; an empty body is sent as an empty message.
        ("host empty", base().host(text("")), invalid(&["host", "empty"])),
        ("helo empty", base().helo(text("")), sent(|s| if s.ehlo().len() > 5 { Ok(()) } else { Err(format!("EHLO {:?}", s.ehlo())) })),
        ("from empty", base().from(text("")), sent(|s| if s.mail_from() == ["MAIL FROM:<>"] { Ok(()) } else { Err(format!("{:?}", s.mail_from())) })),
        ("to empty", base().to(text("")), invalid(&["recipient"])),
        ("body empty", base().body(text("")), sent(|s| data_is(s, b""))),
        // Bytes that are not UTF-8. The body may carry any 8-bit text, unchanged.
        ("host not UTF-8", base().host(text(b"\xff\xfe")), invalid(&["host"])),
        ("helo not UTF-8", base().helo(text(b"\xc3\x28")), invalid(&["helo"])),
        ("from not UTF-8", base().from(text(b"\xff@example.test")), invalid(&["sender", "UTF-8"])),
        ("to not UTF-8", base().to(text(b"\xff@example.test")), invalid(&["recipient", "UTF-8"])),
        ("body not UTF-8", base().body(text(b"Subject: x\r\n\r\ncaf\xe9 \xff\r\n")), sent(|s| data_is(s, b"Subject: x\r\n\r\ncaf\xe9 \xff\r\n"))),
        // CR and LF.
        ("host with CRLF", base().host(text("127.0.0.1\r\n")), invalid(&["host", "CR"])),
        ("host with LF and more", base().host(text("127.0.0.1\nport=25")), invalid(&["host", "LF"])),
        ("helo with CR", base().helo(text("a\rb")), invalid(&["helo", "CR"])),
        ("helo with CRLF command", base().helo(text("client.example.test\r\nRSET")), invalid(&["helo"])),
        ("from with CRLF command", base().from(text("sender@example.test\r\nRCPT TO:<evil@example.test>")), invalid(&["sender", "CR"])),
        ("from with LF", base().from(text("sender@example.test\n")), invalid(&["sender", "LF"])),
        ("to with CRLF command", base().to(text("rcpt@example.test\r\nDATA")), invalid(&["recipient", "CR"])),
        ("to with trailing LF", base().to(text("rcpt@example.test\n")), invalid(&["recipient", "LF"])),
        ("body with a lone dot", base().body(text("Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<evil@example.test>\r\n")), sent(|s| {
            plain_conversation(s)?;
            data_is(s, b"Subject: x\r\n\r\nhi\r\n..\r\nMAIL FROM:<evil@example.test>\r\n")
        })),
        ("body with bare LF dot", base().body(text("Subject: x\r\n\r\nhi\n.\nQUIT\n")), sent(|s| {
            plain_conversation(s)?;
            data_is(s, b"Subject: x\r\n\r\nhi\r\n..\r\nQUIT\r\n")
        })),
        ("body with bare CR", base().body(text("Subject: x\r\n\r\na\rb")), sent(|s| data_is(s, b"Subject: x\r\n\r\na\r\nb\r\n"))),
        // Strings that a NUL ends early: the library reads up to the NUL, as C does.
        ("host ends early", base().host(text(b"127.0.0.1\0.evil.example")), sent(plain_conversation)),
        ("helo ends early", base().helo(text(b"client.example.test\0\r\nRSET")), sent(|s| {
            plain_conversation(s)?;
            if s.ehlo() == "EHLO client.example.test" { Ok(()) } else { Err(format!("EHLO {:?}", s.ehlo())) }
        })),
        ("from ends early", base().from(text(b"sender@example.test\0\r\nRCPT TO:<evil@example.test>")), sent(|s| recipients_are(s, &["rcpt@example.test"]))),
        ("to ends early", base().to(text(b"rcpt@example.test\0,evil@example.test")), sent(|s| recipients_are(s, &["rcpt@example.test"]))),
        ("body ends early", base().body(text(b"Subject: x\r\n\r\nvisible\0hidden")), sent(|s| data_is(s, b"Subject: x\r\n\r\nvisible\r\n"))),
        // Ports out of range. Port 0 means 25, which this test has not set up, so it is not tried.
        ("port -1", base().port(-1), invalid(&["port", "-1"])),
        ("port 65536", base().port(65536), invalid(&["port", "65536"])),
        ("port 100000", base().port(100_000), invalid(&["port"])),
        ("port INT_MIN", base().port(c_int::MIN), invalid(&["port", "-2147483648"])),
        ("port INT_MAX", base().port(c_int::MAX), invalid(&["port", "2147483647"])),
        // Value marks in the recipient list: leading, trailing, doubled, both forms.
        ("to leading value mark", base().to(join(&[vm, b"rcpt@example.test"])), sent(|s| recipients_are(s, &["rcpt@example.test"]))),
        ("to trailing value mark", base().to(join(&[b"rcpt@example.test", vm])), sent(|s| recipients_are(s, &["rcpt@example.test"]))),
        ("to doubled value mark", base().to(join(&[b"a@example.test", vm, vm, b"b@example.test"])), sent(|s| recipients_are(s, &["a@example.test", "b@example.test"]))),
        ("to UTF-8 value marks", base().to(text(format!("{VM}a@example.test{VM}{VM}b@example.test{VM}"))), sent(|s| recipients_are(s, &["a@example.test", "b@example.test"]))),
        ("to both mark forms", base().to(join(&[b"a@example.test", vm, b"b@example.test", VM.as_bytes(), b"c@example.test"])), sent(|s| {
            recipients_are(s, &["a@example.test", "b@example.test", "c@example.test"])
        })),
        ("to only value marks", base().to(join(&[vm, vm])), invalid(&["recipient", "no address"])),
        ("to only UTF-8 value marks", base().to(text(format!("{VM}{VM}"))), invalid(&["recipient", "no address"])),
        // Attribute marks in the body become line breaks; value marks stay.
        ("body leading attribute mark", base().body(join(&[am, b"Subject: x", am, am, b"hi"])), sent(|s| data_is(s, b"\r\nSubject: x\r\n\r\nhi\r\n"))),
        ("body trailing attribute mark", base().body(join(&[b"Subject: x", am, am, b"hi", am])), sent(|s| data_is(s, b"Subject: x\r\n\r\nhi\r\n"))),
        ("body doubled attribute marks", base().body(join(&[b"Subject: x", am, am, b"a", am, am, b"b"])), sent(|s| data_is(s, b"Subject: x\r\n\r\na\r\n\r\nb\r\n"))),
        ("body UTF-8 attribute marks", base().body(text(format!("Subject: x{AM}{AM}a{AM}{AM}b{AM}"))), sent(|s| data_is(s, b"Subject: x\r\n\r\na\r\n\r\nb\r\n"))),
        ("body both mark forms", base().body(join(&[b"Subject: x", am, am, b"a", am, b"b", AM.as_bytes(), b"c"])), sent(|s| data_is(s, b"Subject: x\r\n\r\na\r\nb\r\nc\r\n"))),
        ("body value mark kept", base().body(join(&[b"Subject: x\r\n\r\na", vm, b"b"])), sent(|s| data_is(s, b"Subject: x\r\n\r\na\xfdb\r\n"))),
        // Marks where no list is expected.
        // A trailing value mark leaves an empty second entry, which does not count.
        ("from with trailing value mark", base().from(join(&[b"sender@example.test", vm])), sent(|s| sender_is(s, "sender@example.test"))),
        ("from with two values", base().from(join(&[b"sender@example.test", vm, b"other@example.test"])), invalid(&["sender"])),
        ("helo with attribute mark", base().helo(join(&[b"a", am, b"b"])), invalid(&["helo"])),
        ("host with value mark", base().host(join(&[b"127.0.0.1", vm])), invalid(&["host"])),
    ];

    let mut failures = Vec::new();
    for (name, arguments, expect) in &cases {
        failures.extend(check_case(&sink, name, expect, || arguments.call(sink.port)));
    }
    assert_no_failures(&failures, cases.len());
}

#[test]
fn send_non_ascii_local_part_after_ehlo() {
    // Whether an address whose local part is not ASCII can be sent depends on the server's
    // SMTPUTF8, so the library learns it only from the reply to EHLO. The status is still
    // SMTP_INVALID_ARGUMENT, but a connection was made: EHLO and QUIT reach the server, and
    // no MAIL FROM does.
    let _serial = serial();
    let sink = Sink::start();
    let outcome = collect(SendArgs::valid().to(text("j\u{f6}e@example.test")).call(sink.port));

    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);
    assert!(outcome.error.contains("j\u{f6}e@example.test"), "{}", outcome.error);
    assert!(outcome.error.contains("SMTPUTF8"), "{}", outcome.error);
    let session = sink.session(1).expect("the client connected");
    assert_eq!(session.commands, ["EHLO client.example.test", "QUIT"]);
}

// ------------------------------------------------------------------ smtp_send_with

/// The arguments of `smtp_send_with`; "PORT" in the options becomes the sink's port.
struct SendWithArgs {
    options: Arg,
    from: Arg,
    to: Arg,
    body: Arg,
}

impl SendWithArgs {
    fn with_options(options: Arg) -> SendWithArgs {
        SendWithArgs { options, from: text("sender@example.test"), to: text("rcpt@example.test"), body: text("Subject: options\r\n\r\nHello.\r\n") }
    }

    fn call(&self, sink_port: u16) -> c_int {
        let [options, from, to, body] = [&self.options.with_port(sink_port), &self.from, &self.to, &self.body].map(Arg::to_c);
        // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
        unsafe { ffi::smtp_send_with(pointer(&options), pointer(&from), pointer(&to), pointer(&body)) }
    }
}

/// Fails unless EHLO gave this name.
fn ehlo_is(session: &Session, name: &str) -> Result<(), String> {
    if session.ehlo() == format!("EHLO {name}") {
        Ok(())
    } else {
        Err(format!("the sink got {:?}, expected EHLO {name}", session.ehlo()))
    }
}

#[test]
fn send_with_rejects_bad_options() {
    let _serial = serial();
    let sink = Sink::start();
    let options = |list: &[u8]| SendWithArgs::with_options(text(list));
    let with_base = |extra: &str| SendWithArgs::with_options(text(format!("host=127.0.0.1\nport=PORT\nhelo=client.example.test\n{extra}")));
    let am = &[0xFEu8][..];
    let vm = &[0xFDu8][..];
    let null_argument = |field: &str| {
        let mut arguments = with_base("");
        match field {
            "from" => arguments.from = Arg::Null,
            "to" => arguments.to = Arg::Null,
            _ => arguments.body = Arg::Null,
        }
        arguments
    };

    let cases: Vec<(&str, SendWithArgs, Expect)> = vec![
        ("valid baseline", with_base(""), sent(|s| ehlo_is(s, "client.example.test"))),
        // NULL and empty. NULL options mean none, so host is missing.
        ("options NULL", SendWithArgs::with_options(Arg::Null), invalid(&["host", "not set"])),
        ("options empty", options(b""), invalid(&["host", "not set"])),
        ("from NULL", null_argument("from"), invalid(&["from", "NULL"])),
        ("to NULL", null_argument("to"), invalid(&["to", "NULL"])),
        ("body NULL", null_argument("body"), invalid(&["body", "NULL"])),
        ("host value empty", options(b"host=\nport=PORT"), invalid(&["host", "not set"])),
        ("option name empty", with_base("=x"), invalid(&["Unknown option"])),
        // Bytes that are not UTF-8, in a value and in a name.
        ("helo value not UTF-8", options(b"host=127.0.0.1\nport=PORT\nhelo=\xff"), invalid(&["helo", "UTF-8"])),
        ("host value not UTF-8", options(b"host=\xff\nport=PORT"), invalid(&["host", "UTF-8"])),
        ("option name not UTF-8", options(b"host=127.0.0.1\nport=PORT\n\xff=1"), invalid(&["Unknown option", "\\xFF"])),
        // CR and LF: LF, CRLF and a bare CR separate entries, so a line break inside a
        // value splits it, and the rest is a line without '='.
        ("options ending in CRLF", options(b"host=127.0.0.1\nport=PORT\r\n"), sent(delivered)),
        ("options separated by CRLF", options(b"host=127.0.0.1\r\nport=PORT\r\nhelo=crlf.example.test"), sent(|s| ehlo_is(s, "crlf.example.test"))),
        ("options separated by bare CR", options(b"host=127.0.0.1\rport=PORT\rhelo=cr.example.test"), sent(|s| ehlo_is(s, "cr.example.test"))),
        ("helo value with CR", options(b"host=127.0.0.1\nport=PORT\nhelo=a\rb"), invalid(&["line 4", "no '='"])),
        ("helo value with CRLF command", options(b"host=127.0.0.1\nport=PORT\nhelo=client.example.test\r\nMAIL FROM:<evil@example.test>"), invalid(&["line 4", "no '='"])),
        ("helo value with TAB", with_base("helo=a\tb"), invalid(&["helo", "0x09"])),
        ("password with control character", with_base("user=u\npassword=hunt\u{1}er2\ntls=none\ninsecure_plaintext_auth=1"), Expect::Invalid {
            words: &["password", "0x01"],
            absent: &["hunt"],
        }),
        // A NUL ends the list early: tls=implicit after it is never read.
        ("options end early", options(b"host=127.0.0.1\nport=PORT\0\ntls=implicit"), sent(delivered)),
        // Ports, timeouts and names out of range.
        ("port -1", options(b"host=127.0.0.1\nport=-1"), invalid(&["port", "\"-1\""])),
        ("port 0", options(b"host=127.0.0.1\nport=0"), invalid(&["port", "\"0\""])),
        ("port 65536", options(b"host=127.0.0.1\nport=65536"), invalid(&["port", "65536"])),
        ("port 20 digits", options(b"host=127.0.0.1\nport=99999999999999999999"), invalid(&["port", "99999999999999999999"])),
        ("port not a number", options(b"host=127.0.0.1\nport=abc"), invalid(&["port", "abc"])),
        ("timeout 0", with_base("timeout=0"), invalid(&["timeout", "1 to 3600"])),
        ("timeout -1", with_base("timeout=-1"), invalid(&["timeout", "1 to 3600"])),
        ("timeout 3601", with_base("timeout=3601"), invalid(&["timeout", "1 to 3600"])),
        ("timeout 20 digits", with_base("timeout=99999999999999999999"), invalid(&["timeout", "1 to 3600"])),
        ("timeout fraction", with_base("timeout=1.5"), invalid(&["timeout", "1 to 3600"])),
        ("unknown option", with_base("colour=blue"), invalid(&["Unknown option", "colour"])),
        ("line without =", with_base("noequals"), invalid(&["line 4", "no '='"])),
        // Attribute marks separate entries: leading, trailing, doubled, both forms.
        ("leading attribute mark", SendWithArgs::with_options(join(&[am, b"host=127.0.0.1", am, b"port=PORT"])), sent(delivered)),
        ("trailing attribute mark", SendWithArgs::with_options(join(&[b"host=127.0.0.1", am, b"port=PORT", am])), sent(delivered)),
        ("doubled attribute marks", SendWithArgs::with_options(join(&[b"host=127.0.0.1", am, am, b"port=PORT"])), sent(delivered)),
        ("UTF-8 attribute marks", options(format!("{AM}host=127.0.0.1{AM}{AM}port=PORT{AM}").as_bytes()), sent(delivered)),
        ("both mark forms", SendWithArgs::with_options(join(&[b"host=127.0.0.1", am, b"port=PORT", AM.as_bytes(), b"helo=marks.example.test"])), sent(|s| {
            ehlo_is(s, "marks.example.test")
        })),
        ("value mark inside a value", SendWithArgs::with_options(join(&[b"host=127.0.0.1\nport=PORT\nhelo=a", vm, b"b"])), invalid(&["helo"])),
    ];

    let mut failures = Vec::new();
    for (name, arguments, expect) in &cases {
        failures.extend(check_case(&sink, name, expect, || arguments.call(sink.port)));
    }
    assert_no_failures(&failures, cases.len());
}

// ------------------------------------------------------------------ smtp_send_message

/// The arguments of `smtp_send_message`; "PORT" in the options becomes the sink's port.
#[derive(Clone)]
struct MessageArgs {
    options: Arg,
    from: Arg,
    to: Arg,
    subject: Arg,
    body: Arg,
    attachments: Arg,
}

impl MessageArgs {
    fn valid() -> MessageArgs {
        MessageArgs {
            options: text("host=127.0.0.1\nport=PORT\nhelo=client.example.test"),
            from: text("Sender <sender@example.test>"),
            to: text("rcpt@example.test"),
            subject: text("Bad input"),
            body: text("Hello."),
            attachments: Arg::Null,
        }
    }
    fn options(self, options: Arg) -> Self {
        MessageArgs { options, ..self }
    }
    fn from(self, from: Arg) -> Self {
        MessageArgs { from, ..self }
    }
    fn to(self, to: Arg) -> Self {
        MessageArgs { to, ..self }
    }
    fn subject(self, subject: Arg) -> Self {
        MessageArgs { subject, ..self }
    }
    fn body(self, body: Arg) -> Self {
        MessageArgs { body, ..self }
    }
    fn attachments(self, attachments: Arg) -> Self {
        MessageArgs { attachments, ..self }
    }

    fn call(&self, sink_port: u16) -> c_int {
        let [options, from, to, subject, body, attachments] =
            [&self.options.with_port(sink_port), &self.from, &self.to, &self.subject, &self.body, &self.attachments].map(Arg::to_c);
        // SAFETY: every pointer is NULL or a NUL-terminated string that outlives the call.
        unsafe {
            ffi::smtp_send_message(pointer(&options), pointer(&from), pointer(&to), pointer(&subject), pointer(&body), pointer(&attachments))
        }
    }
}

/// Fails unless the composed message has this Subject header line.
fn subject_is(session: &Session, expected: &str) -> Result<(), String> {
    let data = session.data_text();
    let subject = data.split("\r\n").find(|line| line.starts_with("Subject:"));
    if subject == Some(expected) {
        Ok(())
    } else {
        Err(format!("the message has the subject line {subject:?}, expected {expected:?}"))
    }
}

/// Fails unless the composed message contains the text.
fn message_contains(session: &Session, expected: &str) -> Result<(), String> {
    if session.data_contains(expected.as_bytes()) {
        Ok(())
    } else {
        Err(format!("the message does not contain {expected:?}:\n{}", session.data_text()))
    }
}

#[test]
fn send_message_rejects_bad_parts() {
    let _serial = serial();
    let sink = Sink::start();
    let base = MessageArgs::valid;
    let vm = &[0xFDu8][..];
    let am = &[0xFEu8][..];
    let svm = &[0xFCu8][..];

    let cases: Vec<(&str, MessageArgs, Expect)> = vec![
        ("valid baseline", base(), sent(|s| subject_is(s, "Subject: Bad input"))),
        // NULL in every pointer argument; attachments may be NULL.
        ("options NULL", base().options(Arg::Null), invalid(&["host", "not set"])),
        ("from NULL", base().from(Arg::Null), invalid(&["from", "NULL"])),
        ("to NULL", base().to(Arg::Null), invalid(&["to", "NULL"])),
        ("subject NULL", base().subject(Arg::Null), invalid(&["subject", "NULL"])),
        ("body NULL", base().body(Arg::Null), invalid(&["body", "NULL"])),
        ("attachments NULL", base().attachments(Arg::Null), sent(delivered)),
        // Empty strings: a composed message needs a sender and a recipient.
        ("options empty", base().options(text("")), invalid(&["host", "not set"])),
        ("from empty", base().from(text("")), invalid(&["sender"])),
        ("to empty", base().to(text("")), invalid(&["recipient"])),
        ("subject empty", base().subject(text("")), sent(delivered)),
        ("body empty", base().body(text("")), sent(delivered)),
        ("attachments empty", base().attachments(text("")), sent(delivered)),
        // Bytes that are not UTF-8: refused unless charset names the code page.
        ("from not UTF-8", base().from(text(b"\xff@example.test")), invalid(&["sender", "UTF-8"])),
        ("to not UTF-8", base().to(text(b"\xff@example.test")), invalid(&["recipient", "UTF-8"])),
        ("subject not UTF-8", base().subject(text(b"caf\xe9")), invalid(&["subject", "UTF-8", "charset"])),
        ("body not UTF-8", base().body(text(b"caf\xe9")), invalid(&["body", "UTF-8", "charset"])),
        ("attachment path not UTF-8", base().attachments(text(b"/nonexistent/\xff.pdf")), invalid(&["attachment 1"])),
        ("Latin-1 with charset", base().options(text("host=127.0.0.1\nport=PORT\ncharset=ISO-8859-1")).subject(text(b"caf\xe9")).body(text(b"caf\xe9")), sent(|s| {
            message_contains(s, "Subject: =?utf-8?")
        })),
        // CR and LF: no header or command can be added through a line break.
        ("subject with CRLF header", base().subject(text("Hello\r\nBcc: evil@example.test")), invalid(&["subject", "line break"])),
        ("subject with LF", base().subject(text("Hello\nX-Evil: 1")), invalid(&["subject", "line break"])),
        ("subject with CR", base().subject(text("Hello\rX-Evil: 1")), invalid(&["subject", "line break"])),
        ("from with CRLF command", base().from(text("sender@example.test\r\nRCPT TO:<evil@example.test>")), invalid(&["sender", "CR"])),
        ("to with CRLF command", base().to(text("rcpt@example.test\r\nRCPT TO:<evil@example.test>")), invalid(&["recipient", "CR"])),
        ("body with a lone dot", base().body(text("a\r\n.\r\nMAIL FROM:<evil@example.test>")), sent(|s| {
            plain_conversation(s)?;
            message_contains(s, "\r\n..\r\nMAIL FROM:<evil@example.test>\r\n")
        })),
        ("header option with Bcc", base().options(text("host=127.0.0.1\nport=PORT\nheader=Bcc: evil@example.test")), invalid(&["header", "bcc"])),
        ("header option with CRLF", base().options(text("host=127.0.0.1\nport=PORT\nheader=X-Test: a\r\nX-Evil: b")), invalid(&["line 4"])),
        // A missing attachment file.
        ("attachment missing", base().attachments(text("/nonexistent/mvsmtp-bad-input.pdf")), invalid(&["attachment 1", "/nonexistent/mvsmtp-bad-input.pdf"])),
        // Strings that a NUL ends early.
        ("options end early", base().options(text(b"host=127.0.0.1\nport=PORT\0\ncharset=bogus")), sent(delivered)),
        ("subject ends early", base().subject(text(b"Visible\0\r\nBcc: evil@example.test")), sent(|s| {
            subject_is(s, "Subject: Visible")?;
            recipients_are(s, &["rcpt@example.test"])
        })),
        ("body ends early", base().body(text(b"visible\0hidden")), sent(|s| {
            message_contains(s, "visible")?;
            if s.data_contains(b"hidden") { Err("the hidden part was sent".into()) } else { Ok(()) }
        })),
        ("attachments end early", base().attachments(join(&[vm, b"note.txt", vm, b"text/plain", vm, b"inline note\0", am, b"/nonexistent/hidden.pdf"])), sent(|s| {
            message_contains(s, "filename=\"note.txt\"")?;
            message_contains(s, "inline note")
        })),
        // Marks in every list and text.
        ("to with marks", base().to(join(&[vm, b"a@example.test", vm, vm, b"b@example.test", VM.as_bytes()])), sent(|s| {
            recipients_are(s, &["a@example.test", "b@example.test"])
        })),
        ("to only marks", base().to(join(&[vm, VM.as_bytes(), vm])), invalid(&["recipient"])),
        ("cc only marks", base().options(join(&[b"host=127.0.0.1\nport=PORT\ncc=", vm, vm])), invalid(&["cc", "no address"])),
        ("body with marks", base().body(join(&[am, b"line one", am, am, b"line two", AM.as_bytes()])), sent(|s| {
            message_contains(s, "\r\nline one\r\n\r\nline two\r\n")
        })),
        ("subject with attribute mark", base().subject(join(&[b"a", am, b"b"])), sent(|s| subject_is(s, "Subject: a b"))),
        ("subject with UTF-8 attribute mark", base().subject(text(format!("a{AM}b"))), sent(|s| subject_is(s, "Subject: a b"))),
        ("attachment given inline", base().attachments(join(&[vm, b"note.txt", vm, b"text/plain", vm, b"line one", svm, b"line two"])), sent(|s| {
            message_contains(s, "filename=\"note.txt\"")?;
            message_contains(s, "line one\r\nline two")
        })),
        ("attachments only marks", base().attachments(join(&[am, am])), sent(|s| {
            if s.data_contains(b"Content-Disposition: attachment") { Err("an attachment was added".into()) } else { Ok(()) }
        })),
    ];

    let mut failures = Vec::new();
    for (name, arguments, expect) in &cases {
        failures.extend(check_case(&sink, name, expect, || arguments.call(sink.port)));
    }
    assert_no_failures(&failures, cases.len());
}

// ------------------------------------------------------------------ smtp_set_option

fn set_option(name: &Arg, value: &Arg) -> c_int {
    let (name, value) = (name.to_c(), value.to_c());
    // SAFETY: both pointers are NULL or NUL-terminated strings that outlive the call.
    unsafe { ffi::smtp_set_option(pointer(&name), pointer(&value)) }
}

/// Sends with only host and port in the options, so the process-wide defaults decide the rest.
fn send_with_defaults(sink: &Sink) -> c_int {
    SendWithArgs::with_options(text("host=127.0.0.1\nport=PORT")).call(sink.port)
}

#[test]
fn set_option_rejects_bad_values() {
    let _serial = serial();
    let sink = Sink::start();
    let vm = &[0xFDu8][..];
    let am = &[0xFEu8][..];

    let cases: Vec<(&str, Arg, Arg, Expect)> = vec![
        ("name NULL", Arg::Null, text("5"), invalid(&["name", "NULL"])),
        ("value NULL", text("timeout"), Arg::Null, invalid(&["value", "NULL"])),
        ("both NULL", Arg::Null, Arg::Null, invalid(&["NULL"])),
        ("name empty", text(""), text("5"), invalid(&["Unknown option"])),
        ("name not UTF-8", text(b"\xff"), text("5"), invalid(&["Unknown option", "\\xFF"])),
        ("value not UTF-8", text("helo"), text(b"\xff"), invalid(&["helo", "UTF-8"])),
        ("name with CR", text("time\rout"), text("5"), invalid(&["Unknown option"])),
        ("helo with CR", text("helo"), text("a\rb"), invalid(&["helo", "CR"])),
        ("helo with CRLF command", text("helo"), text("client.example.test\r\nRSET"), invalid(&["helo"])),
        ("host with CRLF", text("host"), text("127.0.0.1\r\n"), invalid(&["host"])),
        ("timeout with LF", text("timeout"), text("5\n"), invalid(&["timeout"])),
        ("port -1", text("port"), text("-1"), invalid(&["port"])),
        ("port 0", text("port"), text("0"), invalid(&["port"])),
        ("port 65536", text("port"), text("65536"), invalid(&["port"])),
        ("port 20 digits", text("port"), text("99999999999999999999"), invalid(&["port"])),
        ("timeout 0", text("timeout"), text("0"), invalid(&["timeout"])),
        ("timeout 3601", text("timeout"), text("3601"), invalid(&["timeout"])),
        ("timeout -2147483648", text("timeout"), text("-2147483648"), invalid(&["timeout"])),
        ("helo with value mark", text("helo"), join(&[b"a", vm, b"b"]), invalid(&["helo"])),
        ("helo with attribute mark", text("helo"), join(&[b"a", am, b"b"]), invalid(&["helo"])),
        ("password with control character", text("password"), text("hunt\u{1}er2"), Expect::Invalid { words: &["password"], absent: &["hunt"] }),
        ("tls unknown", text("tls"), text("ssl"), invalid(&["tls", "ssl"])),
    ];

    let mut failures = Vec::new();
    for (name, option, value, expect) in &cases {
        failures.extend(check_case(&sink, name, expect, || set_option(option, value)));
    }

    // None of the invalid values changed the defaults: a send with only host and port gets
    // the machine's EHLO name, the default timeout and no TLS.
    failures.extend(check_case(&sink, "defaults unchanged", &sent(|s| {
        if s.ehlo().contains("client.example.test") || s.ehlo().contains('\r') { Err(format!("EHLO {:?}", s.ehlo())) } else { Ok(()) }
    }), || send_with_defaults(&sink)));

    // A NUL ends the name or the value early, as in C: the part before it is set.
    let early_cases: [(&str, Arg, Arg, &str); 2] = [
        ("name ends early", text(b"helo\0junk"), text("nul-name.example.test"), "nul-name.example.test"),
        ("value ends early", text("helo"), text(b"nul-value.example.test\0\r\nRSET"), "nul-value.example.test"),
    ];
    for (name, option, value, expected_helo) in &early_cases {
        let status = set_option(option, value);
        if status != SMTP_OK {
            failures.push(format!("{name}: status {status}, expected SMTP_OK: {}", collect(status).error));
            continue;
        }
        let outcome = collect(send_with_defaults(&sink));
        let session = sink.session(sink.connections());
        let restored = set_option(&text("helo"), &text(""));
        if outcome.status != SMTP_OK || restored != SMTP_OK {
            failures.push(format!("{name}: send status {}, restore status {restored}: {}", outcome.status, outcome.error));
        }
        match session {
            Some(session) if session.ehlo() == format!("EHLO {expected_helo}") && plain_conversation(&session).is_ok() => {}
            other => failures.push(format!("{name}: the sink got {:?}, expected EHLO {expected_helo} and nothing more", other.map(|s| s.commands))),
        }
    }
    assert_no_failures(&failures, cases.len() + 1 + early_cases.len());
}

// ------------------------------------------------------------------ buffers and returned strings

/// A buffer with guard bytes after the size given to the library, which must stay untouched.
struct GuardedBuffer {
    bytes: Vec<u8>,
    size: usize,
}

const GUARD_BYTE: u8 = 0xAA;
const GUARD_LENGTH: usize = 16;

impl GuardedBuffer {
    fn new(size: usize) -> GuardedBuffer {
        GuardedBuffer { bytes: vec![GUARD_BYTE; size + GUARD_LENGTH], size }
    }

    fn size(&self) -> c_int {
        c_int::try_from(self.size).unwrap()
    }

    fn pointer(&mut self) -> *mut c_char {
        self.bytes.as_mut_ptr().cast()
    }

    fn guard_intact(&self) -> bool {
        self.bytes[self.size..].iter().all(|&byte| byte == GUARD_BYTE)
    }

    /// Returns the bytes before the first NUL within the size.
    fn text(&self) -> &[u8] {
        let written = &self.bytes[..self.size];
        &written[..written.iter().position(|&byte| byte == 0).unwrap_or(written.len())]
    }
}

/// `smtp_last_error` or `smtp_last_transcript`.
type CopyFunction = unsafe extern "C" fn(*mut c_char, c_int) -> c_int;

/// Checks one copy function against the full text, which has a character of two bytes at
/// `split_at`. The buffer sizes are 0, 1, a size that would cut that character, and the
/// full size. A NULL buffer is tried with sizes from INT_MIN to INT_MAX.
fn check_copies(label: &str, copy: CopyFunction, full: &[u8], split_at: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let length = c_int::try_from(full.len()).unwrap();

    for size in [c_int::MIN, -1, 0, 1, 100, c_int::MAX] {
        // SAFETY: a NULL buffer is allowed with any size; nothing is written.
        let returned = unsafe { copy(std::ptr::null_mut(), size) };
        if returned != length {
            failures.push(format!("{label}(NULL, {size}) returned {returned}, expected the length {length}"));
        }
    }

    let cut_size = split_at + 2;
    for (size, expected) in [(0, None), (1, Some(&full[..0])), (cut_size, Some(&full[..split_at])), (full.len() + 1, Some(full))] {
        let mut buffer = GuardedBuffer::new(size);
        // SAFETY: the buffer has at least `size` writable bytes.
        let returned = unsafe { copy(buffer.pointer(), buffer.size()) };
        if returned != length {
            failures.push(format!("{label}(buffer, {size}) returned {returned}, expected {length}"));
        }
        if !buffer.guard_intact() {
            failures.push(format!("{label}(buffer, {size}) wrote past the size"));
        }
        match expected {
            None if buffer.bytes[..size].iter().any(|&byte| byte != GUARD_BYTE) => {
                failures.push(format!("{label}(buffer, 0) wrote into the buffer"));
            }
            None => {}
            Some(expected) => {
                let nul_at = expected.len();
                if buffer.text() != expected || buffer.bytes[nul_at] != 0 {
                    failures.push(format!(
                        "{label}(buffer, {size}) copied {:?}, expected {:?} and a NUL",
                        String::from_utf8_lossy(buffer.text()),
                        String::from_utf8_lossy(expected)
                    ));
                }
            }
        }
    }
    failures
}

#[test]
fn error_and_transcript_buffers() {
    let _serial = serial();
    let sink = Sink::start();

    // An error with a character of two bytes: "ö" of the address, which the error quotes.
    let outcome = collect(SendArgs::valid().to(text("j\u{f6}e@example.test")).call(sink.port));
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", outcome.error);
    let error = outcome.error.as_bytes().to_vec();
    let split_at = outcome.error.find('\u{f6}').expect("the error quotes the address");
    let mut failures = check_copies("smtp_last_error", ffi::smtp_last_error, &error, split_at);

    // A transcript with a character of two bytes: the "é" of the sink's greeting.
    let outcome = collect(SendArgs::valid().call(sink.port));
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    let transcript = outcome.transcript.as_bytes().to_vec();
    let split_at = outcome.transcript.find('\u{e9}').expect("the transcript has the greeting");
    failures.extend(check_copies("smtp_last_transcript", ffi::smtp_last_transcript, &transcript, split_at));

    // The error after a success is empty, in the buffer and as a pointer.
    let mut buffer = GuardedBuffer::new(8);
    // SAFETY: the buffer has 8 writable bytes.
    let length = unsafe { ffi::smtp_last_error(buffer.pointer(), buffer.size()) };
    if length != 0 || buffer.bytes[0] != 0 {
        failures.push(format!("after a success smtp_last_error returned {length} and {:?}", buffer.text()));
    }
    assert_no_failures(&failures, 3);
}

#[test]
fn fresh_thread_has_empty_results() {
    let _serial = serial();
    let fresh = thread::spawn(|| {
        // SAFETY: the returned pointers are valid NUL-terminated strings.
        let (error, transcript) = unsafe { (CStr::from_ptr(ffi::smtp_last_error_text()), CStr::from_ptr(ffi::smtp_last_transcript_text())) };
        // SAFETY: a NULL buffer is allowed with any size.
        let lengths = unsafe { (ffi::smtp_last_error(std::ptr::null_mut(), 0), ffi::smtp_last_transcript(std::ptr::null_mut(), 0)) };
        (error.to_bytes().to_vec(), transcript.to_bytes().to_vec(), ffi::smtp_last_reply_code(), lengths)
    })
    .join()
    .expect("the thread does not panic");
    assert_eq!(fresh, (Vec::new(), Vec::new(), 0, (0, 0)));

    // Each invalid call leaves a reply code of 0 and an error that matches the buffer copy.
    let sink = Sink::start();
    let outcome = collect(SendArgs::valid().host(Arg::Null).call(sink.port));
    assert_eq!(outcome.reply_code, 0);
    let mut buffer = GuardedBuffer::new(outcome.error.len() + 1);
    // SAFETY: the buffer has the size given.
    unsafe { ffi::smtp_last_error(buffer.pointer(), buffer.size()) };
    assert_eq!(buffer.text(), outcome.error.as_bytes());
}

// ------------------------------------------------------------------ status names and version

#[test]
fn status_names_and_version() {
    let _serial = serial();
    let known: [(c_int, &str); 20] = [
        (SMTP_OK, "SMTP_OK"),
        (SMTP_PARTIAL, "SMTP_PARTIAL"),
        (SMTP_INVALID_ARGUMENT, "SMTP_INVALID_ARGUMENT"),
        (SMTP_RESOLVE_FAILED, "SMTP_RESOLVE_FAILED"),
        (SMTP_CONNECT_FAILED, "SMTP_CONNECT_FAILED"),
        (SMTP_TIMEOUT, "SMTP_TIMEOUT"),
        (SMTP_CONNECTION_LOST, "SMTP_CONNECTION_LOST"),
        (SMTP_PROTOCOL_ERROR, "SMTP_PROTOCOL_ERROR"),
        (SMTP_GREETING_REJECTED, "SMTP_GREETING_REJECTED"),
        (SMTP_HELLO_REJECTED, "SMTP_HELLO_REJECTED"),
        (SMTP_SENDER_REJECTED, "SMTP_SENDER_REJECTED"),
        (SMTP_RECIPIENTS_REJECTED, "SMTP_RECIPIENTS_REJECTED"),
        (SMTP_DATA_REJECTED, "SMTP_DATA_REJECTED"),
        (SMTP_MESSAGE_REJECTED, "SMTP_MESSAGE_REJECTED"),
        (SMTP_TLS_FAILED, "SMTP_TLS_FAILED"),
        (SMTP_TLS_UNAVAILABLE, "SMTP_TLS_UNAVAILABLE"),
        (SMTP_AUTH_FAILED, "SMTP_AUTH_FAILED"),
        (SMTP_AUTH_UNAVAILABLE, "SMTP_AUTH_UNAVAILABLE"),
        (SMTP_MESSAGE_TOO_LARGE, "SMTP_MESSAGE_TOO_LARGE"),
        (SMTP_INTERNAL_ERROR, "SMTP_INTERNAL_ERROR"),
    ];
    let name_of = |status: c_int| {
        let pointer = ffi::smtp_status_name(status);
        assert!(!pointer.is_null(), "smtp_status_name({status}) returned NULL");
        // SAFETY: checked for NULL; the library returns static NUL-terminated strings.
        (pointer, unsafe { CStr::from_ptr(pointer) }.to_str().expect("status names are ASCII").to_owned())
    };

    for (status, expected) in known {
        let (first, name) = name_of(status);
        assert_eq!(name, expected, "smtp_status_name({status})");
        assert_eq!(name_of(status).0, first, "smtp_status_name({status}) returned a different pointer the second time");
    }
    for status in [c_int::MIN, -1, 19, 98, 100, 1000, c_int::MAX] {
        assert_eq!(name_of(status).1, "SMTP_UNKNOWN_STATUS", "smtp_status_name({status})");
    }

    let version = ffi::smtp_version();
    assert!(!version.is_null());
    // SAFETY: checked for NULL; the version is a static NUL-terminated string.
    assert_eq!(unsafe { CStr::from_ptr(version) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(ffi::smtp_version(), version, "smtp_version returned a different pointer the second time");
}

// ------------------------------------------------------------------ large input

#[test]
fn body_of_100_mb_delivered() {
    let _serial = serial();
    let sink = Sink::start();

    // Lines of 76 characters and CRLF, so the bytes on the wire equal the body.
    let mut body = b"Subject: a body of 100 MB\r\n\r\n".to_vec();
    let line = [b"x".repeat(76), b"\r\n".to_vec()].concat();
    while body.len() < 100 * 1024 * 1024 {
        body.extend_from_slice(&line);
    }
    let options = text("host=127.0.0.1\nport=PORT\nhelo=client.example.test\ntimeout=30");
    let arguments = SendWithArgs { options, from: text("sender@example.test"), to: text("rcpt@example.test"), body: Arg::Bytes(body) };

    let started = Instant::now();
    let outcome = collect(arguments.call(sink.port));
    let elapsed = started.elapsed();
    println!("a body of 100 MB took {:.2} s", elapsed.as_secs_f64());

    assert_eq!(outcome.status, SMTP_OK, "{}\n{}", outcome.error, outcome.transcript);
    let session = sink.session(1).expect("the sink recorded the session");
    let Arg::Bytes(body) = &arguments.body else { unreachable!() };
    assert_eq!(session.data_bytes, body.len() as u64, "the sink received a different number of bytes");
    assert!(outcome.transcript.contains(&format!("<message body, {} bytes>", body.len())), "{}", outcome.transcript);
    assert!(elapsed < Duration::from_secs(60), "a body of 100 MB to a loopback sink took {elapsed:?}");
}

#[test]
fn ten_thousand_recipients_delivered() {
    let _serial = serial();
    let sink = Sink::start();
    let recipients: Vec<String> = (0..10_000).map(|index| format!("r{index}@example.test")).collect();
    let to = recipients.join(",");

    let started = Instant::now();
    let outcome = collect(SendArgs::valid().to(text(&to)).call(sink.port));
    let elapsed = started.elapsed();
    println!("10,000 recipients took {:.2} s", elapsed.as_secs_f64());

    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    let session = sink.session(1).expect("the sink recorded the session");
    assert_eq!(session.recipients().len(), 10_000, "RCPT TO commands received");
    assert!(session.recipients().iter().zip(&recipients).all(|(got, sent)| got == sent), "the recipients arrived out of order or changed");
    assert!(elapsed < Duration::from_secs(60), "10,000 recipients to a loopback sink took {elapsed:?}");
}
