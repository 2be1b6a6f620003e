//! tickpub's native core: a msgpack-numpy codec and a Redis connection.
//!
//! The crate is layered so that the wire formats can be tested without Python:
//! `msgpack` and `resp` are pure Rust; `numpy` holds every raw-pointer access to
//! array and scalar memory; `encode` and `decode` walk Python objects; `net` is the
//! socket and TLS layer; `connection` is the `Connection` class. This file only
//! registers the module.

pub mod connection;
pub mod decode;
pub mod encode;
pub mod errors;
pub mod msgpack;
pub mod net;
pub mod numpy;
pub mod resp;

use pyo3::prelude::*;

/// The `tickpub._native` extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(module)?;
    module.add_function(wrap_pyfunction!(encode::packb, module)?)?;
    decode::register(module)?;
    connection::register(module)?;
    Ok(())
}
