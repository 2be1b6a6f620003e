//! A msgpack reader over a borrowed buffer.
//!
//! `Reader::next` returns one token at a time: a scalar, the span of a str/bin/ext
//! payload inside the buffer, or the element count of an array or map. Every declared
//! length is checked against the bytes that remain before anything is returned, so a
//! caller that allocates by a returned count never allocates more than the input can
//! fill: an array of `n` elements needs at least `n` bytes, a map of `n` pairs `2n`.

use std::fmt;

/// Where a str, bin or ext payload sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

impl Span {
    pub fn end(self) -> usize {
        self.start + self.len
    }
}

/// One msgpack item, without the elements of a container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token {
    Nil,
    Bool(bool),
    /// Every signed integer and the unsigned ones that fit in an `i64`.
    Int(i64),
    /// An unsigned 64-bit integer above `i64::MAX`.
    UInt(u64),
    F32(f32),
    F64(f64),
    /// UTF-8 text (not yet validated).
    Str(Span),
    Bin(Span),
    /// The number of elements that follow.
    Array(usize),
    /// The number of key/value pairs that follow.
    Map(usize),
    Ext(i8, Span),
}

/// Why the buffer is not msgpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The input ends before `needed` more bytes could be read.
    Truncated { needed: usize },
    /// A container declares more elements than the remaining bytes can hold.
    TooManyItems { what: &'static str, count: usize },
    /// The byte 0xc1, which msgpack never uses.
    Reserved,
}

