//! Every raw-pointer access tickpub makes to numpy and CPython memory.
//!
//! numpy publishes the layout of its array object (`PyArrayObject_fields`) and of its
//! scalar objects (`PyObject_HEAD` followed by the value) in its public headers; both
//! have been stable since numpy 1.7 and are unchanged in numpy 2. tickpub checks them
//! against numpy's own answers once, when it first meets numpy (see
//! [`super::Numpy::load`]), and reads them directly afterwards, which avoids creating
//! a buffer export or a Python object per array or scalar.

use std::ffi::{c_char, c_int};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::Borrowed;

/// The leading fields of numpy's `PyArrayObject_fields`.
#[repr(C)]
struct ArrayFields {
    ob_base: ffi::PyObject,
    data: *mut c_char,
    nd: c_int,
    dimensions: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    base: *mut ffi::PyObject,
    descr: *mut ffi::PyObject,
    flags: c_int,
}

/// numpy's `NPY_ARRAY_C_CONTIGUOUS` flag.
const C_CONTIGUOUS: c_int = 0x0001;

/// Shape, strides and data of an array, borrowed from the array object.
#[derive(Debug, Clone, Copy)]
pub struct ArrayRaw<'a> {
    pub data: *const u8,
    pub shape: &'a [isize],
    pub strides: &'a [isize],
    pub descr: *mut ffi::PyObject,
    pub c_contiguous: bool,
}

/// Reads the layout fields of a numpy array.
///
/// # Safety
///
/// `array` must be an instance of `numpy.ndarray` (or a subclass), and the layout check
/// in `Numpy::load` must have passed. The returned slices borrow the array's shape and
/// strides, which numpy never reallocates while the array is alive.
pub unsafe fn array_raw<'a>(array: &'a Bound<'_, PyAny>) -> ArrayRaw<'a> {
    let fields = array.as_ptr().cast::<ArrayFields>();
    // SAFETY: the caller guarantees `array` is an ndarray, whose object starts with
    // `PyArrayObject_fields`; the GIL is held, so the fields are not being changed.
    let (data, nd, dims, strides, descr, flags) = unsafe {
        (
            (*fields).data,
            (*fields).nd,
            (*fields).dimensions,
            (*fields).strides,
            (*fields).descr,
            (*fields).flags,
        )
    };
    let nd = usize::try_from(nd).unwrap_or(0);
    let (shape, strides) = if nd == 0 {
        (&[][..], &[][..])
    } else {
        // SAFETY: numpy allocates `nd` dimensions and `nd` strides for an array of `nd`
        // dimensions; they live as long as the array, which `'a` borrows.
        unsafe {
            (
                std::slice::from_raw_parts(dims.cast_const(), nd),
                std::slice::from_raw_parts(strides.cast_const(), nd),
            )
        }
    };
    ArrayRaw {
        data: data.cast_const().cast::<u8>(),
        shape,
        strides,
        descr,
        c_contiguous: flags & C_CONTIGUOUS != 0,
    }
}

/// The bytes of a C-contiguous array's data.
///
/// # Safety
///
/// `raw` must come from [`array_raw`] on an array that is C-contiguous and holds
/// `nbytes` bytes of data, and the array must stay alive, and unmodified by other
/// threads, for `'a`.
pub unsafe fn contiguous_bytes<'a>(raw: &ArrayRaw<'a>, nbytes: usize) -> &'a [u8] {
    if nbytes == 0 {
        return &[];
    }
    // SAFETY: a C-contiguous array of `nbytes` bytes starts at `data` (the caller's
    // contract), and numpy keeps that memory alive as long as the array.
    unsafe { std::slice::from_raw_parts(raw.data, nbytes) }
}

