//! Connection settings, read from a URL the way redis-py's `from_url` reads it, then
//! overridden by keyword options.
//!
//! `redis://[[user]:password@]host[:port][/db][?option=value...]`, `rediss://...` for
//! TLS and `unix://[[user]:password@]/path/to/socket[?db=N]`. The user and password are
//! percent-decoded. The database comes from `?db=` when given, else from the path.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// Whether the server's certificate is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertReqs {
    Required,
    None,
}

/// TLS settings of a `rediss://` connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CAs to trust; the Mozilla roots when `None`.
    pub ca_certs: Option<PathBuf>,
    /// PEM file of the client certificate chain.
    pub certfile: Option<PathBuf>,
    /// PEM file of the client key; `certfile` when `None`.
    pub keyfile: Option<PathBuf>,
    pub cert_reqs: CertReqs,
}

/// Everything needed to open and set up a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub address: Address,
    pub tls: Option<TlsOptions>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub client_name: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub socket_timeout: Option<Duration>,
    /// How many times a call on a lost connection tries to connect before giving up.
    pub retry_attempts: u32,
    /// Pause before the second attempt; it doubles before each further one.
    pub retry_backoff: Duration,
    /// How long a call polls the socket for the reply before it sleeps in the kernel.
    pub busy_poll: Duration,
}

/// The default [`Config::busy_poll`]: a loopback round trip takes a few tens of
/// microseconds, while waking a thread that slept for the reply can take longer.
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(100);

/// The longest [`Config::busy_poll`] accepted: spinning longer burns a core for
/// replies that a sleeping wait receives just as soon.
pub const MAX_BUSY_POLL: Duration = Duration::from_millis(10);

/// The URL used when none is given and `REDIS_URL` is unset.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// The options a URL query or a keyword argument may set.
pub const OPTION_NAMES: &[&str] = &[
    "username",
    "password",
    "db",
    "client_name",
    "socket_connect_timeout",
    "socket_timeout",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "retry_attempts",
    "retry_backoff",
    "busy_poll",
];

/// The URL or an option is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Invalid(String),
    /// Options tickpub does not know, by name.
    Unknown(Vec<String>),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) => f.write_str(message),
            Self::Unknown(names) => write!(
                f,
                "unknown option(s) {}; the options are {}",
                names.join(", "),
                OPTION_NAMES.join(", ")
            ),
        }
    }
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// An option's value, from a URL query (always text) or a keyword argument.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Text(String),
    Int(i64),
    Float(f64),
}

impl OptionValue {
    fn text(self, name: &str) -> Result<String, ConfigError> {
        match self {
            Self::Text(text) => Ok(text),
            _ => Err(invalid(format!("{name} must be a string"))),
        }
    }

    fn int(self, name: &str) -> Result<i64, ConfigError> {
        match self {
            Self::Int(value) => Ok(value),
            Self::Text(text) => text
                .trim()
                .parse()
                .map_err(|_| invalid(format!("{name} must be an integer, got {text:?}"))),
            Self::Float(_) => Err(invalid(format!("{name} must be an integer"))),
        }
    }

    fn seconds(self, name: &str) -> Result<Duration, ConfigError> {
        self.seconds_or_zero(name)?
            .filter(|d| !d.is_zero())
            .ok_or_else(|| invalid(format!("{name} must be a positive number of seconds")))
    }

    /// A duration of zero or more seconds; `None` for a negative or non-finite one.
    fn seconds_or_zero(self, name: &str) -> Result<Option<Duration>, ConfigError> {
        let value = match self {
            Self::Int(value) => value as f64,
            Self::Float(value) => value,
            Self::Text(text) => text
                .trim()
                .parse()
                .map_err(|_| invalid(format!("{name} must be a number, got {text:?}")))?,
        };
        Ok(Duration::try_from_secs_f64(value).ok())
    }
}

