//! Parsing RESP2 replies from a byte buffer that may hold a partial reply.

use std::fmt;

/// One reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`: the server's error text.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc` or the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2 ...` or the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// The bytes are not RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid reply from the server: {}", self.0)
    }
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 32;

/// Parses one reply from the start of `buf`.
///
/// Returns the reply and the number of bytes it took, or `None` when `buf` holds only
/// the start of a reply and more bytes must be read.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

type Parsed = Result<Option<(Reply, usize)>, ProtocolError>;

fn parse_at(buf: &[u8], at: usize, depth: usize) -> Parsed {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deeply".into()));
    }
    let Some((line, next)) = line_at(buf, at)? else {
        return Ok(None);
    };
    let Some((&marker, body)) = line.split_first() else {
        return Err(ProtocolError("empty line".into()));
    };

    match marker {
        b'+' => Ok(Some((Reply::Status(text(body)), next))),
        b'-' => Ok(Some((Reply::Error(text(body)), next))),
        b':' => Ok(Some((Reply::Integer(integer(body)?), next))),
        b'$' => bulk(buf, next, integer(body)?),
        b'*' => array(buf, next, integer(body)?, depth),
        other => Err(ProtocolError(format!(
            "unexpected type byte {:?}",
            char::from(other)
        ))),
    }
}

fn bulk(buf: &[u8], start: usize, len: i64) -> Parsed {
    if len == -1 {
        return Ok(Some((Reply::Bulk(None), start)));
    }
    let len = usize::try_from(len).map_err(|_| ProtocolError(format!("bulk length {len}")))?;
    let end = start + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError("bulk string not followed by CRLF".into()));
    }
    Ok(Some((Reply::Bulk(Some(buf[start..end].to_vec())), end + 2)))
}

fn array(buf: &[u8], start: usize, count: i64, depth: usize) -> Parsed {
    if count == -1 {
        return Ok(Some((Reply::Array(None), start)));
    }
    let count =
        usize::try_from(count).map_err(|_| ProtocolError(format!("array length {count}")))?;
    let mut items = Vec::with_capacity(count.min(1024));
    let mut at = start;
    for _ in 0..count {
        let Some((item, next)) = parse_at(buf, at, depth + 1)? else {
            return Ok(None);
        };
        items.push(item);
        at = next;
    }
    Ok(Some((Reply::Array(Some(items)), at)))
}

/// The line starting at `at` without its CRLF, and the offset after the CRLF.
fn line_at(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[at.min(buf.len())..];
    match rest.iter().position(|&b| b == b'\n') {
        None => Ok(None),
        Some(0) => Err(ProtocolError("line without CR".into())),
        Some(nl) if rest[nl - 1] != b'\r' => Err(ProtocolError("line without CR".into())),
        Some(nl) => Ok(Some((&rest[..nl - 1], at + nl + 1))),
    }
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn integer(body: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError(format!("{:?} is not an integer", text(body))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Reply {
        let (reply, used) = parse(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        reply
    }

    #[test]
    fn simple_types() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Status("OK".into()));
        assert_eq!(whole(b"-ERR no\r\n"), Reply::Error("ERR no".into()));
        assert_eq!(whole(b":-12\r\n"), Reply::Integer(-12));
        assert_eq!(whole(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(whole(b"*-1\r\n"), Reply::Array(None));
        assert_eq!(whole(b"$0\r\n\r\n"), Reply::Bulk(Some(vec![])));
    }

    #[test]
    fn bulk_strings_may_contain_crlf() {
        assert_eq!(
            whole(b"$4\r\na\r\nb\r\n"),
            Reply::Bulk(Some(b"a\r\nb".to_vec()))
        );
    }

    #[test]
    fn config_get_reply() {
        let reply = whole(b"*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n");
        let expected = Reply::Array(Some(vec![
            Reply::Bulk(Some(b"proto-max-bulk-len".to_vec())),
            Reply::Bulk(Some(b"536870912".to_vec())),
        ]));
        assert_eq!(reply, expected);
    }

    #[test]
    fn every_prefix_of_a_reply_asks_for_more() {
        let full = b"*3\r\n:1\r\n$5\r\nhello\r\n*1\r\n+x\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "prefix of {cut} bytes");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn pipelined_replies_parse_one_at_a_time() {
        let buf = b":1\r\n:2\r\n";
        let (first, used) = parse(buf).unwrap().unwrap();
        assert_eq!(first, Reply::Integer(1));
        assert_eq!(whole(&buf[used..]), Reply::Integer(2));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(parse(b"?what\r\n").is_err());
        assert!(parse(b":12a\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
        assert!(parse(b"$-5\r\n").is_err());
        assert!(parse(b"+OK\n").is_err());
        assert!(parse(b"\r\n").is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
