//! The TCP connection under an SMTP session: name resolution, connecting, and line-based
//! reading and writing, each bounded by a timeout.
//!
//! Writes never raise SIGPIPE in the host process. On Linux and the BSDs every write goes
//! through `send(2)` with `MSG_NOSIGNAL`. On macOS the socket gets `SO_NOSIGPIPE`. A peer
//! that has closed the connection therefore shows up as an `EPIPE` error, not as a signal
//! that would kill a database server that keeps the default disposition.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Maximum length of one reply line, including its line ending. RFC 5321 allows 512
/// octets; real servers sometimes send longer lines, so a generous limit applies.
pub const MAX_LINE_LENGTH: usize = 4096;

const READ_CHUNK: usize = 8192;

/// A failed read or write on the connection.
#[derive(Debug)]
pub enum IoFailure {
    /// The wait for the peer exceeded the timeout.
    TimedOut,
    /// The peer closed the connection.
    Closed,
    /// A line exceeded [`MAX_LINE_LENGTH`].
    LineTooLong,
    /// Any other socket error, such as a reset.
    Io(io::Error),
}

impl IoFailure {
    fn from_io(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => IoFailure::TimedOut,
            io::ErrorKind::UnexpectedEof => IoFailure::Closed,
            _ => IoFailure::Io(error),
        }
    }
}

/// Resolves a host name to its addresses, in the order the resolver returns them.
///
/// An IP literal, with or without brackets, needs no lookup. For a name, `getaddrinfo` runs
/// on a helper thread, because it has no timeout of its own. When the timeout passes first,
/// the call returns `TimedOut` and the helper thread ends by itself once the resolver gives up.
pub fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, ResolveFailure> {
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }

    let (sender, receiver) = mpsc::channel();
    let name = host.to_owned();
    let spawned = thread::Builder::new().name("mvsmtp-resolve".into()).spawn(move || {
        let result = (name.as_str(), port).to_socket_addrs().map(|addresses| addresses.collect::<Vec<_>>());
        // The caller may have stopped waiting; a failed send is then expected.
        let _ = sender.send(result);
    });
    if let Err(error) = spawned {
        return Err(ResolveFailure::Failed(format!("could not start the resolver thread: {error}")));
    }

    match receiver.recv_timeout(timeout) {
        Ok(Ok(addresses)) if addresses.is_empty() => Err(ResolveFailure::Failed("the name has no addresses".into())),
        Ok(Ok(addresses)) => Ok(addresses),
        Ok(Err(error)) => {
            // The standard library prefixes the resolver's reason with this phrase, which
            // repeats what the caller's message already says.
            let text = error.to_string();
            let reason = text.strip_prefix("failed to lookup address information: ").unwrap_or(&text);
            Err(ResolveFailure::Failed(reason.to_owned()))
        }
        Err(_) => Err(ResolveFailure::TimedOut),
    }
}

/// A failed host name resolution.
#[derive(Debug)]
pub enum ResolveFailure {
    TimedOut,
    Failed(String),
}

/// One failed connection attempt, kept so the error can list every address tried.
#[derive(Debug)]
pub struct ConnectAttempt {
    pub address: SocketAddr,
    pub error: io::Error,
}

/// The byte stream under a session: plain TCP, or TLS over it after an upgrade.
enum Stream {
    Plain(Socket),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Socket>>),
    /// Only while an upgrade takes the socket out of `Plain`.
    Upgrading,
}

/// A failed TLS handshake.
#[derive(Debug)]
pub enum TlsFailure {
    TimedOut,
    /// The peer closed the connection or the socket failed.
    Io(io::Error),
    /// rustls rejected the handshake, for example the certificate.
    Tls(rustls::Error),
}

/// A connected TCP stream with a read buffer for reply lines.
pub struct Connection {
    stream: Stream,
    /// A second handle on the same socket, for timeouts and shutdown while `stream` is TLS.
    control: TcpStream,
    buffer: Vec<u8>,
    start: usize,
    timeout: Duration,
    local_address: Option<SocketAddr>,
}

