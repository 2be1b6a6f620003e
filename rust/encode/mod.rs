//! Python objects to msgpack-numpy bytes, identical to
//! `msgpack.packb(obj, default=msgpack_numpy.encode)`.
//!
//! [`encode`] produces an [`Encoded`] message whose large array buffers are borrowed,
//! not copied; [`packb`] copies it once into a `bytes`. Nothing is written anywhere
//! until the whole value has been encoded, so a value that cannot be encoded raises
//! before a single byte leaves the process.

pub mod message;
mod ndarray;
pub mod path;
mod value;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyType};

use crate::errors::Error;
use crate::numpy::raw;
pub use message::Encoded;
use path::Step;

/// Messages at least this large are copied into `bytes` with the GIL released.
const RELEASE_GIL_COPY: usize = 1 << 20;

/// Why a value could not be encoded, with the path collected on the way out.
#[derive(Debug)]
pub struct Failure {
    steps: Vec<Step>,
    message: String,
    cause: Option<PyErr>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            steps: Vec::new(),
            message: message.into(),
            cause: None,
        }
    }

    /// A failure caused by a Python exception, kept as the error's `__cause__`.
    pub fn python(message: &str, cause: PyErr) -> Self {
        Self {
            cause: Some(cause),
            ..Self::new(message)
        }
    }

    fn at(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Re-roots a failure inside a dict key at the dict: `data['a']: dict key (1, {2}):
    /// cannot encode set`.
    fn in_key(self, key: &Bound<'_, PyAny>) -> Self {
        let Step::Key(shown) = Step::key(key) else {
            unreachable!("Step::key builds a Key step")
        };
        Self {
            steps: Vec::new(),
            message: format!("dict key {shown}: {}", self.message),
            ..self
        }
    }

    pub fn into_error(self) -> Error {
        Error::Encode {
            path: path::render(&self.steps),
            message: self.message,
            cause: self.cause,
        }
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

/// Encodes `obj` completely, borrowing large array buffers.
pub fn encode(obj: &Bound<'_, PyAny>) -> Result<Encoded, Error> {
    encode_into(obj, Vec::with_capacity(64))
}

/// [`encode`], writing into `buf`.
pub fn encode_into(obj: &Bound<'_, PyAny>, buf: Vec<u8>) -> Result<Encoded, Error> {
    let mut encoder = value::Encoder::new(obj.py(), Encoded::with_buffer(buf));
    encoder.value(obj, 0).map_err(Failure::into_error)?;
    Ok(encoder.out.finish())
}

thread_local! {
    /// `packb`'s scratch buffer, reused across calls on a thread.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Scratch buffers larger than this are freed rather than kept for the next call.
const SCRATCH_KEEP: usize = 1 << 16;

/// Serialize `obj` to msgpack-numpy bytes, identical to
/// `msgpack.packb(obj, default=msgpack_numpy.encode)`.
#[pyfunction]
#[pyo3(signature = (obj, /))]
pub fn packb<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let message = encode_into(obj, SCRATCH.take()).map_err(|err| err.into_pyerr(py))?;
    let result = match message.as_single_slice() {
        Some(bytes) => Ok(PyBytes::new(py, bytes)),
        None => raw::bytes_filled_by(py, message.len(), |out| {
            if message.len() >= RELEASE_GIL_COPY {
                py.detach(|| message.copy_into(out));
            } else {
                message.copy_into(out);
            }
        }),
    };
    let buffer = message.into_buffer();
    if buffer.capacity() <= SCRATCH_KEEP {
        SCRATCH.set(buffer);
    }
    result
}
