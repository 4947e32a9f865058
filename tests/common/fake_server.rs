//! A scripted SMTP server on 127.0.0.1 for faults that Postfix cannot be made to produce:
//! silence, dropped connections, 421 at a chosen step, malformed or oversized replies.
//!
//! The server accepts one connection and plays its script. It records every line the
//! client sent, so a test can check what the client did after a fault.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Action {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Read one command line; the test fails later if it does not start with the prefix.
    Expect(&'static str),
    /// Read the message data up to and including the lone "." line.
    ReadData,
    /// Read one `BDAT <size> [LAST]` command and the chunk of that many octets after it.
    /// The chunk is recorded as `DATA:` lines, like the data after DATA.
    ReadChunk,
    /// Do nothing for this long.
    Pause(Duration),
    /// Close the connection.
    Close,
}

/// Shorthand for `Action::Send` of text.
pub fn send(text: &str) -> Action {
    Action::Send(text.as_bytes().to_vec())
}

/// Shorthand for `Action::Expect`.
pub fn expect(prefix: &'static str) -> Action {
    Action::Expect(prefix)
}

/// What the fake server saw.
#[derive(Debug, Default)]
pub struct Received {
    /// Every line the client sent, without CRLF, message data included.
    pub lines: Vec<String>,
    /// Script expectations that did not hold.
    pub mismatches: Vec<String>,
    /// The octets of each BDAT chunk, in order.
    pub chunks: Vec<Vec<u8>>,
}

impl Received {
    /// Returns the command lines, without the message data between DATA's 354 and ".".
    pub fn commands(&self) -> Vec<String> {
        self.lines.iter().filter(|line| !line.starts_with("DATA:")).cloned().collect()
    }
}

/// A scripted server for several connections in a row.
pub struct ManyServer {
    pub address: SocketAddr,
    handle: JoinHandle<Vec<Received>>,
}

impl ManyServer {
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Waits for every script to end and returns what the client sent on each connection.
    pub fn finish_all(self) -> Vec<Received> {
        self.handle.join().expect("the fake server thread does not panic")
    }
}

pub struct FakeServer {
    pub address: SocketAddr,
    handle: JoinHandle<Received>,
}

impl FakeServer {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start(script: Vec<Action>) -> FakeServer {
        FakeServer::start_on(TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"), script)
    }

    /// Starts the server on a listener the test bound, for example to another loopback
    /// address such as 127.0.0.2.
    pub fn start_on(listener: TcpListener, script: Vec<Action>) -> FakeServer {
        let address = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("the client connects");
            play(stream, script)
        });
        FakeServer { address, handle }
    }

    /// Starts a server that plays one script per connection, in order.
    pub fn start_many(scripts: Vec<Vec<Action>>) -> ManyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
        let address = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            scripts
                .into_iter()
                .map(|script| {
                    let (stream, _) = listener.accept().expect("the client connects");
                    play(stream, script)
                })
                .collect()
        });
        ManyServer { address, handle }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Waits for the script to end and returns what the client sent.
    pub fn finish(self) -> Received {
        self.handle.join().expect("the fake server thread does not panic")
    }
}

fn play(stream: TcpStream, script: Vec<Action>) -> Received {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut received = Received::default();
    let mut closed = false;

    for action in script {
        match action {
            Action::Send(bytes) => {
                // The client may already have gone; that is what some tests check.
                let _ = writer.write_all(&bytes);
            }
            Action::Expect(prefix) => match read_line(&mut reader) {
                Some(line) => {
                    if !line.starts_with(prefix) {
                        received.mismatches.push(format!("expected {prefix:?}, got {line:?}"));
                    }
                    received.lines.push(line);
                }
                None => received.mismatches.push(format!("expected {prefix:?}, but the connection ended")),
            },
            Action::ReadData => loop {
                match read_line(&mut reader) {
                    Some(line) if line == "." => {
                        received.lines.push(line);
                        break;
                    }
                    Some(line) => received.lines.push(format!("DATA:{line}")),
                    None => {
                        received.mismatches.push("the connection ended inside the message data".into());
                        break;
                    }
                }
            },
            Action::ReadChunk => match read_line(&mut reader) {
                Some(line) => {
                    let size = line.strip_prefix("BDAT ").and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok());
                    received.lines.push(line.clone());
                    let Some(size) = size else {
                        received.mismatches.push(format!("expected \"BDAT <size>\", got {line:?}"));
                        continue;
                    };
                    let mut chunk = vec![0; size];
                    if reader.read_exact(&mut chunk).is_err() {
                        received.mismatches.push(format!("the connection ended inside a BDAT chunk of {size} octets"));
                        continue;
                    }
                    received.chunks.push(chunk.clone());
                    let text = String::from_utf8_lossy(&chunk).into_owned();
                    received.lines.extend(text.split_terminator("\r\n").map(|piece| format!("DATA:{piece}")));
                }
                None => received.mismatches.push("expected BDAT, but the connection ended".into()),
            },
            Action::Pause(duration) => thread::sleep(duration),
            Action::Close => {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                closed = true;
                break;
            }
        }
    }

    // Record anything else the client sends until it closes, so tests can check that
    // nothing follows a fault.
    if !closed {
        reader.get_ref().set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        while let Some(line) = read_line(&mut reader) {
            received.lines.push(line);
        }
    }
    received
}

fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            Some(String::from_utf8_lossy(&line).into_owned())
        }
    }
}