/// A malformed input: what is wrong and the byte offset of the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub offset: usize,
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            ReadErrorKind::Truncated { needed } => write!(
                f,
                "truncated input: the item at byte {at} needs {needed} more bytes than remain"
            ),
            ReadErrorKind::TooManyItems { what, count } => write!(
                f,
                "the {what} at byte {at} declares {count} elements, more than the \
                 remaining bytes can hold"
            ),
            ReadErrorKind::Reserved => write!(f, "reserved byte 0xc1 at byte {at}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// A cursor over a msgpack buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes of a span returned by this reader.
    pub fn bytes(&self, span: Span) -> &'a [u8] {
        &self.buf[span.start..span.end()]
    }

    /// Reads the next token; on error the position is unspecified.
    pub fn next_token(&mut self) -> Result<Token, ReadError> {
        let start = self.pos;
        let marker = self.take::<1>(start)?[0];
        let token = match marker {
            0x00..=0x7f => Token::Int(i64::from(marker)),
            0x80..=0x8f => self.container(start, "map", usize::from(marker & 0x0f))?,
            0x90..=0x9f => self.container(start, "array", usize::from(marker & 0x0f))?,
            0xa0..=0xbf => Token::Str(self.span(start, usize::from(marker & 0x1f))?),
            0xc0 => Token::Nil,
            0xc1 => return Err(self.error(start, ReadErrorKind::Reserved)),
            0xc2 => Token::Bool(false),
            0xc3 => Token::Bool(true),
            0xc4..=0xc6 => {
                let len = self.length(start, marker - 0xc4)?;
                Token::Bin(self.span(start, len)?)
            }
            0xc7..=0xc9 => {
                let len = self.length(start, marker - 0xc7)?;
                let code = self.take::<1>(start)?[0] as i8;
                Token::Ext(code, self.span(start, len)?)
            }
            0xca => Token::F32(f32::from_be_bytes(self.take(start)?)),
            0xcb => Token::F64(f64::from_be_bytes(self.take(start)?)),
            0xcc => Token::Int(i64::from(self.take::<1>(start)?[0])),
            0xcd => Token::Int(i64::from(u16::from_be_bytes(self.take(start)?))),
            0xce => Token::Int(i64::from(u32::from_be_bytes(self.take(start)?))),
            0xcf => {
                let value = u64::from_be_bytes(self.take(start)?);
                i64::try_from(value).map_or(Token::UInt(value), Token::Int)
            }
            0xd0 => Token::Int(i64::from(i8::from_be_bytes(self.take(start)?))),
            0xd1 => Token::Int(i64::from(i16::from_be_bytes(self.take(start)?))),
            0xd2 => Token::Int(i64::from(i32::from_be_bytes(self.take(start)?))),
            0xd3 => Token::Int(i64::from_be_bytes(self.take(start)?)),
            0xd4..=0xd8 => {
                let code = self.take::<1>(start)?[0] as i8;
                Token::Ext(code, self.span(start, 1 << (marker - 0xd4))?)
            }
            0xd9..=0xdb => {
                let len = self.length(start, marker - 0xd9)?;
                Token::Str(self.span(start, len)?)
            }
            0xdc | 0xdd => {
                let count = self.length(start, marker - 0xdc + 1)?;
                self.container(start, "array", count)?
            }
            0xde | 0xdf => {
                let count = self.length(start, marker - 0xde + 1)?;
                self.container(start, "map", count)?
            }
            0xe0..=0xff => Token::Int(i64::from(marker as i8)),
        };
        Ok(token)
    }

    fn error(&self, offset: usize, kind: ReadErrorKind) -> ReadError {
        ReadError { offset, kind }
    }

    fn take<const N: usize>(&mut self, start: usize) -> Result<[u8; N], ReadError> {
        let Some(bytes) = self.buf.get(self.pos..self.pos + N) else {
            let needed = N - self.remaining();
            return Err(self.error(start, ReadErrorKind::Truncated { needed }));
        };
        self.pos += N;
        Ok(bytes.try_into().expect("slice of length N"))
    }

    /// Reads a big-endian length of 1, 2 or 4 bytes (`width_log2` 0, 1 or 2).
    fn length(&mut self, start: usize, width_log2: u8) -> Result<usize, ReadError> {
        let len = match width_log2 {
            0 => u32::from(self.take::<1>(start)?[0]),
            1 => u32::from(u16::from_be_bytes(self.take(start)?)),
            _ => u32::from_be_bytes(self.take(start)?),
        };
        Ok(len as usize)
    }

    fn span(&mut self, start: usize, len: usize) -> Result<Span, ReadError> {
        if len > self.remaining() {
            let needed = len - self.remaining();
            return Err(self.error(start, ReadErrorKind::Truncated { needed }));
        }
        let span = Span {
            start: self.pos,
            len,
        };
        self.pos += len;
        Ok(span)
    }

    fn container(
        &self,
        start: usize,
        what: &'static str,
        count: usize,
    ) -> Result<Token, ReadError> {
        let per_item = if what == "map" { 2 } else { 1 };
        if count.saturating_mul(per_item) > self.remaining() {
            return Err(self.error(start, ReadErrorKind::TooManyItems { what, count }));
        }
        Ok(if what == "map" {
            Token::Map(count)
        } else {
            Token::Array(count)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(buf: &[u8]) -> Result<Vec<Token>, ReadError> {
        let mut reader = Reader::new(buf);
        let mut out = Vec::new();
        while reader.remaining() > 0 {
            out.push(reader.next_token()?);
        }
        Ok(out)
    }

    #[test]
    fn scalars() {
        let buf = [
            0x05, 0xff, 0xc0, 0xc2, 0xc3, 0xcc, 0xc8, 0xd0, 0x80, 0xcd, 0x01, 0x00,
        ];
        let expected = [
            Token::Int(5),
            Token::Int(-1),
            Token::Nil,
            Token::Bool(false),
            Token::Bool(true),
            Token::Int(200),
            Token::Int(-128),
            Token::Int(256),
        ];
        assert_eq!(tokens(&buf).unwrap(), expected);
    }

    #[test]
    fn wide_integers_and_floats() {
        let mut buf = vec![0xcf];
        buf.extend_from_slice(&u64::MAX.to_be_bytes());
        buf.push(0xd3);
        buf.extend_from_slice(&i64::MIN.to_be_bytes());
        buf.push(0xcb);
        buf.extend_from_slice(&1.5f64.to_be_bytes());
        buf.push(0xca);
        buf.extend_from_slice(&(-2.0f32).to_be_bytes());
        let expected = [
            Token::UInt(u64::MAX),
            Token::Int(i64::MIN),
            Token::F64(1.5),
            Token::F32(-2.0),
        ];
        assert_eq!(tokens(&buf).unwrap(), expected);
    }

    #[test]
    fn payload_spans() {
        let buf = [0xa2, b'h', b'i', 0xc4, 0x01, 0x07, 0xd4, 0x05, 0x09];
        let mut reader = Reader::new(&buf);
        let Token::Str(span) = reader.next_token().unwrap() else {
            panic!("expected str")
        };
        assert_eq!(reader.bytes(span), b"hi");
        let Token::Bin(span) = reader.next_token().unwrap() else {
            panic!("expected bin")
        };
        assert_eq!(reader.bytes(span), [7]);
        assert_eq!(
            reader.next_token().unwrap(),
            Token::Ext(5, Span { start: 8, len: 1 })
        );
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn containers() {
        assert_eq!(tokens(&[0x92, 0xc0, 0xc0]).unwrap()[0], Token::Array(2));
        assert_eq!(tokens(&[0x81, 0xc0, 0xc0]).unwrap()[0], Token::Map(1));
        let buf = [0xdc, 0x00, 0x01, 0xc0];
        assert_eq!(tokens(&buf).unwrap()[0], Token::Array(1));
    }

    #[test]
    fn truncation_is_reported_at_the_item() {
        let mut reader = Reader::new(&[0xc0, 0xcd, 0x01]);
        reader.next_token().unwrap();
        let err = reader.next_token().unwrap_err();
        assert_eq!(err.offset, 1);
        assert_eq!(err.kind, ReadErrorKind::Truncated { needed: 1 });
    }

    #[test]
    fn declared_lengths_past_the_end_are_refused() {
        let huge_bin = [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00];
        let err = Reader::new(&huge_bin).next_token().unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::Truncated { .. }));

        let huge_array = [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0];
        let err = Reader::new(&huge_array).next_token().unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::TooManyItems { .. }));

        // Two pairs need at least four bytes.
        let err = Reader::new(&[0x82, 0xc0, 0xc0, 0xc0])
            .next_token()
            .unwrap_err();
        assert!(matches!(
            err.kind,
            ReadErrorKind::TooManyItems { what: "map", .. }
        ));

        let huge_ext = [0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01];
        let err = Reader::new(&huge_ext).next_token().unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::Truncated { .. }));
    }

    #[test]
    fn reserved_byte() {
        let err = Reader::new(&[0xc1]).next_token().unwrap_err();
        assert_eq!(err.kind, ReadErrorKind::Reserved);
        assert!(err.to_string().contains("0xc1"));
    }

    #[test]
    fn every_prefix_of_every_marker_errors_or_reads() {
        // No input of a few bytes may panic, whatever it declares.
        for marker in 0..=255u8 {
            for tail in [&[][..], &[0xff], &[0xff, 0xff, 0xff, 0xff, 0xff]] {
                let mut buf = vec![marker];
                buf.extend_from_slice(tail);
                let _ = tokens(&buf);
            }
        }
    }
}
