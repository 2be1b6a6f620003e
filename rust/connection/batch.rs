//! Publish frames laid out for one vectored write.
//!
//! Headers, small payload pieces and line endings are copied into one staging buffer;
//! payload pieces of [`COPY_LIMIT`] bytes or more (array data) are referenced where
//! they are. A single small message thus becomes one contiguous write, and a large
//! array goes from its numpy buffer to the socket without a copy.

use std::io::IoSlice;

use crate::resp::{publish_header, CRLF};

/// Payload pieces shorter than this are copied into the staging buffer.
pub const COPY_LIMIT: usize = 2048;

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Staged { start: usize, end: usize },
    Borrowed(&'a [u8]),
}

/// Frames being assembled; [`Batch::io_slices`] gives them to a vectored write.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    staging: Vec<u8>,
    segments: Vec<Segment<'a>>,
    /// Start of the staged bytes not yet covered by a segment.
    open: usize,
}

impl<'a> Batch<'a> {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            staging: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Adds `name channel payload`, where `payload` is `len` bytes in `pieces`.
    pub fn push_frame(
        &mut self,
        name: &[u8],
        channel: &[u8],
        len: usize,
        pieces: impl Iterator<Item = &'a [u8]>,
    ) {
        publish_header(&mut self.staging, name, channel, len);
        for piece in pieces {
            if piece.len() < COPY_LIMIT {
                self.staging.extend_from_slice(piece);
            } else {
                self.close_staged();
                self.segments.push(Segment::Borrowed(piece));
            }
        }
        self.staging.extend_from_slice(CRLF);
    }

    fn close_staged(&mut self) {
        let end = self.staging.len();
        if end > self.open {
            self.segments.push(Segment::Staged {
                start: self.open,
                end,
            });
            self.open = end;
        }
    }

    /// The frames' bytes in order. Ends the batch: push nothing after this.
    pub fn io_slices(&mut self) -> Vec<IoSlice<'_>> {
        self.close_staged();
        let staging = &self.staging;
        self.segments
            .iter()
            .map(|segment| match *segment {
                Segment::Staged { start, end } => IoSlice::new(&staging[start..end]),
                Segment::Borrowed(bytes) => IoSlice::new(bytes),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::command;

    fn joined(batch: &mut Batch<'_>) -> (Vec<u8>, usize) {
        let slices = batch.io_slices();
        let count = slices.len();
        (
            slices.iter().flat_map(|s| s.iter().copied()).collect(),
            count,
        )
    }

    #[test]
    fn small_frames_are_one_slice() {
        let (a, b) = (b"\x81\xa1a\x01".as_slice(), b"\x90".as_slice());
        let mut batch = Batch::default();
        batch.push_frame(b"PUBLISH", b"ch", a.len(), [a].into_iter());
        batch.push_frame(b"PUBLISH", b"ch", b.len(), [&b[..0], b].into_iter());
        let (bytes, count) = joined(&mut batch);

        let mut expected = Vec::new();
        command(&mut expected, &[b"PUBLISH", b"ch", a]);
        command(&mut expected, &[b"PUBLISH", b"ch", b]);
        assert_eq!(bytes, expected);
        assert_eq!(count, 1);
    }

    #[test]
    fn large_pieces_are_borrowed_not_copied() {
        let head = b"\x81\xa5frame".as_slice();
        let data = vec![7u8; COPY_LIMIT * 3];
        let mut batch = Batch::default();
        let len = head.len() + data.len();
        batch.push_frame(b"SPUBLISH", b"c", len, [head, data.as_slice()].into_iter());
        let slices = batch.io_slices();
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[1].as_ptr(), data.as_ptr());
        let bytes: Vec<u8> = slices.iter().flat_map(|s| s.iter().copied()).collect();

        let mut payload = head.to_vec();
        payload.extend_from_slice(&data);
        let mut expected = Vec::new();
        command(&mut expected, &[b"SPUBLISH", b"c", &payload]);
        assert_eq!(bytes, expected);
    }
}
