//! The transport: where to connect ([`url`]), the socket itself ([`stream`]) and the
//! TLS client configuration ([`tls`]). No Python here.

pub mod stream;
pub mod tls;
pub mod url;

pub use stream::Stream;
pub use url::{Address, CertReqs, Config, ConfigError, OptionValue};
