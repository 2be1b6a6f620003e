//! The `Connection` class and `connect()`: publishing to Redis with frames written
//! straight from the encoded message, the GIL released while the socket is busy.
//!
//! `link` is one open connection, `session` the state behind the lock (reconnects,
//! forks), `batch` the frame layout, `options` the arguments of `connect()`, `log`
//! the lifecycle messages.

mod batch;
mod link;
mod log;
mod options;
mod session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use rustls::ClientConfig;

use self::link::{Link, Outcome};
use self::log::Event;
use self::session::Session;
use crate::encode::message::{Encoded, BORROW_THRESHOLD};
use crate::errors::Error;
use crate::net::{tls, Config};

/// A connection to one Redis or Valkey server, safe to share between threads.
///
/// Built by `tickpub.connect()`. Each call holds the connection's lock while it writes
/// and reads, so frames from different threads never interleave.
#[pyclass(frozen, module = "tickpub", name = "Connection")]
pub struct Connection {
    config: Config,
    /// The URL with the password masked.
    url: String,
    tls: Option<Arc<ClientConfig>>,
    session: Mutex<Session>,
    stats: Stats,
    /// Emptied messages kept for the next call, so that a batch of small messages
    /// does not allocate and free a buffer for each one.
    spare: Mutex<Vec<Encoded>>,
}

/// At most this many emptied messages are kept for reuse (a chunk of a batch) ...
const SPARE_COUNT: usize = 1024;
/// ... and only those whose buffer is at most this large: at most 2 MiB in all.
const SPARE_KEEP: usize = 2048;

#[derive(Debug, Default)]
struct Stats {
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Opens a connection; see the `tickpub._native` stub for the options.
#[pyfunction]
#[pyo3(signature = (url = None, **options))]
pub fn connect(
    py: Python<'_>,
    url: Option<&str>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Connection> {
    let config = options::config(py, url, options)?;
    let tls = match &config.tls {
        Some(options) => Some(tls::client_config(options).map_err(|err| err.into_pyerr(py))?),
        None => None,
    };

    let link = py
        .detach(|| Link::open(&config, tls.as_ref()))
        .map_err(|err| err.into_pyerr(py))?;
    let url = config.redacted_url();
    log::emit(py, &url, vec![Event::Connected]);

    Ok(Connection {
        config,
        url,
        tls,
        session: Mutex::new(Session::new(link)),
        stats: Stats::default(),
        spare: Mutex::new(Vec::new()),
    })
}

fn channel_bytes(channel: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = channel.cast::<PyString>() {
        return Ok(text.to_str()?.as_bytes().to_vec());
    }
    if let Ok(bytes) = channel.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    let type_name = channel.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "channel must be str or bytes, not {type_name}"
    )))
}

impl Connection {
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spare(&self) -> MutexGuard<'_, Vec<Encoded>> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes each of `values` into a message, reusing spare ones.
    fn encode_all<'py>(
        &self,
        py: Python<'py>,
        values: impl Iterator<Item = PyResult<Bound<'py, PyAny>>>,
    ) -> PyResult<Vec<Encoded>> {
        // As many spare messages as the values need, as far as the iterator tells.
        let wanted = values.size_hint().0.max(1);
        let mut spare = {
            let mut pool = self.spare();
            let keep = pool.len().saturating_sub(wanted);
            pool.split_off(keep)
        };
        let mut encoded = Vec::with_capacity(wanted);
        for value in values {
            let mut message = spare.pop().unwrap_or_default();
            let result = value.and_then(|value| {
                crate::encode::encode_into(&value, &mut message).map_err(|e| e.into_pyerr(py))
            });
            encoded.push(message);
            if let Err(err) = result {
                self.recycle(spare);
                self.recycle(encoded);
                return Err(err);
            }
        }
        self.recycle(spare);
        Ok(encoded)
    }

    /// Empties `messages` (releasing the arrays they reference: call it with the GIL
    /// held) and keeps them for reuse, up to [`SPARE_COUNT`].
    fn recycle(&self, mut messages: Vec<Encoded>) {
        let room = SPARE_COUNT.saturating_sub(self.spare().len());
        messages.truncate(room);
        for message in &mut messages {
            message.reset(SPARE_KEEP);
        }
        self.spare().append(&mut messages);
    }

    /// Writes `messages` as `name` frames and reads the replies, without the GIL.
    fn send(
        &self,
        py: Python<'_>,
        name: &'static [u8],
        channel: Vec<u8>,
        messages: Vec<Encoded>,
    ) -> PyResult<Vec<i64>> {
        // The messages travel into the closure and back out so that the array
        // references they hold are released here, with the GIL held.
        let (outcome, events, messages) = py.detach(move || {
            let mut events = Vec::new();
            let mut session = self.lock();
            let outcome = match session.link(&self.config, self.tls.as_ref(), &mut events) {
                Ok(link) => link.publish(name, &channel, &messages),
                Err(error) => Outcome {
                    error: Some(error),
                    ..Outcome::default()
                },
            };
            if let Some(error @ Error::Connection { .. }) = &outcome.error {
                session.lost(error, &mut events);
            }
            (outcome, events, messages)
        });
        self.recycle(messages);

        self.after(py, events);
        let stats = &self.stats;
        stats
            .messages
            .fetch_add(outcome.counts.len() as u64, Ordering::Relaxed);
        stats.bytes.fetch_add(outcome.bytes, Ordering::Relaxed);
        match outcome.error {
            None => Ok(outcome.counts),
            Some(error) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                Err(error.into_pyerr(py))
            }
        }
    }

    /// Counts reconnects and logs what happened while the GIL was released.
    fn after(&self, py: Python<'_>, events: Vec<Event>) {
        let reconnects = events
            .iter()
            .filter(|e| matches!(e, Event::Reconnected { .. }))
            .count();
        self.stats
            .reconnects
            .fetch_add(reconnects as u64, Ordering::Relaxed);
        log::emit(py, &self.url, events);
    }

    /// [`Connection::send`] for one message; the subscriber count.
    fn send_one(
        &self,
        py: Python<'_>,
        name: &'static [u8],
        channel: Vec<u8>,
        message: Vec<Encoded>,
    ) -> PyResult<i64> {
        debug_assert_eq!(message.len(), 1);
        let counts = self.send(py, name, channel, message)?;
        Ok(counts[0])
    }
}

