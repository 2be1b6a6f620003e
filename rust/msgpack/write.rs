//! Msgpack headers and scalars, each in the smallest form the format allows.
//!
//! The choices match the reference packer byte for byte: non-negative integers use the
//! unsigned families, negative ones the signed, floats are always 64-bit, strings use
//! `str8` (the reference packs with `use_bin_type=True`), bytes use the `bin` family.

/// The largest length a msgpack header can carry (`2**32 - 1`).
pub const MAX_LEN: usize = u32::MAX as usize;

pub fn nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

pub fn boolean(out: &mut Vec<u8>, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// Writes a signed integer; values that are not negative use the unsigned families.
pub fn int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        uint(out, value as u64);
    } else if value >= -32 {
        out.push(value as i8 as u8);
    } else if value >= i64::from(i8::MIN) {
        out.push(0xd0);
        out.push(value as i8 as u8);
    } else if value >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(value as i16).to_be_bytes());
    } else if value >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn uint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else if value <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xcc, value as u8]);
    } else if value <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn float(out: &mut Vec<u8>, value: f64) {
    let mut bytes = [0xcb; 9];
    bytes[1..].copy_from_slice(&value.to_bits().to_be_bytes());
    out.extend_from_slice(&bytes);
}

/// Writes a length with the one-byte, two-byte or four-byte marker of its family.
fn sized(out: &mut Vec<u8>, len: usize, markers: [u8; 3]) {
    debug_assert!(len <= MAX_LEN, "callers check lengths against MAX_LEN");
    if let Ok(small) = u8::try_from(len) {
        out.extend_from_slice(&[markers[0], small]);
    } else if let Ok(medium) = u16::try_from(len) {
        out.push(markers[1]);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// The header of a UTF-8 string of `len` bytes.
pub fn str_header(out: &mut Vec<u8>, len: usize) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else {
        sized(out, len, [0xd9, 0xda, 0xdb]);
    }
}

/// A string given as its UTF-8 bytes.
pub fn str(out: &mut Vec<u8>, value: impl AsRef<[u8]>) {
    let value = value.as_ref();
    out.reserve(value.len() + 5);
    str_header(out, value.len());
    out.extend_from_slice(value);
}

/// The header of a binary blob of `len` bytes.
pub fn bin_header(out: &mut Vec<u8>, len: usize) {
    sized(out, len, [0xc4, 0xc5, 0xc6]);
}

pub fn bin(out: &mut Vec<u8>, value: &[u8]) {
    bin_header(out, value.len());
    out.extend_from_slice(value);
}

/// The header of an array of `len` elements.
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if let Ok(medium) = u16::try_from(len) {
        out.push(0xdc);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// The header of a map of `len` key/value pairs.
pub fn map_header(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if let Ok(medium) = u16::try_from(len) {
        out.push(0xde);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// An extension value: the fixext forms for 1, 2, 4, 8 and 16 bytes, else ext8/16/32.
pub fn ext(out: &mut Vec<u8>, code: i8, data: &[u8]) {
    let fixed = match data.len() {
        1 => Some(0xd4),
        2 => Some(0xd5),
        4 => Some(0xd6),
        8 => Some(0xd7),
        16 => Some(0xd8),
        _ => None,
    };
    match fixed {
        Some(marker) => out.push(marker),
        None => sized(out, data.len(), [0xc7, 0xc8, 0xc9]),
    }
    out.push(code as u8);
    out.extend_from_slice(data);
}

/// A msgpack timestamp (extension -1) in the smallest of its three forms.
pub fn timestamp(out: &mut Vec<u8>, seconds: i64, nanoseconds: u32) {
    if seconds >> 34 == 0 {
        let packed = (u64::from(nanoseconds) << 34) | seconds as u64;
        if packed >> 32 == 0 {
            ext(out, -1, &(packed as u32).to_be_bytes());
        } else {
            ext(out, -1, &packed.to_be_bytes());
        }
    } else {
        let mut data = [0u8; 12];
        data[..4].copy_from_slice(&nanoseconds.to_be_bytes());
        data[4..].copy_from_slice(&seconds.to_be_bytes());
        ext(out, -1, &data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn integers_use_the_smallest_family() {
        assert_eq!(bytes(|o| int(o, 0)), [0x00]);
        assert_eq!(bytes(|o| int(o, 127)), [0x7f]);
        assert_eq!(bytes(|o| int(o, 128)), [0xcc, 0x80]);
        assert_eq!(bytes(|o| int(o, 256)), [0xcd, 0x01, 0x00]);
        assert_eq!(bytes(|o| int(o, 65_536)), [0xce, 0, 1, 0, 0]);
        assert_eq!(bytes(|o| uint(o, 1 << 32))[0], 0xcf);
        assert_eq!(bytes(|o| int(o, -1)), [0xff]);
        assert_eq!(bytes(|o| int(o, -32)), [0xe0]);
        assert_eq!(bytes(|o| int(o, -33)), [0xd0, 0xdf]);
        assert_eq!(bytes(|o| int(o, -129)), [0xd1, 0xff, 0x7f]);
        assert_eq!(bytes(|o| int(o, -32_769))[0], 0xd2);
        assert_eq!(bytes(|o| int(o, i64::MIN))[0], 0xd3);
    }

    #[test]
    fn strings_switch_family_at_32_256_and_65536() {
        assert_eq!(bytes(|o| str_header(o, 31)), [0xbf]);
        assert_eq!(bytes(|o| str_header(o, 32)), [0xd9, 32]);
        assert_eq!(bytes(|o| str_header(o, 256)), [0xda, 1, 0]);
        assert_eq!(bytes(|o| str_header(o, 65_536)), [0xdb, 0, 1, 0, 0]);
        assert_eq!(bytes(|o| bin_header(o, 0)), [0xc4, 0]);
        assert_eq!(bytes(|o| bin_header(o, 300)), [0xc5, 1, 44]);
    }

    #[test]
    fn containers_switch_family_at_16_and_65536() {
        assert_eq!(bytes(|o| array_header(o, 15)), [0x9f]);
        assert_eq!(bytes(|o| array_header(o, 16)), [0xdc, 0, 16]);
        assert_eq!(bytes(|o| map_header(o, 15)), [0x8f]);
        assert_eq!(bytes(|o| map_header(o, 70_000)), [0xdf, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn floats_are_big_endian_doubles() {
        assert_eq!(
            bytes(|o| float(o, 1.5)),
            [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn timestamps_pick_32_64_or_96_bits() {
        assert_eq!(bytes(|o| timestamp(o, 1, 0)), [0xd6, 0xff, 0, 0, 0, 1]);
        assert_eq!(bytes(|o| timestamp(o, 1, 1))[0], 0xd7);
        assert_eq!(bytes(|o| timestamp(o, -1, 0))[..3], [0xc7, 12, 0xff]);
    }
}
