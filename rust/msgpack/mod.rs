//! The msgpack wire format, with no Python in it.
//!
//! `write` emits headers and scalars in the smallest form msgpack allows, exactly as
//! the reference packer chooses them; `read` walks a buffer with every length checked
//! against the bytes that remain.

pub mod read;
pub mod write;