#[pymethods]
impl Connection {
    /// Publishes `data` on `channel`; returns how many subscribers received it.
    fn publish(
        &self,
        py: Python<'_>,
        channel: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let channel = channel_bytes(channel)?;
        let messages = self.encode_all(py, std::iter::once(Ok(data.clone())))?;
        self.send_one(py, b"PUBLISH", channel, messages)
    }

    /// Publishes with SPUBLISH (sharded pub/sub, Redis 7 and later).
    fn spublish(
        &self,
        py: Python<'_>,
        channel: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let channel = channel_bytes(channel)?;
        let messages = self.encode_all(py, std::iter::once(Ok(data.clone())))?;
        self.send_one(py, b"SPUBLISH", channel, messages)
    }

    /// Publishes every message of `messages`, pipelined; returns the counts.
    fn publish_many(
        &self,
        py: Python<'_>,
        channel: &Bound<'_, PyAny>,
        messages: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<i64>> {
        let channel = channel_bytes(channel)?;
        let encoded = self.encode_all(py, messages.try_iter()?)?;
        if encoded.is_empty() {
            return Ok(Vec::new());
        }
        self.send(py, b"PUBLISH", channel, encoded)
    }

    /// Publishes bytes that are already encoded.
    fn publish_bytes(
        &self,
        py: Python<'_>,
        channel: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let channel = channel_bytes(channel)?;
        let Ok(bytes) = payload.cast::<PyBytes>() else {
            let type_name = payload.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "payload must be bytes, not {type_name}"
            )));
        };
        let data = bytes.as_bytes();
        let mut message =
            Encoded::with_buffer(Vec::with_capacity(data.len().min(BORROW_THRESHOLD)));
        if data.len() < BORROW_THRESHOLD {
            message.buf().extend_from_slice(data);
        } else {
            // SAFETY: a `bytes` object is immutable and its buffer lives as long as
            // the object, which the message keeps alive as the span's owner.
            unsafe {
                message.push_borrowed(bytes.clone().into_any().unbind(), data.as_ptr(), data.len())
            };
        }
        message.finish();
        self.send_one(py, b"PUBLISH", channel, vec![message])
    }

    /// Sends PING; returns True when the server answers PONG.
    fn ping(&self, py: Python<'_>) -> PyResult<bool> {
        let (result, events) = py.detach(|| {
            let mut events = Vec::new();
            let mut session = self.lock();
            let result = session
                .link(&self.config, self.tls.as_ref(), &mut events)
                .and_then(Link::ping);
            if let Err(error @ Error::Connection { .. }) = &result {
                session.lost(error, &mut events);
            }
            (result, events)
        });
        self.after(py, events);
        result.map(|()| true).map_err(|err| err.into_pyerr(py))
    }

    /// Closes the connection; later calls raise ConnectionError.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.lock().close());
    }

    /// Counters since connect: messages, bytes, errors, reconnects.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.stats;
        let dict = PyDict::new(py);
        dict.set_item("messages", s.messages.load(Ordering::Relaxed))?;
        dict.set_item("bytes", s.bytes.load(Ordering::Relaxed))?;
        dict.set_item("errors", s.errors.load(Ordering::Relaxed))?;
        dict.set_item("reconnects", s.reconnects.load(Ordering::Relaxed))?;
        Ok(dict)
    }

    /// The server's URL with the password masked.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    fn __repr__(&self) -> String {
        format!("<tickpub.Connection {}>", self.url)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}

/// Adds `connect` and `Connection` to the native module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Connection>()?;
    module.add_function(wrap_pyfunction!(connect, module)?)?;
    Ok(())
}