/// Copies an array of any layout into `out` in C order.
///
/// # Safety
///
/// `raw` must come from [`array_raw`] on a live array whose elements are `itemsize`
/// bytes, and `out` must hold exactly `itemsize * product(shape)` bytes.
pub unsafe fn gather_c_order(raw: &ArrayRaw<'_>, itemsize: usize, out: &mut [u8]) {
    if out.is_empty() {
        return;
    }
    let mut written = 0;
    // SAFETY: forwarded from the caller; `gather_dim` only visits offsets numpy
    // guarantees are inside the array's memory (index < shape[d] along every axis).
    unsafe {
        gather_dim(
            raw.data,
            raw.shape,
            raw.strides,
            itemsize,
            out,
            &mut written,
        )
    };
    debug_assert_eq!(written, out.len());
}

/// # Safety
///
/// `base` plus any in-bounds combination of `shape` and `strides` must be readable
/// for `itemsize` bytes, and `out[*written..]` must have room for the elements.
unsafe fn gather_dim(
    base: *const u8,
    shape: &[isize],
    strides: &[isize],
    itemsize: usize,
    out: &mut [u8],
    written: &mut usize,
) {
    let Some((&len, rest_shape)) = shape.split_first() else {
        // SAFETY: `base` addresses one element of `itemsize` bytes (caller's contract).
        let element = unsafe { std::slice::from_raw_parts(base, itemsize) };
        out[*written..*written + itemsize].copy_from_slice(element);
        *written += itemsize;
        return;
    };
    let stride = strides[0];
    let rest_strides = &strides[1..];
    if rest_shape.is_empty() && stride == itemsize as isize {
        // The innermost axis is contiguous: copy it in one go.
        let run = len as usize * itemsize;
        // SAFETY: `len` consecutive elements of `itemsize` bytes start at `base`.
        let row = unsafe { std::slice::from_raw_parts(base, run) };
        out[*written..*written + run].copy_from_slice(row);
        *written += run;
        return;
    }
    for index in 0..len {
        // SAFETY: `index < shape[0]`, so the offset stays inside the array's memory;
        // `wrapping_offset` tolerates the negative strides of reversed views.
        unsafe {
            let element = base.wrapping_offset(index * stride);
            gather_dim(element, rest_shape, rest_strides, itemsize, out, written);
        }
    }
}

/// The value bytes of a numpy scalar of a builtin numeric type.
///
/// # Safety
///
/// `scalar`'s exact type must be one of the builtin scalar types for which `Numpy::load`
/// verified that `itemsize` value bytes follow the object header.
pub unsafe fn scalar_value<'a>(scalar: &'a Bound<'_, PyAny>, itemsize: usize) -> &'a [u8] {
    let header = std::mem::size_of::<ffi::PyObject>();
    // SAFETY: numpy's scalar objects are `PyObject_HEAD` followed by the value
    // (`arrayscalars.h`); the load-time check confirmed it for this type, and the
    // object is alive for `'a`.
    unsafe { std::slice::from_raw_parts(scalar.as_ptr().cast::<u8>().add(header), itemsize) }
}

/// Allocates an uninitialised `bytes` object of `len` bytes and lets `fill` write all
/// of it. Unlike `PyBytes::new_with`, the buffer is not zeroed first, which matters
/// for multi-megabyte messages.
pub fn bytes_filled_by<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let size = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("message too large"))?;
    // SAFETY: a null source asks CPython for an uninitialised buffer of `size` bytes;
    // the result is a new reference or null with an exception set.
    let object = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), size) };
    // SAFETY: `object` is a new reference or null, as `from_owned_ptr_or_err` expects.
    let bytes = unsafe { Bound::from_owned_ptr_or_err(py, object)? };
    // SAFETY: `bytes` was just created, so nothing else can see it; its buffer holds
    // `len` bytes (plus CPython's trailing NUL). `fill` initialises every byte before
    // the object is returned to Python.
    let buffer = unsafe {
        let data = ffi::PyBytes_AsString(bytes.as_ptr()).cast::<u8>();
        std::slice::from_raw_parts_mut(data, len)
    };
    fill(buffer);
    Ok(bytes.cast_into::<pyo3::types::PyBytes>()?)
}

