//! msgpack-numpy's form of an array:
//! `{b'nd': True, b'type': ..., b'kind': ..., b'shape': [...], b'data': <bin>}`.
//!
//! `type` is `dtype.str`, or `dtype.descr` with kind `b'V'` for structured and void
//! dtypes; the data is the array's bytes in C order and in the array's own byte order.
//! A C-contiguous array's data is borrowed, not copied; any other layout is gathered
//! into C order once.
//!
//! Two intended differences from the reference: arrays whose dtype holds Python
//! objects raise instead of being pickled, and datetime64/timedelta64 arrays (which
//! the reference cannot pack when they are C-contiguous) are packed from their raw
//! bytes, which is how the reference packs their non-contiguous forms.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

use super::message::BORROW_THRESHOLD;
use super::value::{check_depth, Encoder};
use super::Failure;
use crate::msgpack::write;
use crate::numpy::{raw, Numpy};

pub fn array<'py>(
    encoder: &mut Encoder<'_, 'py>,
    np: &Numpy,
    obj: &Bound<'py, PyAny>,
    depth: usize,
) -> Result<(), Failure> {
    let py = obj.py();
    // SAFETY: the caller checked that `obj` is an ndarray, and `Numpy` exists only
    // after its layout check passed.
    let raw = unsafe { raw::array_raw(obj) };
    // SAFETY: `descr` is the array's dtype, a live object the array holds a reference
    // to; `from_borrowed_ptr` takes a new reference of its own.
    let dtype = unsafe { Bound::from_borrowed_ptr(py, raw.descr) };
    let info = np.dtype_info(&dtype, |descr| pack_descr(py, descr))?;

    if info.has_object {
        return Err(Failure::new(format!(
            "cannot encode an array of dtype {}: its elements are Python objects, which \
             msgpack-numpy would pickle and tickpub refuses to; convert it to a numeric, \
             string or structured dtype without object fields",
            info.name
        )));
    }
    let deepest = if raw.shape.is_empty() {
        depth + 1
    } else {
        depth + 2
    };
    check_depth(deepest.max(depth + 1 + info.type_depth))?;

    let mut elements: usize = 1;
    for &dim in raw.shape {
        elements = elements.saturating_mul(dim.max(0) as usize);
    }
    let nbytes = elements.saturating_mul(info.itemsize);
    if nbytes > write::MAX_LEN {
        return Err(Failure::new(format!(
            "array of {nbytes} bytes exceeds msgpack's 4 GiB limit for one value; \
             send it in slices"
        )));
    }

    let out = encoder.out.buf();
    write::map_header(out, 5);
    write::bin(out, b"nd");
    write::boolean(out, true);
    write::bin(out, b"type");
    out.extend_from_slice(&info.type_field);
    write::bin(out, b"kind");
    write::bin(out, if info.is_void { b"V" } else { b"" });
    write::bin(out, b"shape");
    write::array_header(out, raw.shape.len());
    for &dim in raw.shape {
        write::int(out, dim as i64);
    }
    write::bin(out, b"data");
    if !obj.get_type().is(np.ndarray.bind(py)) {
        if let Some(data) = overridden_data(np, obj, raw.c_contiguous)? {
            return encoder
                .value(&data, depth + 1)
                .map_err(|failure| failure.in_array_data());
        }
    }
    let out = encoder.out.buf();
    write::bin_header(out, nbytes);

    if !raw.c_contiguous {
        let start = out.len();
        out.resize(start + nbytes, 0);
        // SAFETY: `raw` describes the live array `obj`, whose elements are `itemsize`
        // bytes, and the destination holds exactly `nbytes` bytes.
        unsafe { raw::gather_c_order(&raw, info.itemsize, &mut out[start..]) };
        return Ok(());
    }
    // SAFETY: the array is C-contiguous and holds `nbytes` bytes; `obj` outlives this
    // borrow.
    let data = unsafe { raw::contiguous_bytes(&raw, nbytes) };
    if nbytes < BORROW_THRESHOLD {
        out.extend_from_slice(data);
    } else {
        // SAFETY: the data belongs to `obj` (or to an object `obj` keeps alive), and the
        // message keeps a reference to `obj` for as long as it holds the pointer.
        unsafe {
            encoder
                .out
                .push_borrowed(obj.clone().unbind(), data.as_ptr(), data.len());
        }
    }
    Ok(())
}

/// The data of an ndarray subclass that overrides what the reference reads:
/// `obj.data` when C-contiguous (`numpy.ma.MaskedArray` returns the underlying
/// array, which the reference packs as a nested array), else `obj.tobytes()`
/// (which a masked array fills). None when the subclass reads like a plain array.
fn overridden_data<'py>(
    np: &Numpy,
    obj: &Bound<'py, PyAny>,
    c_contiguous: bool,
) -> Result<Option<Bound<'py, PyAny>>, Failure> {
    let read = || -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = obj.py();
        if c_contiguous {
            let data = obj.getattr(intern!(py, "data"))?;
            return Ok((!data.is_instance_of::<PyMemoryView>()).then_some(data));
        }
        let name = intern!(py, "tobytes");
        let own = obj.get_type().getattr(name)?;
        if own.is(&np.ndarray.bind(py).getattr(name)?) {
            return Ok(None);
        }
        obj.call_method0(name).map(Some)
    };
    read().map_err(|err| Failure::python("reading the array subclass's data failed", err))
}

/// Packs a structured dtype's `descr` (lists of `(name, type[, shape])` tuples).
fn pack_descr(py: Python<'_>, descr: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut message = super::Encoded::default();
    Encoder::new(py, &mut message)
        .value(descr, 0)
        .map_err(|failure| failure.into_error(py).into_pyerr(py))?;
    message.finish();
    Ok(message.to_vec())
}
