//! msgpack-numpy bytes to Python objects, without ever unpickling.
//!
//! The decoder mirrors `msgpack.unpackb(data, object_hook=msgpack_numpy.decode)`:
//! maps are built inside out and each one is offered to the msgpack-numpy rules
//! (`ndarray.rs`) before it becomes a dict. A map's bin values stay as spans of the
//! input until those rules decide, so an array's bytes are never copied.

mod input;
mod ndarray;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

use crate::errors::{Error, Result};
use crate::msgpack::read::{Reader, Span, Token};
use input::Input;

/// The deepest nesting of arrays and maps accepted; msgpack's own unpacker allows the
/// same.
const MAX_DEPTH: usize = 1024;

/// Adds `unpackb` to the native module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(unpackb, module)?)
}

/// Decodes one msgpack-numpy message; see the stub for the full contract.
#[pyfunction]
#[pyo3(signature = (data, *, copy = false, strict_map_key = true))]
fn unpackb<'py>(
    data: &Bound<'py, PyAny>,
    copy: bool,
    strict_map_key: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let input = Input::new(data)?;
    let mut decoder = Decoder {
        py,
        input: &input,
        reader: Reader::new(input.bytes()),
        copy,
        strict_map_key,
        depth: 0,
    };
    decoder.message().map_err(|err| err.into_pyerr(py))
}

/// A decoded value, except that a bin is still a span of the input.
pub(crate) enum Value<'py> {
    Object(Bound<'py, PyAny>),
    Bin(Span),
}

/// One key/value pair of a map, in wire order.
pub(crate) struct Entry<'a, 'py> {
    key: Bound<'py, PyAny>,
    /// The key's bytes when it was a bin: only bin keys can equal `b'nd'` and friends.
    key_bin: Option<&'a [u8]>,
    value: Value<'py>,
}

pub(crate) struct Decoder<'a, 'py> {
    py: Python<'py>,
    input: &'a Input<'a, 'py>,
    reader: Reader<'a>,
    copy: bool,
    strict_map_key: bool,
    depth: usize,
}

/// Turns an exception raised while decoding the item at `offset` into a `DecodeError`.
fn at(offset: usize, what: &'static str) -> impl Fn(PyErr) -> Error {
    move |err| Error::Decode(format!("{what} at byte {offset}: {err}"))
}