/// A contiguous buffer export (`PyBUF_SIMPLE`) of an object such as a `memoryview`,
/// released on drop.
pub struct SimpleBuffer {
    view: ffi::Py_buffer,
}

impl std::fmt::Debug for SimpleBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleBuffer")
            .field("len", &self.view.len)
            .finish()
    }
}

impl SimpleBuffer {
    pub fn get(object: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut view = std::mem::MaybeUninit::<ffi::Py_buffer>::uninit();
        // SAFETY: `view` is writable storage for one Py_buffer; on success CPython
        // fills it and we release it exactly once, in `Drop`.
        let status = unsafe {
            ffi::PyObject_GetBuffer(object.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE)
        };
        if status != 0 {
            return Err(PyErr::fetch(object.py()));
        }
        // SAFETY: `PyObject_GetBuffer` returned 0, so it initialised the view.
        let view = unsafe { view.assume_init() };
        Ok(Self { view })
    }

    pub fn as_bytes(&self) -> &[u8] {
        let len = usize::try_from(self.view.len).unwrap_or(0);
        if len == 0 || self.view.buf.is_null() {
            return &[];
        }
        // SAFETY: a PyBUF_SIMPLE export is `len` contiguous bytes at `buf`, valid until
        // the export is released in `Drop`.
        unsafe { std::slice::from_raw_parts(self.view.buf.cast::<u8>(), len) }
    }
}

impl Drop for SimpleBuffer {
    fn drop(&mut self) {
        // SAFETY: the view was filled by a successful `PyObject_GetBuffer` and is
        // released only here. `SimpleBuffer` is dropped with the GIL held: it never
        // leaves the encoder, which runs under the GIL.
        unsafe { ffi::PyBuffer_Release(&mut self.view) };
    }
}

/// An object of one of the exact builtin types the encoder handles first, already
/// cast, or `Other`.
#[derive(Debug, Clone, Copy)]
pub enum Exact<'a, 'py> {
    Str(&'a Bound<'py, PyString>),
    Int(&'a Bound<'py, PyInt>),
    Float(&'a Bound<'py, PyFloat>),
    None,
    Bool(bool),
    Dict(&'a Bound<'py, PyDict>),
    List(&'a Bound<'py, PyList>),
    Tuple(&'a Bound<'py, PyTuple>),
    Bytes(&'a Bound<'py, PyBytes>),
    Other,
}

/// Classifies `obj` by comparing its type pointer with the builtin types'; cheaper
/// than a chain of checked casts, which matters for small messages.
pub fn exact<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> Exact<'a, 'py> {
    let ty = obj.get_type_ptr();
    // SAFETY: each cast below follows a comparison showing that the object's type
    // pointer equals the builtin type's, so the object is exactly of that type.
    unsafe {
        if ty == &raw mut ffi::PyUnicode_Type {
            Exact::Str(obj.cast_unchecked())
        } else if ty == &raw mut ffi::PyLong_Type {
            Exact::Int(obj.cast_unchecked())
        } else if ty == &raw mut ffi::PyFloat_Type {
            Exact::Float(obj.cast_unchecked())
        } else if ty == &raw mut ffi::PyDict_Type {
            Exact::Dict(obj.cast_unchecked())
        } else if ty == &raw mut ffi::PyList_Type {
            Exact::List(obj.cast_unchecked())
        } else if ty == &raw mut ffi::PyBool_Type {
            Exact::Bool(obj.as_ptr() == ffi::Py_True())
        } else if ty == &raw mut ffi::PyTuple_Type {
            Exact::Tuple(obj.cast_unchecked())
        } else if ty == &raw mut ffi::PyBytes_Type {
            Exact::Bytes(obj.cast_unchecked())
        } else if obj.is_none() {
            Exact::None
        } else {
            Exact::Other
        }
    }
}

