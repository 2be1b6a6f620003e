//! One open connection: the stream, its read buffer, the handshake, and the
//! write-then-read cycle of publishing. No Python here; the caller holds no GIL.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::batch::Batch;
use crate::encode::message::Encoded;
use crate::errors::{ConnErrorKind, Error};
use crate::net::stream::error_kind;
use crate::net::{Config, Stream};
use crate::resp::{self, Reply};

/// Most systems' `IOV_MAX`: the most slices one `writev` call accepts.
const IOV_MAX: usize = 1024;

/// The server's default `proto-max-bulk-len`, assumed when CONFIG GET is refused.
pub const DEFAULT_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

/// `publish_many` writes at most this many frames before reading their replies.
const CHUNK_FRAMES: usize = 1000;
/// ... or this many payload bytes, whichever comes first.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

const READ_SIZE: usize = 16 * 1024;

#[derive(Debug)]
pub struct Link {
    stream: Stream,
    /// Bytes read from the server: the unparsed ones are `rbuf[rstart..rend]`. The
    /// buffer is zeroed once and grows only for a reply larger than it.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// The largest bulk string the server accepts.
    pub max_bulk_len: u64,
    /// How long to poll for a reply before a sleeping read.
    busy_poll: Duration,
}

/// What a publish call achieved: the replies it got and, if it stopped early, why.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Subscriber counts of the messages the server confirmed, in order.
    pub counts: Vec<i64>,
    /// Payload bytes of the confirmed messages.
    pub bytes: u64,
    pub error: Option<Error>,
}

fn dropped(err: &io::Error, retry_safe: bool, doing: &str) -> Error {
    Error::Connection {
        kind: error_kind(err, true),
        retry_safe,
        message: format!("connection lost while {doing}: {err}"),
    }
}

impl Link {
    /// Connects, authenticates, selects the database, names the client and reads the
    /// server's `proto-max-bulk-len`.
    pub fn open(config: &Config, tls: Option<&Arc<ClientConfig>>) -> Result<Self, Error> {
        let stream = Stream::open(config, tls)?;
        let mut link = Self {
            stream,
            rbuf: vec![0; READ_SIZE],
            rstart: 0,
            rend: 0,
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            busy_poll: config.busy_poll,
        };
        link.handshake(config)?;
        link.stream
            .set_timeout(config.socket_timeout)
            .map_err(|err| dropped(&err, true, "setting the socket timeout"))?;
        Ok(link)
    }

