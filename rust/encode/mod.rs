//! Python objects to msgpack-numpy bytes, identical to
//! `msgpack.packb(obj, default=msgpack_numpy.encode)`.
//!
//! [`encode_into`] fills an [`Encoded`] message whose large array buffers are
//! borrowed, not copied; [`packb`] copies it once into a `bytes`. Nothing is written
//! anywhere until the whole value has been encoded, so a value that cannot be encoded
//! raises before a single byte leaves the process.

pub mod message;
mod ndarray;
pub mod path;
mod value;

use std::cell::RefCell;

use pyo3::exceptions::{PyException, PyMemoryError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyType};

use crate::errors::{EncodeFailure, Error};
use crate::numpy::raw;
pub use message::Encoded;
use path::Step;

/// Why a value could not be encoded, with the path collected on the way out.
///
/// Boxed, so that the encoder's `Result<(), Failure>` stays one word wide on the hot
/// path where nothing fails.
#[derive(Debug)]
pub struct Failure(Box<FailureInner>);

#[derive(Debug)]
struct FailureInner {
    steps: Vec<Step>,
    message: String,
    cause: Option<PyErr>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(Box::new(FailureInner {
            steps: Vec::new(),
            message: message.into(),
            cause: None,
        }))
    }

    /// A failure caused by a Python exception, kept as the error's `__cause__`.
    pub fn python(message: &str, cause: PyErr) -> Self {
        let mut failure = Self::new(message);
        failure.0.cause = Some(cause);
        failure
    }

    fn at(mut self, step: Step) -> Self {
        self.0.steps.push(step);
        self
    }

    /// A failure inside an array subclass's data, which has no path of its own.
    pub(crate) fn in_array_data(mut self) -> Self {
        self.0.steps.clear();
        self.0.message = format!("the array's data: {}", self.0.message);
        self
    }

    /// Re-roots a failure inside a dict key at the dict: `data['a']: dict key (1, {2}):
    /// cannot encode set`.
    fn in_key(mut self, key: &Bound<'_, PyAny>) -> Self {
        let Step::Key(shown) = Step::key(key) else {
            unreachable!("Step::key builds a Key step")
        };
        self.0.steps.clear();
        self.0.message = format!("dict key {shown}: {}", self.0.message);
        self
    }

    /// The error to raise. An exception that is not an ordinary error
    /// (`KeyboardInterrupt`, `SystemExit`, `MemoryError`) raised by Python code the
    /// encoder called goes up unchanged rather than as an `EncodeError`, so that
    /// `except ValueError` cannot swallow it.
    pub fn into_error(self, py: Python<'_>) -> Error {
        let inner = *self.0;
        if let Some(cause) = &inner.cause {
            let ordinary = cause.is_instance_of::<PyException>(py)
                && !cause.is_instance_of::<PyMemoryError>(py);
            if !ordinary {
                return Error::Python(inner.cause.expect("checked above"));
            }
        }
        Error::Encode(Box::new(EncodeFailure {
            path: path::render(&inner.steps, usize::MAX),
            shown_path: path::render(&inner.steps, path::SHOWN_STEPS),
            message: inner.message,
            cause: inner.cause,
        }))
    }
}

impl From<PyErr> for Failure {
    fn from(err: PyErr) -> Self {
        let message = format!("encoding raised {err}");
        Self::python(&message, err)
    }
}

/// msgpack's own types, which the reference packer also accepts.
#[derive(Debug)]
pub struct MsgpackTypes {
    ext_type: Py<PyType>,
    timestamp: Py<PyType>,
}

static MSGPACK_TYPES: PyOnceLock<MsgpackTypes> = PyOnceLock::new();

/// `msgpack.ExtType` and `msgpack.Timestamp`, if some code already imported msgpack
/// (an object cannot be one of them otherwise).
fn msgpack_types_if_imported(py: Python<'_>) -> PyResult<Option<&'static MsgpackTypes>> {
    if let Some(types) = MSGPACK_TYPES.get(py) {
        return Ok(Some(types));
    }
    let modules = py.import("sys")?.getattr("modules")?;
    if !modules.contains("msgpack")? {
        return Ok(None);
    }
    let types = MSGPACK_TYPES.get_or_try_init(py, || -> PyResult<MsgpackTypes> {
        let msgpack = py.import("msgpack")?;
        Ok(MsgpackTypes {
            ext_type: msgpack.getattr("ExtType")?.cast_into::<PyType>()?.unbind(),
            timestamp: msgpack
                .getattr("Timestamp")?
                .cast_into::<PyType>()?
                .unbind(),
        })
    })?;
    Ok(Some(types))
}

/// Encodes `obj` completely into `message`, borrowing large array buffers. The
/// message must be empty (new, or [`Encoded::reset`]), so that callers can reuse its
/// buffers.
pub fn encode_into(obj: &Bound<'_, PyAny>, message: &mut Encoded) -> Result<(), Error> {
    value::Encoder::new(obj.py(), message)
        .value(obj, 0)
        .map_err(|failure| failure.into_error(obj.py()))?;
    message.finish();
    Ok(())
}

thread_local! {
    /// `packb`'s scratch message, reused across calls on a thread.
    static SCRATCH: RefCell<Encoded> = const { RefCell::new(Encoded::new()) };
}

/// Scratch buffers larger than this are freed rather than kept for the next call.
const SCRATCH_KEEP: usize = 1 << 16;

/// Serialize `obj` to msgpack-numpy bytes, identical to
/// `msgpack.packb(obj, default=msgpack_numpy.encode)`.
#[pyfunction]
#[pyo3(signature = (obj, /))]
pub fn packb<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut message) => pack_with(py, obj, &mut message),
        // Python code run by the outer call's encoding called `packb` again.
        Err(_) => pack_with(py, obj, &mut Encoded::new()),
    })
}

fn pack_with<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    message: &mut Encoded,
) -> PyResult<Bound<'py, PyBytes>> {
    let result = match encode_into(obj, message) {
        Ok(()) => to_bytes(py, message),
        Err(err) => Err(err.into_pyerr(py)),
    };
    message.reset(SCRATCH_KEEP);
    result
}

/// Copies an encoded message into a new `bytes`.
///
/// The GIL stays held during the copy, even for large arrays: released, another
/// thread could resize or free an array while its memory is being read.
fn to_bytes<'py>(py: Python<'py>, message: &Encoded) -> PyResult<Bound<'py, PyBytes>> {
    if let Some(bytes) = message.as_single_slice() {
        return Ok(PyBytes::new(py, bytes));
    }
    raw::bytes_filled_by(py, message.len(), |out| message.copy_into(out))
}