impl Connection {
    /// Connects to each address in turn until one accepts, waiting at most `timeout` for each.
    pub fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<Connection, Vec<ConnectAttempt>> {
        let mut attempts = Vec::new();
        for &address in addresses {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(stream) => match Connection::from_stream(stream, timeout) {
                    Ok(connection) => return Ok(connection),
                    Err(error) => attempts.push(ConnectAttempt { address, error }),
                },
                Err(error) => attempts.push(ConnectAttempt { address, error }),
            }
        }
        Err(attempts)
    }

    fn from_stream(stream: TcpStream, timeout: Duration) -> io::Result<Connection> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        // Each group of commands goes out in one write, so Nagle's algorithm would only
        // delay it. This is only an optimization: on a socket that the server has already
        // reset it fails, and the first read then reports the lost connection.
        let _ = stream.set_nodelay(true);
        disable_sigpipe(&stream)?;
        let local_address = stream.local_addr().ok();
        let control = stream.try_clone()?;
        Ok(Connection {
            stream: Stream::Plain(Socket(stream, None)),
            control,
            buffer: Vec::with_capacity(READ_CHUNK),
            start: 0,
            timeout,
            local_address,
        })
    }

    /// Reports whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Describes the negotiated TLS version and cipher suite, such as `TLSv1_3,
    /// TLS13_AES_256_GCM_SHA384`.
    pub fn tls_description(&self) -> Option<String> {
        let Stream::Tls(tls) = &self.stream else { return None };
        let version = tls.conn.protocol_version()?;
        let suite = tls.conn.negotiated_cipher_suite()?;
        Some(format!("{version:?}, {:?}", suite.suite()))
    }

    /// Runs the TLS handshake on the connection, as the client, within the timeout. The
    /// caller must first check that no unread input is buffered, because bytes that arrived
    /// before the handshake would otherwise pass as if they had been encrypted.
    pub fn start_tls(&mut self, config: Arc<rustls::ClientConfig>, server_name: rustls::pki_types::ServerName<'static>) -> Result<(), TlsFailure> {
        debug_assert!(!self.has_unread_input());
        let Stream::Plain(socket) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(TlsFailure::Io(io::Error::other("the connection is already encrypted")));
        };
        let client = rustls::ClientConnection::new(config, server_name).map_err(TlsFailure::Tls)?;
        let mut tls = Box::new(rustls::StreamOwned::new(client, socket));

        let deadline = Instant::now() + self.timeout;
        while tls.conn.is_handshaking() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(TlsFailure::TimedOut);
            }
            self.control.set_read_timeout(Some(remaining.max(Duration::from_millis(1)))).map_err(TlsFailure::Io)?;
            if let Err(error) = tls.conn.complete_io(&mut tls.sock) {
                return Err(classify_tls_io(error));
            }
        }
        self.stream = Stream::Tls(tls);
        Ok(())
    }

    /// Returns the address of the server end of the connection.
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.control.peer_addr().ok()
    }

    /// Returns the local address of the socket, used for an address-literal EHLO name.
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.local_address
    }

    /// Reports whether bytes have arrived that no reply has consumed yet.
    pub fn has_unread_input(&self) -> bool {
        self.start < self.buffer.len()
    }

    /// Reads one line and returns it without its line ending. CRLF ends a line, and so does
    /// a bare LF, which some servers send. The whole line must arrive before `deadline`.
    pub fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, IoFailure> {
        let mut searched = self.start;
        loop {
            if let Some(offset) = self.buffer[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + offset;
                let mut line = self.buffer[self.start..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.start = end + 1;
                self.compact();
                return Ok(line);
            }
            searched = self.buffer.len();
            if self.buffer.len() - self.start >= MAX_LINE_LENGTH {
                return Err(IoFailure::LineTooLong);
            }
            self.fill(deadline)?;
        }
    }

    /// Reads more bytes into the buffer, waiting no later than `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), IoFailure> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(IoFailure::TimedOut);
        }
        // A zero timeout would mean "wait forever" to the socket layer, so keep at least 1 ms.
        let wait = remaining.min(self.timeout).max(Duration::from_millis(1));
        self.control.set_read_timeout(Some(wait)).map_err(IoFailure::Io)?;

        let old_len = self.buffer.len();
        let room = (MAX_LINE_LENGTH + 1).saturating_sub(old_len - self.start).clamp(1, READ_CHUNK);
        self.buffer.resize(old_len + room, 0);
        let result = loop {
            let target = &mut self.buffer[old_len..];
            let read = match &mut self.stream {
                Stream::Plain(socket) => socket.read(target),
                Stream::Tls(tls) => tls.read(target),
                Stream::Upgrading => Err(io::Error::other("the TLS upgrade failed")),
            };
            match read {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(0) => {
                self.buffer.truncate(old_len);
                Err(IoFailure::Closed)
            }
            Ok(count) => {
                self.buffer.truncate(old_len + count);
                Ok(())
            }
            Err(error) => {
                self.buffer.truncate(old_len);
                Err(IoFailure::from_io(error))
            }
        }
    }

    fn compact(&mut self) {
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > READ_CHUNK {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
    }

    /// Writes all bytes, which must be taken within the timeout.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), IoFailure> {
        let deadline = Some(Instant::now() + self.timeout);
        let result = match &mut self.stream {
            Stream::Plain(socket) => {
                socket.1 = deadline;
                let result = socket.write_all(bytes);
                socket.1 = None;
                result
            }
            Stream::Tls(tls) => {
                tls.sock.1 = deadline;
                let result = tls.write_all(bytes).and_then(|()| tls.flush());
                tls.sock.1 = None;
                result
            }
            Stream::Upgrading => Err(io::Error::other("the TLS upgrade failed")),
        };
        result.map_err(IoFailure::from_io)
    }

    /// Returns the timeout that bounds each wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Closes the connection, with a TLS close_notify first when encrypted. Errors are
    /// ignored: the peer may be gone.
    pub fn shutdown(&mut self) {
        if let Stream::Tls(tls) = &mut self.stream {
            tls.conn.send_close_notify();
            let _ = self.control.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        let _ = self.control.shutdown(Shutdown::Both);
    }
}