impl<'a, 'py> Decoder<'a, 'py> {
    fn message(&mut self) -> Result<Bound<'py, PyAny>> {
        if self.reader.remaining() == 0 {
            return Err(Error::Decode("empty input: no msgpack object".into()));
        }
        let object = self.object()?;
        if self.reader.remaining() > 0 {
            return Err(Error::Decode(format!(
                "extra data: the object ends at byte {} but the input has {} bytes",
                self.reader.position(),
                self.input.bytes().len()
            )));
        }
        Ok(object)
    }

    /// Decodes the next item into a Python object.
    fn object(&mut self) -> Result<Bound<'py, PyAny>> {
        let value = self.value()?;
        Ok(self.materialize(&value))
    }

    pub(crate) fn materialize(&self, value: &Value<'py>) -> Bound<'py, PyAny> {
        match value {
            Value::Object(object) => object.clone(),
            Value::Bin(span) => PyBytes::new(self.py, self.reader.bytes(*span)).into_any(),
        }
    }

    /// Decodes the next item, leaving a bin as a span.
    fn value(&mut self) -> Result<Value<'py>> {
        let py = self.py;
        let offset = self.reader.position();
        let token = self
            .reader
            .next_token()
            .map_err(|err| Error::Decode(err.to_string()))?;
        let object = match token {
            Token::Nil => py.None().into_bound(py),
            Token::Bool(value) => PyBool::new(py, value).to_owned().into_any(),
            Token::Int(value) => PyInt::new(py, value).into_any(),
            Token::UInt(value) => PyInt::new(py, value).into_any(),
            Token::F32(value) => PyFloat::new(py, f64::from(value)).into_any(),
            Token::F64(value) => PyFloat::new(py, value).into_any(),
            Token::Str(span) => self.text(span, offset)?.into_any(),
            Token::Bin(span) => return Ok(Value::Bin(span)),
            Token::Array(count) => self.array(count, offset)?,
            Token::Map(count) => self.map(count, offset)?,
            Token::Ext(code, span) => self.ext(code, span, offset)?,
        };
        Ok(Value::Object(object))
    }

    pub(crate) fn text(&self, span: Span, offset: usize) -> Result<Bound<'py, PyString>> {
        match std::str::from_utf8(self.reader.bytes(span)) {
            Ok(text) => Ok(PyString::new(self.py, text)),
            Err(err) => Err(Error::Decode(format!(
                "invalid UTF-8 in the str at byte {offset}: {err}"
            ))),
        }
    }

    fn enter(&mut self, offset: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::Decode(format!(
                "the container at byte {offset} is nested more than {MAX_DEPTH} deep"
            )));
        }
        Ok(())
    }

    fn array(&mut self, count: usize, offset: usize) -> Result<Bound<'py, PyAny>> {
        self.enter(offset)?;
        // `count` is at most the remaining bytes, so this reserves no more than the
        // input could fill; the cap keeps a short-lived big message cheap anyway.
        let mut items = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            items.push(self.object()?);
        }
        self.depth -= 1;
        Ok(PyList::new(self.py, items)?.into_any())
    }

    fn map(&mut self, count: usize, offset: usize) -> Result<Bound<'py, PyAny>> {
        self.enter(offset)?;
        let mut entries = Vec::with_capacity(count.min(1 << 12));
        for _ in 0..count {
            let key_offset = self.reader.position();
            let (key, key_bin) = match self.value()? {
                Value::Bin(span) => {
                    let bytes = self.reader.bytes(span);
                    (PyBytes::new(self.py, bytes).into_any(), Some(bytes))
                }
                Value::Object(key) => (key, None),
            };
            self.check_key(&key, key_offset)?;
            let value = self.value()?;
            entries.push(Entry {
                key,
                key_bin,
                value,
            });
        }
        self.depth -= 1;

        if let Some(special) = ndarray::convert(self, &entries, offset)? {
            return Ok(special);
        }
        let dict = PyDict::new(self.py);
        for entry in &entries {
            let value = self.materialize(&entry.value);
            dict.set_item(&entry.key, value)
                .map_err(at(offset, "map"))?;
        }
        Ok(dict.into_any())
    }

    fn check_key(&self, key: &Bound<'py, PyAny>, offset: usize) -> Result<()> {
        if key.is_exact_instance_of::<PyString>() || key.is_exact_instance_of::<PyBytes>() {
            return Ok(());
        }
        if self.strict_map_key {
            let kind = key.get_type().name().map_err(at(offset, "map key"))?;
            return Err(Error::Decode(format!(
                "map key at byte {offset} is of type {kind}; only str and bytes keys are \
                 allowed unless strict_map_key=False"
            )));
        }
        key.hash().map_err(at(offset, "map key"))?;
        Ok(())
    }

    fn ext(&self, code: i8, span: Span, offset: usize) -> Result<Bound<'py, PyAny>> {
        let classes = ext_classes(self.py).map_err(at(offset, "ext"))?;
        let data = PyBytes::new(self.py, self.reader.bytes(span));
        let made = if code == -1 {
            let timestamp = classes.timestamp.bind(self.py);
            timestamp.call_method1("from_bytes", (data,))
        } else {
            classes.ext_type.bind(self.py).call1((code, data))
        };
        made.map_err(at(offset, "ext"))
    }
}

/// `msgpack.ExtType` and `msgpack.Timestamp`, what msgpack itself returns for ext items.
struct ExtClasses {
    ext_type: Py<PyAny>,
    timestamp: Py<PyAny>,
}

static EXT_CLASSES: PyOnceLock<ExtClasses> = PyOnceLock::new();

fn ext_classes(py: Python<'_>) -> PyResult<&ExtClasses> {
    EXT_CLASSES.get_or_try_init(py, || {
        let msgpack = py.import("msgpack")?;
        Ok(ExtClasses {
            ext_type: msgpack.getattr("ExtType")?.unbind(),
            timestamp: msgpack.getattr("Timestamp")?.unbind(),
        })
    })
}
