//! An encoded message: msgpack bytes as a sequence of slices, some in a small owned
//! buffer and some borrowed straight from numpy arrays.
//!
//! The encoder writes headers and small values into `buf`; an array's data larger
//! than [`BORROW_THRESHOLD`] is recorded as a borrowed span instead of being copied,
//! together with a strong reference to the array that keeps its memory alive. The
//! connection hands the slices to one vectored write; `packb` copies them, once, into
//! the `bytes` it returns.

use std::io::IoSlice;

use pyo3::prelude::*;

/// Array data at least this large is borrowed rather than copied into the buffer.
pub const BORROW_THRESHOLD: usize = 2048;

#[derive(Debug, Clone, Copy)]
enum Span {
    /// `buf[start..end]`.
    Owned { start: usize, end: usize },
    /// `len` bytes at `ptr`, inside memory kept alive by one of `owners`.
    Borrowed { ptr: *const u8, len: usize },
}

/// The encoded form of one message.
#[derive(Debug)]
pub struct Encoded {
    buf: Vec<u8>,
    spans: Vec<Span>,
    /// Start of the part of `buf` not yet covered by a span.
    open: usize,
    len: usize,
    owners: Vec<Py<PyAny>>,
}

// SAFETY: the borrowed pointers refer to memory owned by the objects in `owners`, which
// are reference-counted and outlive the `Encoded`. Reading that memory from another
// thread while the GIL is released is sound as long as no Python code mutates the
// arrays concurrently, which the public API documents as the caller's duty (the same
// contract as any buffer consumer that releases the GIL).
unsafe impl Send for Encoded {}

// SAFETY: shared access only reads the bytes (`slices`, `copy_into`); the reasoning
// for `Send` applies unchanged.
unsafe impl Sync for Encoded {}

impl Default for Encoded {
    fn default() -> Self {
        Self::with_buffer(Vec::with_capacity(64))
    }
}

impl Encoded {
    /// A message that writes into `buf` (cleared first), so callers can reuse one.
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self {
            buf,
            spans: Vec::new(),
            open: 0,
            len: 0,
            owners: Vec::new(),
        }
    }

    /// An empty message; its buffer is allocated on the first write.
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            spans: Vec::new(),
            open: 0,
            len: 0,
            owners: Vec::new(),
        }
    }

    /// Empties the message for reuse, releasing the arrays it referenced (so call it
    /// with the GIL held) and freeing its buffer when that grew past `keep` bytes.
    pub fn reset(&mut self, keep: usize) {
        if self.spans.capacity() > 1024 {
            (self.spans, self.owners) = (Vec::new(), Vec::new());
        } else {
            self.owners.clear();
            self.spans.clear();
        }
        self.open = 0;
        self.len = 0;
        if self.buf.capacity() > keep {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }

    /// The buffer the encoder appends headers and small values to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends `len` bytes at `ptr` without copying them.
    ///
    /// # Safety
    ///
    /// `ptr..ptr + len` must be readable memory that stays valid and unmoved for as
    /// long as `owner` is alive.
    pub unsafe fn push_borrowed(&mut self, owner: Py<PyAny>, ptr: *const u8, len: usize) {
        self.close_owned();
        self.spans.push(Span::Borrowed { ptr, len });
        self.len += len;
        self.owners.push(owner);
    }

    fn close_owned(&mut self) {
        let end = self.buf.len();
        if end > self.open {
            self.spans.push(Span::Owned {
                start: self.open,
                end,
            });
            self.len += end - self.open;
            self.open = end;
        }
    }

    /// Ends encoding; call once, after the last value. A message without borrowed
    /// data keeps no spans: it is all of `buf`.
    pub fn finish(&mut self) {
        if self.spans.is_empty() {
            self.len = self.buf.len();
            self.open = self.buf.len();
        } else {
            self.close_owned();
        }
    }

    /// Total size of the msgpack bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole message, when it is one owned slice (no borrowed array data).
    pub fn as_single_slice(&self) -> Option<&[u8]> {
        self.spans.is_empty().then_some(&self.buf[..])
    }

    /// How many slices [`Encoded::slices`] yields.
    pub fn slice_count(&self) -> usize {
        if self.spans.is_empty() {
            usize::from(!self.buf.is_empty())
        } else {
            self.spans.len()
        }
    }

    /// The msgpack bytes, in order, as slices.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let whole = (self.spans.is_empty() && !self.buf.is_empty()).then_some(&self.buf[..]);
        let spans = self.spans.iter().map(move |span| match *span {
            Span::Owned { start, end } => &self.buf[start..end],
            // SAFETY: `push_borrowed`'s contract: the memory is valid while the owner,
            // held in `self.owners`, is alive, and `self` is borrowed for the slice's
            // lifetime.
            Span::Borrowed { ptr, len } => unsafe { std::slice::from_raw_parts(ptr, len) },
        });
        whole.into_iter().chain(spans)
    }

    /// Appends the slices as `IoSlice`s, for a vectored write.
    pub fn io_slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>) {
        out.extend(self.slices().map(IoSlice::new));
    }

    /// Copies the bytes into `out`, which must be exactly [`Encoded::len`] long.
    pub fn copy_into(&self, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            self.len,
            "copy_into needs a buffer of exactly len()"
        );
        let mut at = 0;
        for slice in self.slices() {
            out[at..at + slice.len()].copy_from_slice(slice);
            at += slice.len();
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len];
        self.copy_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_bytes_form_one_slice() {
        let mut message = Encoded::default();
        message.buf().extend_from_slice(b"\x81\xa1a\x01");
        message.finish();
        assert_eq!(message.len(), 4);
        assert_eq!(message.slice_count(), 1);
        assert_eq!(message.to_vec(), b"\x81\xa1a\x01");
    }

    #[test]
    fn empty_message_has_no_slices() {
        let mut message = Encoded::default();
        message.finish();
        assert!(message.is_empty());
        assert_eq!(message.slices().count(), 0);
    }
}
