//! The msgpack-numpy rules: which maps are arrays, numpy scalars or complex numbers.
//!
//! `convert` follows `msgpack_numpy.decode` (0.4.8) step by step, including the order
//! in which it looks keys up, because a missing key makes the reference return the
//! plain dict (it catches `KeyError`) while other failures raise. Two things differ on
//! purpose: a map of kind `b'O'` (a pickled object array) and any dtype that would hold
//! Python objects raise `DecodeError` instead of unpickling or reading pointers out of
//! the message; and an array's data is a read-only view of the input instead of a
//! fresh `bytes` object.

use pyo3::exceptions::PyKeyError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyComplex, PyDict, PyList, PySlice, PyString, PyTuple};

use super::{Decoder, Entry, Value};
use crate::errors::{Error, Result};

/// Most distinct dtype strings remembered; a message cannot grow the cache past this.
const DTYPE_CACHE_LIMIT: usize = 256;

struct Numpy {
    ndarray: Py<PyAny>,
    frombuffer: Py<PyAny>,
    dtype: Py<PyAny>,
    /// `np.dtype(s)` for type strings already seen, all free of Python objects.
    dtypes: Py<PyDict>,
}

static NUMPY: PyOnceLock<Numpy> = PyOnceLock::new();

fn numpy(py: Python<'_>) -> PyResult<&Numpy> {
    NUMPY.get_or_try_init(py, || {
        let np = py.import("numpy")?;
        Ok(Numpy {
            ndarray: np.getattr("ndarray")?.unbind(),
            frombuffer: np.getattr("frombuffer")?.unbind(),
            dtype: np.getattr("dtype")?.unbind(),
            dtypes: PyDict::new(py).unbind(),
        })
    })
}

/// Last value under a bin key equal to `name`, as a dict built from `entries` keeps.
fn lookup<'e, 'py>(entries: &'e [Entry<'_, 'py>], name: &[u8]) -> Option<&'e Value<'py>> {
    let entry = entries.iter().rev().find(|e| e.key_bin == Some(name))?;
    Some(&entry.value)
}

fn is_bin(decoder: &Decoder<'_, '_>, value: Option<&Value<'_>>, expected: &[u8]) -> bool {
    matches!(value, Some(Value::Bin(span)) if decoder.reader.bytes(*span) == expected)
}

/// The array, scalar or complex number a map stands for, or `None` for a plain map.
pub(super) fn convert<'py>(
    decoder: &Decoder<'_, 'py>,
    entries: &[Entry<'_, 'py>],
    offset: usize,
) -> Result<Option<Bound<'py, PyAny>>> {
    let converted = if let Some(nd) = lookup(entries, b"nd") {
        match nd {
            Value::Object(flag) if flag.is(PyBool::new(decoder.py, true).as_any()) => {
                array(decoder, entries, offset)
            }
            _ => scalar(decoder, entries, offset),
        }
    } else if lookup(entries, b"complex").is_some() {
        complex(decoder, entries, offset)
    } else {
        return Ok(None);
    };
    match converted {
        Err(Error::Python(err)) if err.is_instance_of::<PyKeyError>(decoder.py) => Ok(None),
        Err(Error::Python(err)) => Err(Error::Decode(format!(
            "msgpack-numpy map at byte {offset}: {err}"
        ))),
        other => other,
    }
}

fn array<'py>(
    decoder: &Decoder<'_, 'py>,
    entries: &[Entry<'_, 'py>],
    offset: usize,
) -> Result<Option<Bound<'py, PyAny>>> {
    let py = decoder.py;
    let kind = lookup(entries, b"kind");
    let descr = if is_bin(decoder, kind, b"V") {
        let Some(descr) = lookup(entries, b"type") else {
            return Ok(None);
        };
        field_names_to_str(&decoder.materialize(descr))?
    } else if is_bin(decoder, kind, b"O") {
        if lookup(entries, b"data").is_none() {
            return Ok(None);
        }
        return Err(Error::Decode(format!(
            "the array at byte {offset} is a pickled object array (kind b'O'); tickpub \
             never unpickles"
        )));
    } else {
        let Some(descr) = lookup(entries, b"type") else {
            return Ok(None);
        };
        decoder.materialize(descr)
    };
    let Some(data) = lookup(entries, b"data") else {
        return Ok(None);
    };
    let dtype = unpack_dtype(py, &descr, offset)?;
    let Some(shape) = lookup(entries, b"shape") else {
        return Ok(None);
    };
    let shape = decoder.materialize(shape);

    let buffer = match data {
        Value::Bin(span) if decoder.input.is_bytes() => decoder.input.window(*span)?,
        // numpy would make the memoryview's owner the array's base and let the
        // memoryview go, releasing its export: the caller could then resize or
        // close the buffer under the array. An array over the memoryview keeps it.
        Value::Bin(span) => numpy(py)?
            .frombuffer
            .bind(py)
            .call1((decoder.input.window(*span)?, intern!(py, "u1")))?,
        // numpy allocates (uninitialised) memory for an array without a buffer, of
        // whatever size the message declares.
        Value::Object(object) if object.is_none() => {
            return Err(Error::Decode(format!(
                "the array at byte {offset} has no data (nil); its data must be bin"
            )))
        }
        Value::Object(object) => object.clone(),
    };
    let ndarray = numpy(py)?.ndarray.bind(py);
    let array = ndarray.call1((shape, dtype, buffer))?;
    if decoder.copy {
        return Ok(Some(array.call_method0(intern!(py, "copy"))?));
    }
    if let Value::Object(_) = data {
        array.call_method1(intern!(py, "setflags"), (false,))?;
    }
    Ok(Some(array))
}

