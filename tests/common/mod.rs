//! Helpers shared by the integration tests: calling the C interface the way a C program
//! does, reading what the Postfix test server delivered, and a scripted fake server for
//! faults that a real server cannot be made to produce.

#![allow(dead_code)]

pub mod fake_server;

use std::ffi::{c_int, CStr, CString};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mvsmtp::ffi;

/// The result of one call through the C interface.
#[derive(Debug)]
pub struct Outcome {
    pub status: c_int,
    pub reply_code: c_int,
    pub error: String,
    pub transcript: String,
}

/// Calls `smtp_send` with C strings, as a C program does, and collects the diagnostics.
/// `None` passes NULL.
pub fn send_raw(host: Option<&[u8]>, port: c_int, helo: Option<&[u8]>, from: Option<&[u8]>, to: Option<&[u8]>, body: Option<&[u8]>) -> Outcome {
    let strings: Vec<Option<CString>> =
        [host, helo, from, to, body].iter().map(|value| value.map(|bytes| CString::new(bytes).expect("test strings have no NUL"))).collect();
    let pointer = |index: usize| strings[index].as_ref().map_or(std::ptr::null(), |string| string.as_ptr());

    // SAFETY: every pointer is NULL or a live C string owned by `strings`.
    let status = unsafe { ffi::smtp_send(pointer(0), port, pointer(1), pointer(2), pointer(3), pointer(4)) };
    collect(status)
}

/// Calls `smtp_send` with every argument present and the machine's default EHLO name.
pub fn send(host: &str, port: u16, from: &str, to: &[u8], body: &[u8]) -> Outcome {
    send_raw(Some(host.as_bytes()), c_int::from(port), None, Some(from.as_bytes()), Some(to), Some(body))
}

/// Calls `smtp_send_with` with an options list, as a C program does.
pub fn send_with(options: &str, from: &str, to: &str, body: &[u8]) -> Outcome {
    let strings = [options.as_bytes(), from.as_bytes(), to.as_bytes(), body].map(|bytes| CString::new(bytes).expect("test strings have no NUL"));
    // SAFETY: every pointer is a live C string owned by `strings`.
    let status = unsafe { ffi::smtp_send_with(strings[0].as_ptr(), strings[1].as_ptr(), strings[2].as_ptr(), strings[3].as_ptr()) };
    collect(status)
}

/// Returns the folder of the Postfix test server's state: its CA and certificates.
pub fn test_state_dir() -> PathBuf {
    PathBuf::from(std::env::var("MVSMTP_TEST_STATE").unwrap_or_else(|_| "/tmp/mvsmtp-postfix".into()))
}

/// Reads the calling thread's diagnostics after a call.
pub fn collect(status: c_int) -> Outcome {
    // SAFETY: the library returns NUL-terminated strings that stay valid until the next call
    // on this thread, and they are copied at once.
    let (error, transcript) = unsafe {
        (
            CStr::from_ptr(ffi::smtp_last_error_text()).to_string_lossy().into_owned(),
            CStr::from_ptr(ffi::smtp_last_transcript_text()).to_string_lossy().into_owned(),
        )
    };
    Outcome { status, reply_code: ffi::smtp_last_reply_code(), error, transcript }
}

/// Sets a process-wide option and returns the status.
pub fn set_option(name: &str, value: &str) -> c_int {
    let (name, value) = (CString::new(name).unwrap(), CString::new(value).unwrap());
    // SAFETY: both pointers are live C strings.
    unsafe { ffi::smtp_set_option(name.as_ptr(), value.as_ptr()) }
}

/// The Postfix test server started by tests/postfix/test-server.sh.
pub struct TestServer {
    pub host: String,
    pub port: u16,
    pub maildir: PathBuf,
}

/// Returns the Postfix test server, failing the test with instructions when it is not up.
pub fn postfix() -> TestServer {
    let host = std::env::var("MVSMTP_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("MVSMTP_TEST_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(2525);
    let maildir = PathBuf::from(std::env::var("MVSMTP_TEST_MAILDIR").unwrap_or_else(|_| "/tmp/mvsmtp-postfix/maildir".into()));
    if TcpStream::connect((host.as_str(), port)).is_err() {
        panic!("no SMTP server at {host}:{port}; start the test server with `sudo bash tests/postfix/test-server.sh up`");
    }
    TestServer { host, port, maildir }
}

/// Creates an empty folder for one test in the target's temporary folder and returns its
/// path. `test_file` and `tag` keep the name apart from those of other tests.
pub fn empty_test_dir(test_file: &str, tag: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!("{test_file}-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

/// Returns an address no other test uses, so parallel tests find their own deliveries.
pub fn unique_address(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}-{}-{nanos}-{}@example.test", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl TestServer {
    /// Waits up to 10 seconds for the message delivered to `recipient` and returns its bytes
    /// without the lines Postfix added at the top.
    pub fn delivered(&self, recipient: &str) -> Vec<u8> {
        self.try_delivered(recipient, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no message for {recipient} arrived in {} within 10 s", self.maildir.join("new").display()))
    }

    /// Waits like [`TestServer::delivered`] and returns the whole file, the lines Postfix
    /// added included.
    pub fn delivered_raw(&self, recipient: &str) -> Vec<u8> {
        self.find_delivery(recipient, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no message for {recipient} arrived in {} within 10 s", self.maildir.join("new").display()))
    }

    /// Like [`TestServer::delivered`], with a chosen wait; `None` when nothing arrived.
    pub fn try_delivered(&self, recipient: &str, wait: Duration) -> Option<Vec<u8>> {
        self.find_delivery(recipient, wait).map(|bytes| strip_added_headers(&bytes))
    }

    fn find_delivery(&self, recipient: &str, wait: Duration) -> Option<Vec<u8>> {
        let marker = format!("X-Original-To: {recipient}\n");
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) {
                for entry in entries.flatten() {
                    let Ok(bytes) = std::fs::read(entry.path()) else { continue };
                    let head_len = bytes.len().min(4096);
                    if contains(&bytes[..head_len], marker.as_bytes()) {
                        return Some(bytes);
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Removes the header lines Postfix puts above the client's bytes: Return-Path,
/// X-Original-To, Delivered-To and Received, with their continuation lines.
pub fn strip_added_headers(message: &[u8]) -> Vec<u8> {
    const ADDED: [&[u8]; 4] = [b"Return-Path:", b"X-Original-To:", b"Delivered-To:", b"Received:"];
    let mut rest = message;
    let mut in_added = false;
    while !rest.is_empty() {
        let line_end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let line = &rest[..line_end];
        let continues = in_added && (line.starts_with(b" ") || line.starts_with(b"\t"));
        let starts_added = ADDED.iter().any(|name| line.starts_with(name));
        if !continues && !starts_added {
            break;
        }
        in_added = true;
        rest = &rest[line_end..];
    }
    rest.to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