    fn handshake(&mut self, config: &Config) -> Result<(), Error> {
        if let Some(password) = &config.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &config.username {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            self.setup_command(&args, "AUTH")?;
        }
        if config.db != 0 {
            let db = config.db.to_string();
            self.setup_command(&[b"SELECT", db.as_bytes()], "SELECT")?;
        }
        if let Some(name) = &config.client_name {
            self.setup_command(&[b"CLIENT", b"SETNAME", name.as_bytes()], "CLIENT SETNAME")?;
        }

        let reply = self.setup_command(&[b"CONFIG", b"GET", b"proto-max-bulk-len"], "");
        self.max_bulk_len = match reply {
            Ok(Reply::Array(Some(items))) => match items.get(1) {
                Some(Reply::Bulk(Some(value))) => std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_MAX_BULK_LEN),
                _ => DEFAULT_MAX_BULK_LEN,
            },
            Ok(_) => DEFAULT_MAX_BULK_LEN,
            // An ACL that forbids CONFIG, or a proxy that does not implement it.
            Err(Error::Server(_)) => DEFAULT_MAX_BULK_LEN,
            Err(err) => return Err(err),
        };
        Ok(())
    }

    /// Sends one set-up command and reads its reply. An error reply is a
    /// ConnectionError of kind 'auth' (credentials) or 'config' (anything else, when
    /// `what` names the command), or `Error::Server` when `what` is empty.
    fn setup_command(&mut self, args: &[&[u8]], what: &str) -> Result<Reply, Error> {
        let mut frame = Vec::new();
        resp::command(&mut frame, args);
        self.write_all(&mut [IoSlice::new(&frame)])
            .map_err(|(err, _)| dropped(&err, true, "setting up the connection"))?;
        let reply = self.read_reply().map_err(|err| err.retry_safe(true))?;
        let Reply::Error(text) = reply else {
            return Ok(reply);
        };
        if what == "AUTH" || text.starts_with("NOAUTH") || text.starts_with("WRONGPASS") {
            return Err(Error::Connection {
                kind: ConnErrorKind::Auth,
                retry_safe: true,
                message: format!("authentication failed: {text}"),
            });
        }
        if what.is_empty() {
            return Err(Error::Server(text));
        }
        Err(Error::Connection {
            kind: ConnErrorKind::Config,
            retry_safe: true,
            message: format!("{what} failed: {text}"),
        })
    }

    /// Writes every byte of `bufs`, handling partial writes. On failure returns the
    /// error and how many bytes were written before it.
    fn write_all(&mut self, mut bufs: &mut [IoSlice<'_>]) -> Result<(), (io::Error, usize)> {
        let mut written = 0;
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            let count = bufs.len().min(IOV_MAX);
            match self.stream.write_vectored(&bufs[..count]) {
                Ok(0) => {
                    let err = io::Error::new(io::ErrorKind::WriteZero, "the socket took no bytes");
                    return Err((err, written));
                }
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err((err, written)),
            }
        }
        self.stream.flush().map_err(|err| (err, written))
    }

    fn read_reply(&mut self) -> Result<Reply, ReadError> {
        loop {
            if self.rstart < self.rend {
                match resp::parse(&self.rbuf[self.rstart..self.rend]) {
                    Ok(Some((reply, used))) => {
                        self.rstart += used;
                        if self.rstart == self.rend {
                            (self.rstart, self.rend) = (0, 0);
                        }
                        return Ok(reply);
                    }
                    Ok(None) => {}
                    Err(err) => return Err(ReadError::Protocol(err.to_string())),
                }
            }
            if self.rstart > 0 {
                self.rbuf.copy_within(self.rstart..self.rend, 0);
                self.rend -= self.rstart;
                self.rstart = 0;
            }
            if self.rend == self.rbuf.len() {
                self.rbuf.resize(self.rbuf.len() * 2, 0);
            }
            self.stream.spin_until_readable(self.busy_poll);
            let result = self.stream.read(&mut self.rbuf[self.rend..]);
            self.rend += *result.as_ref().unwrap_or(&0);
            match result {
                Ok(0) => return Err(ReadError::Eof),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(ReadError::Io(err)),
            }
        }
    }

    /// Sends `PING` and checks the answer.
    pub fn ping(&mut self) -> Result<(), Error> {
        let mut frame = Vec::new();
        resp::command(&mut frame, &[b"PING"]);
        self.write_all(&mut [IoSlice::new(&frame)])
            .map_err(|(err, written)| dropped(&err, written == 0, "sending PING"))?;
        match self.read_reply().map_err(|err| err.retry_safe(false))? {
            Reply::Status(status) if status == "PONG" => Ok(()),
            Reply::Error(text) => Err(Error::Server(text)),
            other => Err(protocol(format!("unexpected answer to PING: {other:?}"))),
        }
    }

    /// Publishes `messages` on `channel` with the command `name` (PUBLISH or
    /// SPUBLISH), in chunks: write a chunk's frames, read its replies, go on.
    ///
    /// Stops at the first chunk with an error. Every message is checked against
    /// `proto-max-bulk-len` before anything is written.
    pub fn publish(&mut self, name: &[u8], channel: &[u8], messages: &[Encoded]) -> Outcome {
        let mut outcome = Outcome {
            counts: Vec::with_capacity(messages.len()),
            ..Outcome::default()
        };
        let limit = self.max_bulk_len;
        if let Some(big) = messages.iter().find(|m| m.len() as u64 > limit) {
            outcome.error = Some(Error::TooLarge {
                size: big.len() as u64,
                limit,
            });
            return outcome;
        }

        let mut any_written = false;
        let mut rest = messages;
        while !rest.is_empty() {
            let (mut size, mut take) = (0, 0);
            while take < rest.len() && take < CHUNK_FRAMES && (take == 0 || size < CHUNK_BYTES) {
                size += rest[take].len();
                take += 1;
            }
            let (chunk, after) = rest.split_at(take);
            rest = after;

            let mut batch = Batch::with_capacity(64 * take + 64);
            for message in chunk {
                batch.push_frame(name, channel, message.len(), message.slices());
            }
            let mut slices = batch.io_slices();
            if let Err((err, written)) = self.write_all(&mut slices) {
                let safe = !any_written && written == 0;
                outcome.error = Some(dropped(&err, safe, &sending(messages.len())));
                return outcome;
            }
            any_written = true;

            let mut server_error = None;
            for message in chunk {
                match self.read_reply() {
                    Ok(Reply::Integer(count)) => {
                        outcome.counts.push(count);
                        outcome.bytes += message.len() as u64;
                    }
                    Ok(Reply::Error(text)) => {
                        server_error.get_or_insert(Error::Server(text));
                    }
                    Ok(other) => {
                        let text = format!("unexpected answer to a publish: {other:?}");
                        outcome.error = Some(protocol(text));
                        return outcome;
                    }
                    Err(err) => {
                        outcome.error = Some(err.retry_safe(false));
                        return outcome;
                    }
                }
            }
            if server_error.is_some() {
                outcome.error = server_error;
                return outcome;
            }
        }
        outcome
    }

    /// Closes politely (TLS `close_notify`, TCP shutdown).
    pub fn shutdown(mut self) {
        self.stream.shutdown();
    }
}

