//! Python objects to msgpack-numpy bytes.

pub mod message;