fn scalar<'py>(
    decoder: &Decoder<'_, 'py>,
    entries: &[Entry<'_, 'py>],
    offset: usize,
) -> Result<Option<Bound<'py, PyAny>>> {
    let py = decoder.py;
    let (Some(descr), Some(data)) = (lookup(entries, b"type"), lookup(entries, b"data")) else {
        return Ok(None);
    };
    let data = decoder.materialize(data);
    let dtype = unpack_dtype(py, &decoder.materialize(descr), offset)?;
    let values = numpy(py)?.frombuffer.bind(py).call1((data, dtype))?;
    Ok(Some(values.get_item(0)?))
}

fn complex<'py>(
    decoder: &Decoder<'_, 'py>,
    entries: &[Entry<'_, 'py>],
    offset: usize,
) -> Result<Option<Bound<'py, PyAny>>> {
    let Some(data) = lookup(entries, b"data") else {
        return Ok(None);
    };
    let text = match data {
        Value::Bin(span) => decoder.text(*span, offset)?,
        Value::Object(object) => object.str()?,
    };
    let complex = decoder.py.get_type::<PyComplex>().call1((text,))?;
    Ok(Some(complex))
}

/// `[tuple(t.decode() if type(t) is bytes else t for t in d) for d in descr]`
fn field_names_to_str<'py>(descr: &Bound<'py, PyAny>) -> Result<Bound<'py, PyAny>> {
    let py = descr.py();
    let fields = PyList::empty(py);
    for field in descr.try_iter()? {
        let mut parts = Vec::new();
        for part in field?.try_iter()? {
            let part = part?;
            match part.cast_exact::<PyBytes>() {
                Ok(bytes) => parts.push(bytes_to_str(bytes)?.into_any()),
                Err(_) => parts.push(part),
            }
        }
        fields.append(PyTuple::new(py, parts)?)?;
    }
    Ok(fields.into_any())
}

fn bytes_to_str<'py>(bytes: &Bound<'py, PyBytes>) -> Result<Bound<'py, PyString>> {
    match std::str::from_utf8(bytes.as_bytes()) {
        Ok(text) => Ok(PyString::new(bytes.py(), text)),
        Err(err) => Err(Error::Decode(format!(
            "a structured dtype field holds invalid UTF-8: {err}"
        ))),
    }
}

/// `msgpack_numpy._unpack_dtype`, refusing dtypes that hold Python objects.
fn unpack_dtype<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyAny>,
    offset: usize,
) -> Result<Bound<'py, PyAny>> {
    let np = numpy(py)?;
    let cache = np.dtypes.bind(py);
    let cacheable = descr.is_exact_instance_of::<PyString>();
    if cacheable {
        if let Some(dtype) = cache.get_item(descr)? {
            return Ok(dtype);
        }
    }

    let dtype = np.dtype.bind(py).call1((nested_fields(py, descr)?,))?;
    if dtype.getattr(intern!(py, "hasobject"))?.is_truthy()? {
        return Err(Error::Decode(format!(
            "the numpy value at byte {offset} has dtype {dtype}, which holds Python \
             objects; tickpub decodes only plain data and never builds object arrays"
        )));
    }
    // A dtype with fields can be renamed in place (`dtype.names = ...`), so each
    // message gets its own; plain dtypes are immutable and shared.
    let has_fields = !dtype.getattr(intern!(py, "names"))?.is_none();
    if cacheable && !has_fields && cache.len() < DTYPE_CACHE_LIMIT {
        cache.set_item(descr, &dtype)?;
    }
    Ok(dtype)
}

/// The argument `_unpack_dtype` passes to `np.dtype`: for a list or tuple, each field
/// `(name, type, *shape)` with its type unpacked recursively; anything else unchanged.
fn nested_fields<'py>(py: Python<'py>, descr: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let is_sequence = descr.is_instance_of::<PyList>() || descr.is_instance_of::<PyTuple>();
    if !is_sequence {
        return Ok(descr.clone());
    }
    let dtype = numpy(py)?.dtype.bind(py);
    let tuple = py.get_type::<PyTuple>();
    let rest = py.get_type::<PySlice>().call1((2, py.None()))?;
    let fields = PyList::empty(py);
    for field in descr.try_iter()? {
        let field = field?;
        let name = field.get_item(0)?;
        let inner = dtype.call1((nested_fields(py, &field.get_item(1)?)?,))?;
        let head = PyTuple::new(py, [name, inner])?;
        let tail = tuple.call1((field.get_item(&rest)?,))?;
        fields.append(head.add(tail)?)?;
    }
    Ok(fields.into_any())
}