impl Exact<'_, '_> {
    /// True for the types whose encoding runs no Python code (str, int, float, bool,
    /// None, bytes), which the encoder may therefore read through borrowed
    /// references.
    pub fn is_plain(self) -> bool {
        matches!(
            self,
            Self::Str(_)
                | Self::Int(_)
                | Self::Float(_)
                | Self::None
                | Self::Bool(_)
                | Self::Bytes(_)
        )
    }
}

/// Calls `visit` on each `(key, value)` of an exact `dict` through `PyDict_Next`, with
/// borrowed references, which saves two reference-count updates per object. Returns
/// how many pairs were visited, so the caller can detect a dict that changed size.
///
/// # Safety
///
/// The references are borrowed from the dict. Any Python code that runs while `visit`
/// holds them (a `__repr__`, an `items()` of a dict subclass, ...) could remove them
/// from the dict and free them, so `visit` must take strong references
/// (`Borrowed::to_owned`) before it runs Python code, and use only those afterwards.
pub unsafe fn for_each_item<'py, E>(
    dict: &Bound<'py, PyDict>,
    mut visit: impl FnMut(Borrowed<'_, 'py, PyAny>, Borrowed<'_, 'py, PyAny>) -> Result<(), E>,
) -> Result<usize, E> {
    let py = dict.py();
    let mut position: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = std::ptr::null_mut();
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    let mut visited = 0;
    loop {
        // SAFETY: `dict` is a dict and the GIL is held; PyDict_Next stays in bounds even
        // if the dict changed since the last call.
        let more = unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut position, &mut key, &mut value) };
        if more == 0 {
            return Ok(visited);
        }
        // SAFETY: PyDict_Next returned non-null references owned by the dict, alive
        // until Python code changes the dict; the caller's contract covers the rest.
        let (key, value) = unsafe { (Borrowed::from_ptr(py, key), Borrowed::from_ptr(py, value)) };
        visit(key, value)?;
        visited += 1;
    }
}

/// The item at `index` of a list, borrowed, or None when the list is shorter (it may
/// have shrunk while earlier items were encoded).
///
/// # Safety
///
/// As for [`for_each_item`]: the item belongs to the list, so the caller must take a
/// strong reference before running Python code that could remove it.
pub unsafe fn list_item<'a, 'py>(
    list: &'a Bound<'py, PyList>,
    index: usize,
) -> Option<Borrowed<'a, 'py, PyAny>> {
    if index >= list.len() {
        return None;
    }
    let index = ffi::Py_ssize_t::try_from(index).ok()?;
    // SAFETY: `list` is a list and `index` is within its current length, so
    // PyList_GetItem returns a borrowed, non-null reference and sets no error.
    unsafe { Borrowed::from_ptr_or_opt(list.py(), ffi::PyList_GetItem(list.as_ptr(), index)) }
}

/// Where CPython stores the characters of a compact ASCII `str`, if this interpreter's
/// layout matches the documented one (`PyASCIIObject`: header, length, hash, state
/// bits, then the characters). Found and verified once.
static ASCII_LAYOUT: PyOnceLock<Option<usize>> = PyOnceLock::new();

const STATE_OFFSET: usize = 32;
const LENGTH_OFFSET: usize = 16;
/// `compact` and `ascii` bits of `PyASCIIObject.state`.
const COMPACT_ASCII: u32 = 0b110_0000;
const KIND_MASK: u32 = 0b1_1100;
const KIND_1BYTE: u32 = 0b0_0100;

/// The offset of the characters in a compact ASCII str, or None when this interpreter
/// does not match the layout (tickpub then asks CPython for the UTF-8 every time).
pub fn ascii_layout(py: Python<'_>) -> Option<usize> {
    *ASCII_LAYOUT.get_or_init(py, || probe_ascii_layout(py).ok().flatten())
}

