//! The transport: where to connect ([`url`]), the socket itself ([`stream`]), the
//! TLS client configuration ([`tls`]) and waiting for replies ([`poll`]). No Python
//! here.

pub mod poll;
pub mod stream;
pub mod tls;
pub mod url;

pub use stream::Stream;
pub use url::{Address, CertReqs, Config, ConfigError, OptionValue};