impl Config {
    /// Parses a URL; the options not in it keep their defaults.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(scheme_message()))?;
        let scheme = scheme.to_ascii_lowercase();
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let rest = rest.split_once('#').map_or(rest, |(rest, _)| rest);
        let (netloc, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match netloc.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, netloc),
        };

        let mut config = Self::base(match scheme.as_str() {
            "redis" | "rediss" => tcp_address(hostport)?,
            "unix" => {
                if path.is_empty() {
                    return Err(invalid("a unix:// URL needs a socket path"));
                }
                Address::Unix(PathBuf::from(percent_decode(path)))
            }
            _ => return Err(invalid(scheme_message())),
        });
        if scheme == "rediss" {
            config.tls = Some(TlsOptions::default());
        }

        if let Some(userinfo) = userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            config.username = Some(percent_decode(user)).filter(|u| !u.is_empty());
            config.password = password.map(percent_decode).filter(|p| !p.is_empty());
        }
        if matches!(config.address, Address::Tcp { .. }) {
            let db = percent_decode(&path.replace('/', ""));
            if !db.is_empty() {
                config.db = OptionValue::Text(db).int("the database in the URL path")?;
            }
        }

        let mut unknown = Vec::new();
        for (name, value) in query.map(parse_query).unwrap_or_default() {
            if OPTION_NAMES.contains(&name.as_str()) {
                config.set(&name, OptionValue::Text(value))?;
            } else {
                unknown.push(name);
            }
        }
        if !unknown.is_empty() {
            return Err(ConfigError::Unknown(unknown));
        }
        Ok(config)
    }

    fn base(address: Address) -> Self {
        Self {
            address,
            tls: None,
            username: None,
            password: None,
            db: 0,
            client_name: None,
            connect_timeout: Some(Duration::from_secs(5)),
            socket_timeout: None,
            retry_attempts: 3,
            retry_backoff: Duration::from_millis(50),
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }

    /// Sets one option; `name` must be one of [`OPTION_NAMES`].
    pub fn set(&mut self, name: &str, value: OptionValue) -> Result<(), ConfigError> {
        match name {
            "username" => self.username = Some(value.text(name)?),
            "password" => self.password = Some(value.text(name)?),
            "client_name" => self.client_name = Some(value.text(name)?),
            "db" => {
                self.db = value.int(name)?;
                if self.db < 0 {
                    return Err(invalid("db must not be negative"));
                }
            }
            "socket_connect_timeout" => self.connect_timeout = Some(value.seconds(name)?),
            "socket_timeout" => self.socket_timeout = Some(value.seconds(name)?),
            "retry_attempts" => {
                let attempts = value.int(name)?;
                self.retry_attempts = u32::try_from(attempts)
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| invalid("retry_attempts must be at least 1"))?;
            }
            "retry_backoff" => self.retry_backoff = value.seconds(name)?,
            "busy_poll" => {
                self.busy_poll = value
                    .seconds_or_zero(name)?
                    .filter(|d| *d <= MAX_BUSY_POLL)
                    .ok_or_else(|| {
                        invalid(format!(
                            "busy_poll must be from 0 to {} seconds",
                            MAX_BUSY_POLL.as_secs_f64()
                        ))
                    })?;
            }
            "ssl_ca_certs" => self.tls_mut(name)?.ca_certs = Some(value.text(name)?.into()),
            "ssl_certfile" => self.tls_mut(name)?.certfile = Some(value.text(name)?.into()),
            "ssl_keyfile" => self.tls_mut(name)?.keyfile = Some(value.text(name)?.into()),
            "ssl_cert_reqs" => {
                let reqs = match value.text(name)?.to_ascii_lowercase().as_str() {
                    "required" => CertReqs::Required,
                    "none" => CertReqs::None,
                    other => {
                        return Err(invalid(format!(
                            "ssl_cert_reqs must be 'required' or 'none', got {other:?}"
                        )))
                    }
                };
                self.tls_mut(name)?.cert_reqs = reqs;
            }
            _ => return Err(ConfigError::Unknown(vec![name.to_owned()])),
        }
        Ok(())
    }

    fn tls_mut(&mut self, name: &str) -> Result<&mut TlsOptions, ConfigError> {
        self.tls.as_mut().ok_or_else(|| {
            invalid(format!(
                "{name} applies to TLS connections only; use a rediss:// URL"
            ))
        })
    }

    /// The URL with the password replaced by `***`, for reprs, logs and errors.
    pub fn redacted_url(&self) -> String {
        let scheme = match (&self.address, &self.tls) {
            (Address::Unix(_), _) => "unix",
            (_, Some(_)) => "rediss",
            (_, None) => "redis",
        };
        let userinfo = match (&self.username, &self.password) {
            (None, None) => String::new(),
            (user, password) => format!(
                "{}{}@",
                user.as_deref().map(percent_encode).unwrap_or_default(),
                if password.is_some() { ":***" } else { "" }
            ),
        };
        match &self.address {
            Address::Tcp { host, port } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                format!("{scheme}://{userinfo}{host}:{port}/{}", self.db)
            }
            Address::Unix(path) => {
                format!("{scheme}://{userinfo}{}?db={}", path.display(), self.db)
            }
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.redacted_url())
            .finish_non_exhaustive()
    }
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            ca_certs: None,
            certfile: None,
            keyfile: None,
            cert_reqs: CertReqs::Required,
        }
    }
}

fn scheme_message() -> String {
    "the URL must start with redis://, rediss:// or unix://".into()
}

fn tcp_address(hostport: &str) -> Result<Address, ConfigError> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '[' in the URL's host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => 6379,
        Some(port) => port
            .parse()
            .map_err(|_| invalid(format!("the URL's port {port:?} is not a port number")))?,
    };
    let host = if host.is_empty() {
        "localhost".to_owned()
    } else {
        percent_decode(host)
    };
    Ok(Address::Tcp { host, port })
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let value = percent_decode(&value.replace('+', " "));
            (!value.is_empty()).then(|| (percent_decode(name), value))
        })
        .collect()
}

