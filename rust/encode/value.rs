//! The walk over a Python value, in the order of the reference packer's type checks.
//!
//! msgpack's packer tests, in order: None, True, False, int, float, bytes and
//! bytearray, str, dict, `ExtType`, `Timestamp`, list and tuple, memoryview; only then
//! does it call msgpack-numpy's `encode`, which tests ndarray, numpy bool and number
//! scalars, and complex. Subclasses count (an `IntEnum` packs as an int, `float64`
//! as a float). tickpub tests the exact builtin types first because they are the
//! common case, then follows the same order for everything else.

use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString,
    PyTuple,
};
use pyo3::Borrowed;

use super::message::{Encoded, BORROW_THRESHOLD};
use super::path::Step;
use super::Failure;
use crate::msgpack::write;
use crate::numpy::raw::{self, Exact};
use crate::numpy::{self, Numpy};

/// The deepest level a value may sit at, counting the root as 0: the reference
/// packer's recursion limit.
pub const MAX_DEPTH: usize = 1024;

pub struct Encoder<'a, 'py> {
    py: Python<'py>,
    pub out: &'a mut Encoded,
    numpy: Option<&'static Numpy>,
    msgpack_types: Option<&'static super::MsgpackTypes>,
    ascii_layout: Option<usize>,
}

impl<'a, 'py> Encoder<'a, 'py> {
    pub fn new(py: Python<'py>, out: &'a mut Encoded) -> Self {
        Self {
            py,
            out,
            numpy: None,
            msgpack_types: None,
            ascii_layout: raw::ascii_layout(py),
        }
    }

    fn buf(&mut self) -> &mut Vec<u8> {
        self.out.buf()
    }

    /// Encodes `obj`, which the caller holds a strong reference to, at `depth`.
    pub fn value(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), Failure> {
        check_depth(depth)?;
        let kind = raw::exact(obj);
        if let Some(done) = self.plain(kind) {
            return done;
        }
        match kind {
            Exact::Dict(dict) => self.dict(dict, depth),
            Exact::List(list) => self.list(list, depth),
            Exact::Tuple(tuple) => self.tuple(tuple, depth),
            _ => self.uncommon(obj, depth),
        }
    }

    /// Encodes an object borrowed from a container. Plain values are written through
    /// the borrowed reference; anything whose encoding may run Python code (which
    /// could free it) is encoded through a strong reference.
    fn borrowed(&mut self, obj: Borrowed<'_, 'py, PyAny>, depth: usize) -> Result<(), Failure> {
        check_depth(depth)?;
        if let Some(done) = self.plain(raw::exact(&obj)) {
            return done;
        }
        self.value(&obj.to_owned(), depth)
    }

    /// Writes the plain values (see [`Exact::is_plain`]); None for anything else.
    ///
    /// The common cases (ASCII str, int that fits 64 bits) are written inline; the
    /// rest, and every error, take the out-of-line paths.
    #[inline(always)]
    fn plain(&mut self, kind: Exact<'_, 'py>) -> Option<Result<(), Failure>> {
        let out = self.out.buf();
        match kind {
            Exact::Str(text) => match raw::compact_ascii(text, self.ascii_layout) {
                Some(ascii) if ascii.len() <= write::MAX_LEN => write::str(out, ascii),
                _ => return Some(self.string(text)),
            },
            Exact::Int(int) => match raw::int_i64(int) {
                Some(value) => write::int(out, value),
                None => return Some(self.int(int)),
            },
            Exact::Float(float) => write::float(out, float.value()),
            Exact::Bool(value) => write::boolean(out, value),
            Exact::None => write::nil(out),
            Exact::Bytes(bytes) => return Some(self.bytes(bytes)),
            Exact::Dict(_) | Exact::List(_) | Exact::Tuple(_) | Exact::Other => return None,
        }
        Some(Ok(()))
    }

