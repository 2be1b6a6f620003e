//! tickpub's exception classes and the one place where Rust errors become them.
//!
//! The classes are real subclasses of the builtins a caller would expect
//! (`EncodeError` is both a `TypeError` and a `ValueError`, `ConnectionError` is the
//! builtin `ConnectionError`), built once per interpreter with `type(...)` so that
//! multiple inheritance works, and exposed from the `tickpub` package.

use std::fmt;

use pyo3::exceptions::{PyConnectionError, PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple, PyType};

/// What went wrong on a connection, as seen by a caller deciding whether to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnErrorKind {
    /// Nothing accepted the connection (refused, unreachable, name not resolved).
    Refused,
    /// A connect, read or write took longer than its timeout.
    Timeout,
    /// The connection broke after it was established (reset, closed, broken pipe).
    Dropped,
    /// The server rejected the credentials.
    Auth,
    /// TLS negotiation or certificate verification failed.
    Tls,
    /// The server sent something that is not valid RESP.
    Protocol,
    /// The connection URL or an option is invalid.
    Config,
}

impl ConnErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Dropped => "dropped",
            Self::Auth => "auth",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Config => "config",
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug)]
pub struct EncodeFailure {
    /// Where the value sits, from the root: `data['frames'][3]`.
    pub path: String,
    /// `path` with the middle of a very deep path left out, for the message.
    pub shown_path: String,
    pub message: String,
    /// The Python exception that made it fail, if any.
    pub cause: Option<PyErr>,
}

/// Every failure tickpub reports to Python.
#[derive(Debug)]
pub enum Error {
    /// A value cannot be encoded (boxed: it is the largest variant by far).
    Encode(Box<EncodeFailure>),
    /// Bytes that are not a message tickpub will decode.
    Decode(String),
    /// The transport failed. `retry_safe` is true when no byte of the failed command
    /// reached the socket, so sending it again cannot deliver it twice.
    Connection {
        kind: ConnErrorKind,
        retry_safe: bool,
        message: String,
    },
    /// The server answered with an error reply; `message` is the server's text.
    Server(String),
    /// The message is larger than the server accepts (`proto-max-bulk-len`).
    TooLarge { size: u64, limit: u64 },
    /// An exception raised by Python code tickpub called; passed through unchanged.
    Python(PyErr),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(failure) => write!(f, "{}: {}", failure.shown_path, failure.message),
            Self::Decode(message) | Self::Server(message) => f.write_str(message),
            Self::Connection { message, .. } => f.write_str(message),
            Self::TooLarge { size, limit } => write!(
                f,
                "message of {size} bytes exceeds the server's proto-max-bulk-len of \
                 {limit} bytes; split the data or raise proto-max-bulk-len on the server"
            ),
            Self::Python(err) => write!(f, "{err}"),
        }
    }
}

impl From<PyErr> for Error {
    fn from(err: PyErr) -> Self {
        Self::Python(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exception classes, created once per interpreter.
struct Classes {
    base: Py<PyType>,
    encode: Py<PyType>,
    decode: Py<PyType>,
    connection: Py<PyType>,
    server: Py<PyType>,
    too_large: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: &[Bound<'py, PyType>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "tickpub")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(class.unbind())
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let base = new_class(
            py,
            "TickpubError",
            &[py.get_type::<PyException>()],
            "Base class of every error tickpub raises.",
        )?;
        let base_bound = base.bind(py).clone();
        let encode = new_class(
            py,
            "EncodeError",
            &[
                base_bound.clone(),
                py.get_type::<PyTypeError>(),
                py.get_type::<PyValueError>(),
            ],
            "A value cannot be encoded. Raised before anything is written; the message \
             names the value's path, and the attribute `path` holds it.",
        )?;
        let decode = new_class(
            py,
            "DecodeError",
            &[base_bound.clone(), py.get_type::<PyValueError>()],
            "Bytes that are not a message tickpub decodes: malformed msgpack, or an \
             array whose dtype would hold Python objects (tickpub never unpickles).",
        )?;
        let connection = new_class(
            py,
            "ConnectionError",
            &[base_bound.clone(), py.get_type::<PyConnectionError>()],
            "The connection to the server failed. `kind` says how ('refused', \
             'timeout', 'dropped', 'auth', 'tls', 'protocol', 'config'); `retry_safe` \
             is true when nothing of the failed command reached the server.",
        )?;
        let server = new_class(
            py,
            "ServerError",
            std::slice::from_ref(&base_bound),
            "The server answered a command with an error reply; the message is the \
             server's text and `code` its first word (e.g. 'NOPERM').",
        )?;
        let too_large = new_class(
            py,
            "MessageTooLargeError",
            &[base_bound, py.get_type::<PyValueError>()],
            "The encoded message is larger than the server's proto-max-bulk-len. \
             Nothing was sent.",
        )?;
        Ok(Classes {
            base,
            encode,
            decode,
            connection,
            server,
            too_large,
        })
    })
}

/// Adds the exception classes to the native module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let c = classes(py)?;
    module.add("TickpubError", c.base.bind(py))?;
    module.add("EncodeError", c.encode.bind(py))?;
    module.add("DecodeError", c.decode.bind(py))?;
    module.add("ConnectionError", c.connection.bind(py))?;
    module.add("ServerError", c.server.bind(py))?;
    module.add("MessageTooLargeError", c.too_large.bind(py))?;
    Ok(())
}

fn instantiate(
    py: Python<'_>,
    class: &Py<PyType>,
    message: String,
    attrs: &[(&str, Bound<'_, PyAny>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let value = class.bind(py).call1((message,))?;
        for (name, attr) in attrs {
            value.setattr(*name, attr)?;
        }
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|err| err)
}

impl Error {
    /// Turns the error into the Python exception a caller sees.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let c = match classes(py) {
            Ok(c) => c,
            Err(err) => return err,
        };
        let text = self.to_string();
        match self {
            Self::Encode(failure) => {
                let path = PyString::new(py, &failure.path).into_any();
                let err = instantiate(py, &c.encode, text, &[("path", path)]);
                err.set_cause(py, failure.cause);
                err
            }
            Self::Decode(_) => instantiate(py, &c.decode, text, &[]),
            Self::Connection {
                kind, retry_safe, ..
            } => {
                let kind = PyString::new(py, kind.as_str()).into_any();
                let retry = PyBool::new(py, retry_safe).to_owned().into_any();
                let attrs = [("kind", kind), ("retry_safe", retry)];
                instantiate(py, &c.connection, text, &attrs)
            }
            Self::Server(message) => {
                let code = message.split_whitespace().next().unwrap_or("ERR");
                let code = PyString::new(py, code).into_any();
                instantiate(py, &c.server, text, &[("code", code)])
            }
            Self::TooLarge { .. } => instantiate(py, &c.too_large, text, &[]),
            Self::Python(err) => err,
        }
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        Python::attach(|py| err.into_pyerr(py))
    }
}
