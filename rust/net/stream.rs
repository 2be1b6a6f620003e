//! The byte stream to the server: TCP, a unix socket, or TLS over TCP.
//!
//! Dropping a [`Stream`] closes its file descriptor and sends nothing: no TCP shutdown
//! and no TLS `close_notify`. That is what a forked child needs, since the parent
//! still uses the same connection; [`Stream::shutdown`] is the polite close.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection};
use socket2::{Domain, Protocol, Socket, Type};

use super::poll;
use super::tls::server_name;
use super::url::{Address, Config};
use crate::errors::{ConnErrorKind, Error};

/// TLS state and the socket under it.
#[derive(Debug)]
pub struct TlsStream {
    conn: ClientConnection,
    sock: TcpStream,
}

impl TlsStream {
    fn stream(&mut self) -> rustls::Stream<'_, ClientConnection, TcpStream> {
        rustls::Stream::new(&mut self.conn, &mut self.sock)
    }
}

#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream>),
}

/// How an I/O error reads to a caller deciding what to do next.
pub fn error_kind(err: &io::Error, connected: bool) -> ConnErrorKind {
    use io::ErrorKind as K;
    match err.kind() {
        K::TimedOut | K::WouldBlock => ConnErrorKind::Timeout,
        K::InvalidData if err.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            ConnErrorKind::Tls
        }
        _ if connected => ConnErrorKind::Dropped,
        _ => ConnErrorKind::Refused,
    }
}

fn connect_error(err: &io::Error, target: &str) -> Error {
    Error::Connection {
        kind: error_kind(err, false),
        retry_safe: true,
        message: format!("cannot connect to {target}: {err}"),
    }
}

fn tcp_connect(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream, Error> {
    let target = format!("{host}:{port}");
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|err| connect_error(&err, &target))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for addr in addrs {
        let attempt = || -> io::Result<TcpStream> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_tcp_nodelay(true)?;
            match timeout {
                Some(timeout) => socket.connect_timeout(&addr.into(), timeout)?,
                None => socket.connect(&addr.into())?,
            }
            Ok(socket.into())
        };
        match attempt() {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err,
        }
    }
    Err(connect_error(&last, &target))
}

impl Stream {
    /// Connects and, for TLS, completes the TLS handshake within the connect timeout.
    ///
    /// The stream's read and write timeouts are left at the connect timeout so the
    /// Redis handshake that follows is bounded too; call [`Stream::set_timeout`] after.
    pub fn open(config: &Config, tls: Option<&Arc<ClientConfig>>) -> Result<Self, Error> {
        let timeout = config.connect_timeout;
        let stream = match &config.address {
            Address::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .map_err(|err| connect_error(&err, &path.display().to_string()))?;
                Self::Unix(stream)
            }
            Address::Tcp { host, port } => {
                let sock = tcp_connect(host, *port, timeout)?;
                match tls {
                    None => Self::Tcp(sock),
                    Some(tls) => {
                        let name = server_name(host)?;
                        let conn = ClientConnection::new(tls.clone(), name).map_err(|err| {
                            Error::Connection {
                                kind: ConnErrorKind::Tls,
                                retry_safe: true,
                                message: format!("TLS setup failed: {err}"),
                            }
                        })?;
                        Self::Tls(Box::new(TlsStream { conn, sock }))
                    }
                }
            }
        };
        let mut stream = stream;
        stream
            .set_timeout(timeout)
            .map_err(|err| connect_error(&err, &config.redacted_url()))?;
        if let Self::Tls(tls) = &mut stream {
            while tls.conn.is_handshaking() {
                tls.conn
                    .complete_io(&mut tls.sock)
                    .map_err(|err| Error::Connection {
                        kind: error_kind(&err, false),
                        retry_safe: true,
                        message: format!(
                            "TLS handshake with {} failed: {err}",
                            config.redacted_url()
                        ),
                    })?;
            }
        }
        Ok(stream)
    }

    /// Sets the read and write timeouts; `None` waits for ever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(sock) => {
                sock.set_read_timeout(timeout)?;
                sock.set_write_timeout(timeout)
            }
            Self::Unix(sock) => {
                sock.set_read_timeout(timeout)?;
                sock.set_write_timeout(timeout)
            }
            Self::Tls(tls) => {
                tls.sock.set_read_timeout(timeout)?;
                tls.sock.set_write_timeout(timeout)
            }
        }
    }

    /// Polls for up to `budget` until bytes are waiting to be read, so that the read
    /// which follows need not sleep. TLS streams do not poll: decrypted bytes may
    /// already be buffered where the socket cannot show them.
    pub fn spin_until_readable(&self, budget: Duration) {
        match self {
            Self::Tcp(sock) => {
                poll::spin_until_readable(sock, budget);
            }
            Self::Unix(sock) => {
                poll::spin_until_readable(sock, budget);
            }
            Self::Tls(_) => {}
        }
    }

    /// Closes politely: TLS `close_notify`, then a TCP shutdown. Errors are ignored,
    /// since the stream is being abandoned either way.
    pub fn shutdown(&mut self) {
        match self {
            Self::Tcp(sock) => {
                let _ = sock.shutdown(Shutdown::Both);
            }
            Self::Unix(sock) => {
                let _ = sock.shutdown(Shutdown::Both);
            }
            Self::Tls(tls) => {
                tls.conn.send_close_notify();
                let _ = tls.stream().flush();
                let _ = tls.sock.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(sock) => sock.read(buf),
            Self::Unix(sock) => sock.read(buf),
            Self::Tls(tls) => tls.stream().read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(sock) => sock.write(buf),
            Self::Unix(sock) => sock.write(buf),
            Self::Tls(tls) => tls.stream().write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Tcp(sock) => sock.write_vectored(bufs),
            Self::Unix(sock) => sock.write_vectored(bufs),
            Self::Tls(tls) => tls.stream().write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(_) | Self::Unix(_) => Ok(()),
            Self::Tls(tls) => tls.stream().flush(),
        }
    }
}