fn probe_ascii_layout(py: Python<'_>) -> PyResult<Option<usize>> {
    // `sys.getsizeof("")` is the struct size plus the terminating NUL.
    let empty_size: usize = py
        .import("sys")?
        .call_method1("getsizeof", ("",))?
        .extract()?;
    let Some(offset) = empty_size.checked_sub(1) else {
        return Ok(None);
    };
    if offset < STATE_OFFSET + 4 {
        return Ok(None);
    }
    for sample in ["", "a", "tickpub", "0123456789abcdefghijklmnopqrstuvwxyz"] {
        let text = PyString::new(py, sample);
        // The object holds `offset` bytes of struct plus the characters and a NUL, so
        // every read below is inside it.
        let ptr = text.as_ptr().cast::<u8>();
        // SAFETY: the state and length fields lie inside the struct (offset >= 36).
        let (state, length) = unsafe {
            (
                ptr.add(STATE_OFFSET).cast::<u32>().read_unaligned(),
                ptr.add(LENGTH_OFFSET).cast::<isize>().read_unaligned(),
            )
        };
        if state & COMPACT_ASCII != COMPACT_ASCII
            || state & KIND_MASK != KIND_1BYTE
            || length != sample.len() as isize
        {
            return Ok(None);
        }
        // SAFETY: `sys.getsizeof` reported a struct of `offset` bytes followed by the
        // characters, so `sample.len()` bytes at `offset` are inside the object.
        let chars = unsafe { std::slice::from_raw_parts(ptr.add(offset), sample.len()) };
        if chars != sample.as_bytes() {
            return Ok(None);
        }
    }
    for sample in ["é", "日本", "\u{1f600}"] {
        let text = PyString::new(py, sample);
        // SAFETY: the state field lies inside the struct, which every str has.
        let state = unsafe {
            text.as_ptr()
                .cast::<u8>()
                .add(STATE_OFFSET)
                .cast::<u32>()
                .read_unaligned()
        };
        if state & COMPACT_ASCII == COMPACT_ASCII {
            return Ok(None);
        }
    }
    Ok(Some(offset))
}

/// The characters of `text` when it is a compact ASCII str and the layout was verified
/// (`layout` from [`ascii_layout`]), read in place; None otherwise.
#[inline]
pub fn compact_ascii<'a>(text: &'a Bound<'_, PyString>, layout: Option<usize>) -> Option<&'a [u8]> {
    let offset = layout?;
    let ptr = text.as_ptr().cast::<u8>();
    // SAFETY: every str starts with `PyASCIIObject`, whose state bits and length
    // `probe_ascii_layout` located on this interpreter.
    let state = unsafe { ptr.add(STATE_OFFSET).cast::<u32>().read_unaligned() };
    if state & COMPACT_ASCII != COMPACT_ASCII {
        return None;
    }
    // SAFETY: as above, for the length field.
    let length = unsafe { ptr.add(LENGTH_OFFSET).cast::<isize>().read_unaligned() };
    // SAFETY: a compact ASCII str stores its `length` one-byte characters right after
    // the struct, at the verified offset; ASCII is valid UTF-8.
    Some(unsafe { std::slice::from_raw_parts(ptr.add(offset), length as usize) })
}

/// The UTF-8 bytes of `text`: read in place for compact ASCII strings when the layout
/// was verified, otherwise from `PyUnicode_AsUTF8AndSize`.
pub fn str_utf8<'a>(text: &'a Bound<'_, PyString>, layout: Option<usize>) -> PyResult<&'a [u8]> {
    match compact_ascii(text, layout) {
        Some(ascii) => Ok(ascii),
        None => text.to_str().map(str::as_bytes),
    }
}

/// The value of `int` when it fits an i64; None, with no exception set, otherwise.
#[inline]
pub fn int_i64(int: &Bound<'_, PyInt>) -> Option<i64> {
    let mut overflow: c_int = 0;
    // SAFETY: `int` is an int (or a subclass), for which PyLong_AsLongLongAndOverflow
    // reports an out-of-range value through `overflow` and raises nothing.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(int.as_ptr(), &mut overflow) };
    (overflow == 0).then_some(value)
}
