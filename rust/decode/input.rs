//! The bytes being decoded, and zero-copy windows onto them for arrays.
//!
//! A `bytes` object is immutable, so it is parsed in place. Any other buffer
//! (`bytearray`, `memoryview`, ...) could change while Python code runs during the
//! decode, so its bytes are copied once for parsing; arrays still view the caller's
//! buffer itself, through a read-only memoryview.

use std::borrow::Cow;
use std::cell::OnceCell;

use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PySlice};

use crate::msgpack::read::Span;

#[derive(Debug)]
pub(crate) struct Input<'a, 'py> {
    object: &'a Bound<'py, PyAny>,
    bytes: Cow<'a, [u8]>,
    /// A read-only, one-byte-per-item memoryview of `object`, made on first use.
    view: OnceCell<Bound<'py, PyAny>>,
}

impl<'a, 'py> Input<'a, 'py> {
    /// Accepts `bytes` or any C-contiguous buffer; anything else is a `TypeError`.
    pub(crate) fn new(object: &'a Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = object.cast::<PyBytes>() {
            return Ok(Self {
                object,
                bytes: Cow::Borrowed(bytes.as_bytes()),
                view: OnceCell::new(),
            });
        }
        let view = readonly_byte_view(object)?;
        let buffer = PyBuffer::<u8>::get(&view)?;
        let bytes = Cow::Owned(buffer.to_vec(object.py())?);
        Ok(Self {
            object,
            bytes,
            view: OnceCell::from(view),
        })
    }

    /// True when the input is an immutable `bytes` object.
    pub(crate) fn is_bytes(&self) -> bool {
        matches!(self.bytes, Cow::Borrowed(_))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A read-only memoryview of the input's bytes in `span`, sharing its memory.
    pub(crate) fn window(&self, span: Span) -> PyResult<Bound<'py, PyAny>> {
        let view = match self.view.get() {
            Some(view) => view,
            None => {
                let view = readonly_byte_view(self.object)?;
                self.view.get_or_init(|| view)
            }
        };
        let slice = PySlice::new(
            self.object.py(),
            span.start as isize,
            span.end() as isize,
            1,
        );
        view.get_item(slice)
    }
}

fn readonly_byte_view<'py>(object: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let view = PyMemoryView::from(object)?;
    view.call_method1("cast", ("B",))?
        .call_method0("toreadonly")
}