/// Maps an I/O error from the handshake, which carries a rustls error when TLS itself failed.
fn classify_tls_io(error: io::Error) -> TlsFailure {
    if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
        return TlsFailure::TimedOut;
    }
    let is_tls_error = error.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
    if is_tls_error {
        let inner = error.into_inner().expect("checked above");
        return TlsFailure::Tls(*inner.downcast::<rustls::Error>().expect("checked above"));
    }
    TlsFailure::Io(error)
}

/// A TCP socket whose writes never raise SIGPIPE. A write deadline, when set, bounds a
/// whole series of partial writes, not just each one: a peer that takes a few bytes now and
/// then cannot stretch a write past it.
struct Socket(TcpStream, Option<Instant>);

impl Socket {
    /// Sets the socket's send timeout to what is left before the write deadline.
    fn arm_write_timeout(&self) -> io::Result<()> {
        let Some(deadline) = self.1 else { return Ok(()) };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the write timed out"));
        }
        self.0.set_write_timeout(Some(remaining.max(Duration::from_millis(1))))
    }
}

impl Read for Socket {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.0.read(buffer)
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly", target_os = "illumos", target_os = "solaris"))]
impl Write for Socket {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.arm_write_timeout()?;
        // SAFETY: the descriptor belongs to a live TcpStream borrowed for this call, and the
        // pointer and length describe the `bytes` slice.
        let sent = unsafe { libc::send(self.0.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly", target_os = "illumos", target_os = "solaris")))]
impl Write for Socket {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.arm_write_timeout()?;
        self.0.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn disable_sigpipe(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is open, and the option value is a c_int that lives for the call.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "macos", target_os = "ios")))]
fn disable_sigpipe(_stream: &TcpStream) -> io::Result<()> {
    // Writes use MSG_NOSIGNAL here, and Windows has no SIGPIPE.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let connection = Connection::connect(&[address], Duration::from_secs(2)).unwrap();
        let (server, _) = listener.accept().unwrap();
        (connection, server)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(2)
    }

    #[test]
    fn lines_split_on_crlf_and_lf() {
        let (mut connection, mut server) = pair();
        server.write_all(b"220 a\r\n250 b\n250 c\r\n").unwrap();
        assert_eq!(connection.read_line(soon()).unwrap(), b"220 a");
        assert_eq!(connection.read_line(soon()).unwrap(), b"250 b");
        assert_eq!(connection.read_line(soon()).unwrap(), b"250 c");
        assert!(!connection.has_unread_input());
    }

    #[test]
    fn unread_input_reported() {
        let (mut connection, mut server) = pair();
        server.write_all(b"220 a\r\n250 extra\r\n").unwrap();
        assert_eq!(connection.read_line(soon()).unwrap(), b"220 a");
        // Both lines may arrive in one segment; if they did, the second is unread.
        if connection.has_unread_input() {
            assert_eq!(connection.read_line(soon()).unwrap(), b"250 extra");
        }
    }

    #[test]
    fn long_line_rejected() {
        let (mut connection, mut server) = pair();
        server.write_all(&vec![b'x'; MAX_LINE_LENGTH * 2]).unwrap();
        assert!(matches!(connection.read_line(soon()), Err(IoFailure::LineTooLong)));
    }

    #[test]
    fn closed_peer_reported() {
        let (mut connection, server) = pair();
        drop(server);
        assert!(matches!(connection.read_line(soon()), Err(IoFailure::Closed)));
    }

    #[test]
    fn silent_peer_times_out() {
        let (mut connection, _server) = pair();
        let started = Instant::now();
        let result = connection.read_line(Instant::now() + Duration::from_millis(300));
        assert!(matches!(result, Err(IoFailure::TimedOut)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        let addresses = resolve("[::1]", 25, Duration::from_secs(1)).unwrap();
        assert_eq!(addresses, vec!["[::1]:25".parse().unwrap()]);
        let addresses = resolve("127.0.0.1", 2525, Duration::from_secs(1)).unwrap();
        assert_eq!(addresses, vec!["127.0.0.1:2525".parse().unwrap()]);
    }

    #[test]
    fn localhost_resolves() {
        let addresses = resolve("localhost", 25, Duration::from_secs(5)).unwrap();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()));
    }
}