    /// Everything but the exact builtin types, in the reference's order.
    fn uncommon(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), Failure> {
        if self.numpy.is_none() {
            self.numpy = numpy::numpy_if_imported(self.py)?;
        }
        if let Some(np) = self.numpy {
            if let Some(scalar) = np.scalar_type(obj) {
                return self.numpy_scalar_fast(obj, scalar, depth);
            }
        }
        if let Ok(int) = obj.cast::<PyInt>() {
            return self.int(int);
        }
        if let Ok(float) = obj.cast::<PyFloat>() {
            write::float(self.buf(), float.value());
            return Ok(());
        }
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return self.bytes(bytes);
        }
        if let Ok(array) = obj.cast::<PyByteArray>() {
            return self.raw_bin(&array.to_vec());
        }
        if let Ok(text) = obj.cast::<PyString>() {
            return self.string(text);
        }
        if obj.cast::<PyDict>().is_ok() {
            return self.dict_subclass(obj, depth);
        }
        if obj.cast::<PyTuple>().is_ok() || obj.cast::<PyList>().is_ok() {
            if let Some(types) = self.msgpack_types()? {
                if obj.is_instance(types.ext_type.bind(self.py))? {
                    return self.ext_type(obj);
                }
            }
            return self.sequence_subclass(obj, depth);
        }
        if let Some(types) = self.msgpack_types()? {
            if obj.get_type().is(types.timestamp.bind(self.py)) {
                return self.timestamp(obj);
            }
        }
        if obj.cast::<PyMemoryView>().is_ok() {
            let buffer = raw::SimpleBuffer::get(obj)
                .map_err(|err| Failure::python("cannot read the memoryview", err))?;
            return self.raw_bin(buffer.as_bytes());
        }
        if let Some(np) = self.numpy {
            if obj.is_instance(np.ndarray.bind(self.py))? {
                return super::ndarray::array(self, np, obj, depth);
            }
            if obj.is_instance(np.number.bind(self.py))?
                || obj.is_instance(np.bool_.bind(self.py))?
            {
                return self.numpy_scalar_slow(obj, depth);
            }
        }
        if obj.cast::<PyComplex>().is_ok() {
            return self.complex(obj, depth);
        }
        Err(self.unsupported(obj))
    }

    fn msgpack_types(&mut self) -> Result<Option<&'static super::MsgpackTypes>, Failure> {
        if self.msgpack_types.is_none() {
            self.msgpack_types = super::msgpack_types_if_imported(self.py)?;
        }
        Ok(self.msgpack_types)
    }

    fn unsupported(&self, obj: &Bound<'py, PyAny>) -> Failure {
        let name = type_name(obj);
        let hint = match self.numpy {
            Some(np)
                if obj
                    .is_instance(np.datetime64.bind(self.py))
                    .unwrap_or(false) =>
            {
                "; msgpack-numpy has no form for datetime64 scalars: send \
                 value.astype('int64') or a 0-d array instead"
            }
            _ => "; convert it to a str, int, float, bytes, list, dict or numpy array",
        };
        Failure::new(format!("cannot encode {name}{hint}"))
    }

    #[inline(never)]
    fn string(&mut self, text: &Bound<'py, PyString>) -> Result<(), Failure> {
        let value = raw::str_utf8(text, self.ascii_layout).map_err(|err| {
            Failure::python(
                "cannot encode str: it is not valid UTF-8 (lone surrogates)",
                err,
            )
        })?;
        if value.len() > write::MAX_LEN {
            return Err(Failure::new("str longer than msgpack's 4 GiB limit"));
        }
        let out = self.out.buf();
        out.reserve(value.len() + 5);
        write::str_header(out, value.len());
        out.extend_from_slice(value);
        Ok(())
    }

    #[inline(never)]
    fn int(&mut self, int: &Bound<'py, PyInt>) -> Result<(), Failure> {
        if let Some(value) = raw::int_i64(int) {
            write::int(self.buf(), value);
            return Ok(());
        }
        if let Ok(value) = int.extract::<u64>() {
            write::uint(self.buf(), value);
            return Ok(());
        }
        Err(Failure::new(
            "int out of msgpack's range [-2**63, 2**64 - 1]; send it as a str",
        ))
    }

    fn bytes(&mut self, bytes: &Bound<'py, PyBytes>) -> Result<(), Failure> {
        let data = bytes.as_bytes();
        if data.len() >= BORROW_THRESHOLD && data.len() <= write::MAX_LEN {
            write::bin_header(self.buf(), data.len());
            // SAFETY: a bytes object's buffer is immutable and lives as long as the
            // object, whose reference the message keeps.
            unsafe {
                self.out.push_borrowed(
                    bytes.clone().into_any().unbind(),
                    data.as_ptr(),
                    data.len(),
                );
            }
            return Ok(());
        }
        self.raw_bin(data)
    }

    pub(super) fn raw_bin(&mut self, data: &[u8]) -> Result<(), Failure> {
        if data.len() > write::MAX_LEN {
            return Err(Failure::new("bytes longer than msgpack's 4 GiB limit"));
        }
        write::bin(self.buf(), data);
        Ok(())
    }

    fn dict(&mut self, dict: &Bound<'py, PyDict>, depth: usize) -> Result<(), Failure> {
        let len = dict.len();
        if len > write::MAX_LEN {
            return Err(Failure::new("dict larger than msgpack's 2**32 - 1 entries"));
        }
        write::map_header(self.buf(), len);

        if len > 0 {
            check_depth(depth + 1)?;
        }
        // SAFETY: the closure writes plain pairs, whose encoding runs no Python code,
        // through the borrowed references, and takes strong references to every
        // other pair before encoding it.
        let seen = unsafe {
            raw::for_each_item(dict, |key, value| {
                let (key_kind, value_kind) = (raw::exact(&key), raw::exact(&value));
                if !key_kind.is_plain() || !value_kind.is_plain() {
                    return self.entry(&key.to_owned(), &value.to_owned(), depth);
                }
                // No Python code runs before the error paths below, and a plain key's
                // repr is the builtin one: the borrowed references stay valid.
                if let Some(Err(failure)) = self.plain(key_kind) {
                    return Err(failure.in_key(&key));
                }
                match self.plain(value_kind) {
                    Some(Err(failure)) => Err(failure.at(Step::key(&key))),
                    _ => Ok(()),
                }
            })?
        };
        if seen != len {
            return Err(Failure::new("dict changed size while it was being encoded"));
        }
        Ok(())
    }

    fn entry(
        &mut self,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        depth: usize,
    ) -> Result<(), Failure> {
        self.value(key, depth + 1)
            .map_err(|failure| failure.in_key(key))?;
        self.value(value, depth + 1)
            .map_err(|failure| failure.at(Step::key(key)))
    }

    /// A dict subclass packs through its own `items()`, as the reference does.
    fn dict_subclass(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), Failure> {
        let items = obj
            .call_method0("items")
            .and_then(|items| items.try_iter()?.collect::<PyResult<Vec<_>>>())
            .map_err(|err| Failure::python("calling items() on the dict subclass failed", err))?;
        write::map_header(self.buf(), items.len());
        for item in items {
            let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item
                .extract()
                .map_err(|err| Failure::python("items() did not yield (key, value) pairs", err))?;
            self.entry(&key, &value, depth)?;
        }
        Ok(())
    }

    fn list(&mut self, list: &Bound<'py, PyList>, depth: usize) -> Result<(), Failure> {
        let len = list.len();
        self.array_header(len)?;
        for index in 0..len {
            // SAFETY: `borrowed` takes a strong reference to any item whose encoding
            // may run Python code before encoding it.
            let item = unsafe { raw::list_item(list, index) }
                .ok_or_else(|| Failure::new("list changed size while it was being encoded"))?;
            self.borrowed(item, depth + 1)
                .map_err(|failure| failure.at(Step::Index(index)))?;
        }
        if list.len() != len {
            return Err(Failure::new("list changed size while it was being encoded"));
        }
        Ok(())
    }

    fn tuple(&mut self, tuple: &Bound<'py, PyTuple>, depth: usize) -> Result<(), Failure> {
        self.array_header(tuple.len())?;
        for (index, item) in tuple.iter_borrowed().enumerate() {
            self.borrowed(item, depth + 1)
                .map_err(|failure| failure.at(Step::Index(index)))?;
        }
        Ok(())
    }

    /// List and tuple subclasses pack by iteration, as the reference does.
    fn sequence_subclass(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), Failure> {
        let items = obj
            .try_iter()
            .and_then(|iter| iter.collect::<PyResult<Vec<_>>>())
            .map_err(|err| Failure::python("iterating the sequence failed", err))?;
        self.array_header(items.len())?;
        for (index, item) in items.iter().enumerate() {
            self.value(item, depth + 1)
                .map_err(|failure| failure.at(Step::Index(index)))?;
        }
        Ok(())
    }

    fn array_header(&mut self, len: usize) -> Result<(), Failure> {
        if len > write::MAX_LEN {
            return Err(Failure::new(
                "sequence longer than msgpack's 2**32 - 1 items",
            ));
        }
        write::array_header(self.buf(), len);
        Ok(())
    }

    fn ext_type(&mut self, obj: &Bound<'py, PyAny>) -> Result<(), Failure> {
        let read = || -> PyResult<(i8, Vec<u8>)> {
            Ok((
                obj.getattr("code")?.extract()?,
                obj.getattr("data")?.extract()?,
            ))
        };
        let (code, data) = read()
            .map_err(|err| Failure::python("cannot read the ExtType's code and data", err))?;
        if data.len() > write::MAX_LEN {
            return Err(Failure::new(
                "ExtType data longer than msgpack's 4 GiB limit",
            ));
        }
        write::ext(self.buf(), code, &data);
        Ok(())
    }

    fn timestamp(&mut self, obj: &Bound<'py, PyAny>) -> Result<(), Failure> {
        let read = || -> PyResult<(i64, u32)> {
            Ok((
                obj.getattr("seconds")?.extract()?,
                obj.getattr("nanoseconds")?.extract()?,
            ))
        };
        let (seconds, nanoseconds) =
            read().map_err(|err| Failure::python("cannot read the Timestamp", err))?;
        write::timestamp(self.buf(), seconds, nanoseconds);
        Ok(())
    }

    /// `{b'complex': True, b'data': repr(value)}`, msgpack-numpy's form of a complex.
    fn complex(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), Failure> {
        check_depth(depth + 1)?;
        let text = obj
            .repr()
            .map_err(|err| Failure::python("repr() of the complex number failed", err))?;
        let out = self.buf();
        write::map_header(out, 2);
        write::bin(out, b"complex");
        write::boolean(out, true);
        write::bin(out, b"data");
        self.string(&text)
    }

    /// `{b'nd': False, b'type': dtype.str, b'data': value bytes}` for a builtin scalar.
    fn numpy_scalar_fast(
        &mut self,
        obj: &Bound<'py, PyAny>,
        scalar: &numpy::ScalarType,
        depth: usize,
    ) -> Result<(), Failure> {
        check_depth(depth + 1)?;
        // SAFETY: `scalar_type` matched `obj`'s exact type against the types whose
        // layout `Numpy::load` verified.
        let value = unsafe { raw::scalar_value(obj, scalar.itemsize) };
        let out = self.out.buf();
        out.reserve(scalar.prefix.len() + value.len());
        out.extend_from_slice(&scalar.prefix);
        out.extend_from_slice(value);
        Ok(())
    }

    /// The same map for scalars of other types (subclasses, timedelta64), read through
    /// Python.
    fn numpy_scalar_slow(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> Result<(), Failure> {
        check_depth(depth + 1)?;
        let read = || -> PyResult<(String, Vec<u8>)> {
            let typestr = obj.getattr("dtype")?.getattr("str")?.extract()?;
            let data = obj.call_method0("tobytes")?.extract()?;
            Ok((typestr, data))
        };
        let (typestr, data) =
            read().map_err(|err| Failure::python("cannot read the numpy scalar", err))?;
        let out = self.buf();
        scalar_header(out);
        write::str(out, &typestr);
        write::bin(out, b"data");
        write::bin(out, &data);
        Ok(())
    }
}

fn scalar_header(out: &mut Vec<u8>) {
    write::map_header(out, 3);
    write::bin(out, b"nd");
    write::boolean(out, false);
    write::bin(out, b"type");
}

pub fn check_depth(depth: usize) -> Result<(), Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::new(format!(
            "nesting deeper than {MAX_DEPTH} levels (the reference packer's limit)"
        )));
    }
    Ok(())
}

/// `module.QualName` of `obj`'s type, without the module for builtins.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    let class = obj.get_type();
    let qualname = class
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| String::from("object"));
    match class.module().map(|m| m.to_string()) {
        Ok(module) if module != "builtins" => format!("{module}.{qualname}"),
        _ => qualname,
    }
}
