//! TLS failures that the Postfix test server does not produce: an expired certificate and
//! a server limited to TLS 1.1. `openssl s_server` plays the server on 127.0.0.1 with
//! certificates that each test makes in a temporary folder.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::send_with;
use mvsmtp::ffi::status::*;

/// A temporary folder with a test CA and a leaf certificate for localhost and 127.0.0.1.
struct Certificates {
    folder: PathBuf,
}

impl Certificates {
    /// Makes a CA and a leaf certificate valid from `start` to `end` (`YYYYMMDDHHMMSSZ`).
    fn new(tag: &str, start: &str, end: &str) -> Certificates {
        let folder = std::env::temp_dir().join(format!("mvsmtp-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(folder.join("db")).unwrap();
        std::fs::write(folder.join("db/index.txt"), "").unwrap();
        std::fs::write(folder.join("db/serial"), "01\n").unwrap();
        std::fs::write(folder.join("ca.cnf"), CA_CONFIG).unwrap();

        openssl(&folder, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=libmvsmtp failure-test CA", "-keyout", "ca.key", "-out", "ca.crt"]);
        openssl(&folder, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "leaf.key", "-out", "leaf.csr"]);
        openssl(
            &folder,
            &["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "leaf.csr", "-out", "leaf.crt", "-startdate", start, "-enddate", end],
        );
        Certificates { folder }
    }

    fn path(&self, name: &str) -> String {
        self.folder.join(name).display().to_string()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The smallest `openssl ca` setup that signs a server certificate with chosen dates.
const CA_CONFIG: &str = "[ ca ]
default_ca = test
[ test ]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
";

fn openssl(folder: &Path, args: &[&str]) {
    let output = Command::new("openssl").args(args).current_dir(folder).output().expect("the openssl command runs; install openssl");
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// An `openssl s_server` on 127.0.0.1 that serves one connection with implicit TLS.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(certificates: &Certificates, extra: &[&str]) -> TlsServer {
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-cert", &certificates.path("leaf.crt"), "-key", &certificates.path("leaf.key")])
            .args(extra)
            // s_server stops when its standard input ends, so it gets a pipe kept open.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            let line = lines.next().expect("s_server prints its address").expect("readable output");
            if let Some(address) = line.strip_prefix("ACCEPT 127.0.0.1:") {
                break address.trim().parse().expect("a port number");
            }
            assert!(Instant::now() < deadline, "s_server did not print its address");
        };
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn implicit_options(port: u16, certificates: &Certificates) -> String {
    format!("host=127.0.0.1\nport={port}\ntls=implicit\ntls_ca_file={}\ntimeout=5", certificates.path("ca.crt"))
}

#[test]
fn expired_certificate_named() {
    let certificates = Certificates::new("expired", "20200101000000Z", "20200201000000Z");
    let server = TlsServer::start(&certificates, &[]);
    let outcome = send_with(&implicit_options(server.port, &certificates), "a@example.test", "b@example.test", b"x\r\n");
    assert_eq!(outcome.status, SMTP_TLS_FAILED, "{}", outcome.error);
    assert!(outcome.error.contains("expired"), "{}", outcome.error);
}

#[test]
fn old_protocol_has_nothing_in_common() {
    let certificates = Certificates::new("tls11", "20200101000000Z", "20991231000000Z");
    let server = TlsServer::start(&certificates, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    let outcome = send_with(&implicit_options(server.port, &certificates), "a@example.test", "b@example.test", b"x\r\n");
    assert_eq!(outcome.status, SMTP_TLS_FAILED, "{}", outcome.error);
    assert!(outcome.error.contains("no TLS version or cipher suite in common"), "{}", outcome.error);
}

#[test]
fn valid_certificate_passes_handshake() {
    // The same setup with valid dates gets through the handshake; s_server then sends no
    // SMTP greeting, so the call times out waiting for it.
    let certificates = Certificates::new("valid", "20200101000000Z", "20991231000000Z");
    let server = TlsServer::start(&certificates, &[]);
    let options = implicit_options(server.port, &certificates).replace("timeout=5", "timeout=1");
    let outcome = send_with(&options, "a@example.test", "b@example.test", b"x\r\n");
    assert_eq!(outcome.status, SMTP_TIMEOUT, "{}", outcome.error);
    assert!(outcome.transcript.contains("* TLS established"), "{}", outcome.transcript);
}