/// Decodes `%XX` escapes; malformed escapes are kept as they are, as Python's
/// `urllib.parse.unquote` does.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn full_redis_url() {
        let config = Config::from_url("redis://alice:s%40cret@example.com:6380/4").unwrap();
        assert_eq!(config.address, tcp("example.com", 6380));
        assert_eq!(config.username.as_deref(), Some("alice"));
        assert_eq!(config.password.as_deref(), Some("s@cret"));
        assert_eq!(config.db, 4);
        assert!(config.tls.is_none());
    }

    #[test]
    fn defaults() {
        let config = Config::from_url("redis://localhost").unwrap();
        assert_eq!(config.address, tcp("localhost", 6379));
        assert_eq!(config.db, 0);
        assert_eq!((config.username, config.password), (None, None));
        assert_eq!(config.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(config.socket_timeout, None);
        let default = Config::from_url(DEFAULT_URL).unwrap();
        assert_eq!(default.address, tcp("127.0.0.1", 6379));
    }

    #[test]
    fn password_only_and_password_with_at_sign() {
        let config = Config::from_url("redis://:p@ss@host/2").unwrap();
        assert_eq!(config.username, None);
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert_eq!(config.address, tcp("host", 6379));
        assert_eq!(config.db, 2);
    }

    #[test]
    fn query_db_wins_over_path() {
        let config = Config::from_url("redis://h/1?db=5&socket_timeout=2.5").unwrap();
        assert_eq!(config.db, 5);
        assert_eq!(config.socket_timeout, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn ipv6_host() {
        let config = Config::from_url("redis://[::1]:7000/0").unwrap();
        assert_eq!(config.address, tcp("::1", 7000));
        assert_eq!(config.redacted_url(), "redis://[::1]:7000/0");
    }

    #[test]
    fn rediss_and_tls_options() {
        let url = "rediss://h:6390?ssl_cert_reqs=none&ssl_ca_certs=%2Ftmp%2Fca.pem";
        let config = Config::from_url(url).unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.cert_reqs, CertReqs::None);
        assert_eq!(tls.ca_certs, Some(PathBuf::from("/tmp/ca.pem")));
    }

    #[test]
    fn tls_options_need_rediss() {
        let err = Config::from_url("redis://h?ssl_cert_reqs=none").unwrap_err();
        assert!(err.to_string().contains("rediss://"), "{err}");
    }

    #[test]
    fn unix_socket() {
        let config = Config::from_url("unix:///tmp/redis%20x.sock?db=3").unwrap();
        assert_eq!(config.address, Address::Unix("/tmp/redis x.sock".into()));
        assert_eq!(config.db, 3);
        let with_password = Config::from_url("unix://:pw@/tmp/r.sock").unwrap();
        assert_eq!(with_password.password.as_deref(), Some("pw"));
        assert_eq!(with_password.address, Address::Unix("/tmp/r.sock".into()));
    }

    #[test]
    fn bad_urls() {
        for url in [
            "http://h",
            "localhost:6379",
            "redis://h:port",
            "redis://h:70000",
            "redis://h/x",
            "unix://",
            "redis://[::1",
        ] {
            assert!(
                matches!(Config::from_url(url), Err(ConfigError::Invalid(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn unknown_query_options_are_named() {
        let err = Config::from_url("redis://h?colour=red&db=1&size=2").unwrap_err();
        assert_eq!(
            err,
            ConfigError::Unknown(vec!["colour".into(), "size".into()])
        );
    }

    #[test]
    fn options_override_and_validate() {
        let mut config = Config::from_url("redis://u:p@h/1").unwrap();
        config.set("db", OptionValue::Int(3)).unwrap();
        config
            .set("password", OptionValue::Text("other".into()))
            .unwrap();
        config
            .set("socket_connect_timeout", OptionValue::Float(0.25))
            .unwrap();
        assert_eq!(config.db, 3);
        assert_eq!(config.password.as_deref(), Some("other"));
        assert_eq!(config.connect_timeout, Some(Duration::from_millis(250)));
        assert!(config
            .set("socket_timeout", OptionValue::Float(0.0))
            .is_err());
        assert!(config
            .set("socket_timeout", OptionValue::Float(f64::NAN))
            .is_err());
        assert!(config.set("db", OptionValue::Int(-1)).is_err());
        assert!(config.set("retry_attempts", OptionValue::Int(0)).is_err());
        assert!(config.set("db", OptionValue::Text("x".into())).is_err());
    }

    #[test]
    fn redacted_url_never_shows_the_password() {
        let config = Config::from_url("redis://bob:hunter2@h:1/2").unwrap();
        let shown = config.redacted_url();
        assert_eq!(shown, "redis://bob:***@h:1/2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }
}
