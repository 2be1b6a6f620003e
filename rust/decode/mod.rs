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
}

/// A container whose items are still being decoded.
enum Frame<'a, 'py> {
    Array {
        items: Vec<Bound<'py, PyAny>>,
        remaining: usize,
        offset: usize,
    },
    Map {
        entries: Vec<Entry<'a, 'py>>,
        /// The key decoded last, waiting for its value.
        key: Option<(Bound<'py, PyAny>, Option<&'a [u8]>)>,
        remaining: usize,
        offset: usize,
    },
}

impl<'a, 'py> Frame<'a, 'py> {
    fn new(token: Token, count: usize, offset: usize) -> Self {
        // `count` is at most the remaining bytes, so a reservation never exceeds what
        // the input could fill; the caps keep a short-lived big message cheap anyway.
        match token {
            Token::Map(_) => Self::Map {
                entries: Vec::with_capacity(count.min(1 << 12)),
                key: None,
                remaining: count,
                offset,
            },
            _ => Self::Array {
                items: Vec::with_capacity(count.min(1 << 16)),
                remaining: count,
                offset,
            },
        }
    }

    fn offset(&self) -> usize {
        match self {
            Self::Array { offset, .. } | Self::Map { offset, .. } => *offset,
        }
    }

    /// Takes the next item (`at` is where it starts); true when that completed the
    /// container.
    fn accept(&mut self, decoder: &Decoder<'a, 'py>, value: Value<'py>, at: usize) -> Result<bool> {
        match self {
            Self::Array {
                items, remaining, ..
            } => {
                items.push(decoder.materialize(&value));
                *remaining -= 1;
                Ok(*remaining == 0)
            }
            Self::Map {
                entries,
                key,
                remaining,
                ..
            } => {
                let Some((key, key_bin)) = key.take() else {
                    let pending = match value {
                        Value::Bin(span) => {
                            let bytes = decoder.reader.bytes(span);
                            (PyBytes::new(decoder.py, bytes).into_any(), Some(bytes))
                        }
                        Value::Object(key) => (key, None),
                    };
                    decoder.check_key(&pending.0, at)?;
                    *key = Some(pending);
                    return Ok(false);
                };
                entries.push(Entry {
                    key,
                    key_bin,
                    value,
                });
                *remaining -= 1;
                Ok(*remaining == 0)
            }
        }
    }

    fn finish(self, decoder: &Decoder<'a, 'py>) -> Result<Bound<'py, PyAny>> {
        match self {
            Self::Array { items, .. } => Ok(PyList::new(decoder.py, items)?.into_any()),
            Self::Map {
                entries, offset, ..
            } => decoder.map(entries, offset),
        }
    }
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

    /// Decodes the next item and everything nested in it, leaving a bin as a span.
    ///
    /// Containers are tracked on an explicit stack rather than by recursion, so that
    /// nesting as deep as the limit needs no more native stack than a flat message:
    /// a hostile message cannot overflow the stack of a thread with a small one.
    fn value(&mut self) -> Result<Value<'py>> {
        let mut open: Vec<Frame<'a, 'py>> = Vec::new();
        loop {
            let offset = self.reader.position();
            let token = self
                .reader
                .next_token()
                .map_err(|err| Error::Decode(err.to_string()))?;
            let mut value = match token {
                Token::Array(count) | Token::Map(count) if count > 0 => {
                    if open.len() >= MAX_DEPTH {
                        return Err(Error::Decode(format!(
                            "the container at byte {offset} is nested more than \
                             {MAX_DEPTH} deep"
                        )));
                    }
                    open.push(Frame::new(token, count, offset));
                    continue;
                }
                token => self.leaf(token, offset)?,
            };
            let mut value_offset = offset;

            // Hand the value to the innermost open container; each container it
            // completes becomes the value handed to the next one out.
            loop {
                let Some(frame) = open.last_mut() else {
                    return Ok(value);
                };
                if !frame.accept(self, value, value_offset)? {
                    break;
                }
                let done = open.pop().expect("the frame just accepted a value");
                value_offset = done.offset();
                value = Value::Object(done.finish(self)?);
            }
        }
    }

    /// A value that is not a container with items.
    fn leaf(&self, token: Token, offset: usize) -> Result<Value<'py>> {
        let py = self.py;
        let object = match token {
            Token::Nil => py.None().into_bound(py),
            Token::Bool(value) => PyBool::new(py, value).to_owned().into_any(),
            Token::Int(value) => PyInt::new(py, value).into_any(),
            Token::UInt(value) => PyInt::new(py, value).into_any(),
            Token::F32(value) => PyFloat::new(py, f64::from(value)).into_any(),
            Token::F64(value) => PyFloat::new(py, value).into_any(),
            Token::Str(span) => self.text(span, offset)?.into_any(),
            Token::Bin(span) => return Ok(Value::Bin(span)),
            Token::Array(_) => PyList::empty(py).into_any(),
            Token::Map(_) => self.map(Vec::new(), offset)?,
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

    /// A complete map: what the msgpack-numpy rules make of it, or a dict.
    fn map(&self, entries: Vec<Entry<'a, 'py>>, offset: usize) -> Result<Bound<'py, PyAny>> {
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
