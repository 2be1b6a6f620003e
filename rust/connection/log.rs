//! Lifecycle events, logged on the Python logger `tickpub`: connect at DEBUG, a lost
//! connection and reconnect attempts at WARNING, giving up at ERROR. Events are
//! collected while the GIL is released and logged afterwards; nothing is logged per
//! message.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Something that happened to a connection.
#[derive(Debug)]
pub enum Event {
    Connected,
    Forked {
        pid: u32,
    },
    Lost {
        error: String,
    },
    RetryFailed {
        attempt: u32,
        attempts: u32,
        error: String,
    },
    Reconnected {
        attempts: u32,
    },
    GaveUp {
        attempts: u32,
        error: String,
    },
}

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            let logging = py.import("logging")?;
            Ok::<_, PyErr>(logging.call_method1("getLogger", ("tickpub",))?.unbind())
        })
        .map(|logger| logger.bind(py))
}

/// Logs `events` for the connection to `url` (already redacted). A failure of the
/// logging machinery itself is reported through `sys.unraisablehook`, never raised.
pub fn emit(py: Python<'_>, url: &str, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let logger = match logger(py) {
        Ok(logger) => logger,
        Err(err) => return err.write_unraisable(py, None),
    };
    for event in events {
        let result = match event {
            Event::Connected => logger.call_method1("debug", ("connected to %s", url)),
            Event::Forked { pid } => logger.call_method1(
                "debug",
                (
                    "process %d is a fork; opening its own connection to %s",
                    pid,
                    url,
                ),
            ),
            Event::Lost { error } => logger.call_method1(
                "warning",
                (
                    "connection to %s lost: %s; the next call reconnects",
                    url,
                    error,
                ),
            ),
            Event::RetryFailed {
                attempt,
                attempts,
                error,
            } => logger.call_method1(
                "warning",
                (
                    "reconnect attempt %d of %d to %s failed: %s",
                    attempt,
                    attempts,
                    url,
                    error,
                ),
            ),
            Event::Reconnected { attempts } => {
                logger.call_method1("warning", ("reconnected to %s (attempt %d)", url, attempts))
            }
            Event::GaveUp { attempts, error } => logger.call_method1(
                "error",
                (
                    "giving up on %s after %d connection attempts: %s",
                    url,
                    attempts,
                    error,
                ),
            ),
        };
        if let Err(err) = result {
            err.write_unraisable(py, None);
        }
    }
}
