//! RESP, the Redis wire protocol: building command frames and parsing replies.
//!
//! Pure Rust, no Python: `cargo test` covers it. Only RESP2 is spoken; the connection
//! never sends `HELLO 3`, so the server never answers with RESP3 types.

pub mod frame;
pub mod reply;

pub use frame::{command, publish_header, CRLF};
pub use reply::{parse, ProtocolError, Reply};
