//! Command frames: `*<n>\r\n` then each argument as `$<len>\r\n<bytes>\r\n`.
//!
//! A publish frame is built in three parts so the payload never has to be copied:
//! the header (command, channel, payload length) from [`publish_header`], the payload
//! slices as they are, and [`CRLF`].

/// The line ending that closes every RESP element.
pub const CRLF: &[u8] = b"\r\n";

/// Appends `<marker><len>\r\n`, formatting the number without allocating.
fn push_len(out: &mut Vec<u8>, marker: u8, len: usize) {
    let mut line = [0u8; 23];
    let mut at = line.len() - 2;
    line[at..].copy_from_slice(CRLF);
    let mut rest = len;
    loop {
        at -= 1;
        line[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    at -= 1;
    line[at] = marker;
    out.extend_from_slice(&line[at..]);
}

fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    push_len(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(CRLF);
}

/// Appends a whole command (`args[0]` is the command name) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    push_len(out, b'*', args.len());
    for arg in args {
        push_bulk(out, arg);
    }
}

/// Appends the start of `<name> <channel> <payload>` up to the payload's bytes.
///
/// The caller writes `payload_len` bytes of payload and then [`CRLF`].
pub fn publish_header(out: &mut Vec<u8>, name: &[u8], channel: &[u8], payload_len: usize) {
    out.extend_from_slice(b"*3\r\n");
    push_bulk(out, name);
    push_bulk(out, channel);
    push_len(out, b'$', payload_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_frames_each_argument_as_bulk_string() {
        let mut out = Vec::new();
        command(&mut out, &[b"AUTH", b"user", b"p\r\nw"]);
        assert_eq!(out, b"*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$4\r\np\r\nw\r\n");
    }

    #[test]
    fn publish_header_plus_payload_and_crlf_is_a_full_command() {
        let payload = b"\x81\xa1a\x01";
        let mut frame = Vec::new();
        publish_header(&mut frame, b"PUBLISH", b"ticks", payload.len());
        frame.extend_from_slice(payload);
        frame.extend_from_slice(CRLF);

        let mut expected = Vec::new();
        command(&mut expected, &[b"PUBLISH", b"ticks", payload]);
        assert_eq!(frame, expected);
        assert!(frame.starts_with(b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nticks\r\n$4\r\n"));
    }

    #[test]
    fn lengths_are_written_in_decimal() {
        for len in [0, 7, 10, 99, 100, 65_535, 1 << 32, usize::MAX] {
            let mut out = Vec::new();
            push_len(&mut out, b'$', len);
            assert_eq!(out, format!("${len}\r\n").into_bytes());
        }
    }

    #[test]
    fn empty_and_binary_arguments_keep_their_length() {
        let mut out = Vec::new();
        publish_header(&mut out, b"SPUBLISH", b"", 0);
        out.extend_from_slice(CRLF);
        assert_eq!(out, b"*3\r\n$8\r\nSPUBLISH\r\n$0\r\n\r\n$0\r\n\r\n");
    }
}