fn sending(count: usize) -> String {
    if count == 1 {
        "sending the message".into()
    } else {
        format!("sending a batch of {count} messages")
    }
}

fn protocol(message: String) -> Error {
    Error::Connection {
        kind: ConnErrorKind::Protocol,
        retry_safe: false,
        message,
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
enum ReadError {
    Io(io::Error),
    Eof,
    Protocol(String),
}

impl ReadError {
    fn retry_safe(self, retry_safe: bool) -> Error {
        match self {
            Self::Io(err) => dropped(&err, retry_safe, "waiting for the reply"),
            Self::Eof => Error::Connection {
                kind: ConnErrorKind::Dropped,
                retry_safe,
                message: "the server closed the connection".into(),
            },
            Self::Protocol(message) => Error::Connection {
                kind: ConnErrorKind::Protocol,
                retry_safe,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn link_to(server: UnixStream) -> Link {
        Link {
            stream: Stream::Unix(server),
            rbuf: vec![0; READ_SIZE],
            rstart: 0,
            rend: 0,
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            busy_poll: Duration::ZERO,
        }
    }

    #[test]
    fn replies_split_across_reads_and_larger_than_the_buffer() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut link = link_to(ours);
        let big = vec![b'x'; READ_SIZE * 3 + 5];

        let mut sent = format!("${}\r\n", big.len()).into_bytes();
        sent.extend_from_slice(&big);
        sent.extend_from_slice(b"\r\n:7\r\n:");
        let writer = std::thread::spawn(move || {
            theirs.write_all(&sent).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            theirs.write_all(b"8\r\n").unwrap();
            theirs
        });

        assert!(matches!(link.read_reply(), Ok(Reply::Bulk(Some(data))) if data == big));
        assert!(matches!(link.read_reply(), Ok(Reply::Integer(7))));
        assert!(matches!(link.read_reply(), Ok(Reply::Integer(8))));
        drop(writer.join().unwrap());
        assert!(matches!(link.read_reply(), Err(ReadError::Eof)));
    }
}
