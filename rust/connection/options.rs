//! `connect()`'s arguments: the URL (or `REDIS_URL`, or the default) and the keyword
//! options that override its parts.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use crate::errors::{ConnErrorKind, Error};
use crate::net::url::{DEFAULT_URL, OPTION_NAMES};
use crate::net::{Config, ConfigError, OptionValue};

/// A bad URL or option value: a ConnectionError of kind 'config'. Messages never
/// quote the URL, which may hold a password.
fn config_error(err: ConfigError) -> Error {
    Error::Connection {
        kind: ConnErrorKind::Config,
        retry_safe: true,
        message: format!("invalid connection settings: {err}"),
    }
}

/// The settings for `connect(url, **options)`.
pub fn config(
    py: Python<'_>,
    url: Option<&str>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Config> {
    let from_env = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let url = url.map(str::to_owned).or(from_env);
    let mut config = Config::from_url(url.as_deref().unwrap_or(DEFAULT_URL))
        .map_err(|err| config_error(err).into_pyerr(py))?;
    let Some(options) = options else {
        return Ok(config);
    };

    let mut unknown = Vec::new();
    let mut given = Vec::new();
    for (key, value) in options.iter() {
        let name: String = key.extract()?;
        if !OPTION_NAMES.contains(&name.as_str()) {
            unknown.push(name);
        } else if !value.is_none() {
            given.push((name, value));
        }
    }
    if !unknown.is_empty() {
        return Err(PyTypeError::new_err(format!(
            "connect() got unknown option(s) {}; the options are {}",
            unknown.join(", "),
            OPTION_NAMES.join(", ")
        )));
    }
    for (name, value) in given {
        let value = option_value(&name, &value)?;
        config
            .set(&name, value)
            .map_err(|err| config_error(err).into_pyerr(py))?;
    }
    Ok(config)
}

fn option_value(name: &str, value: &Bound<'_, PyAny>) -> PyResult<OptionValue> {
    if matches!(name, "ssl_ca_certs" | "ssl_certfile" | "ssl_keyfile") {
        let path: PathBuf = value.extract().map_err(|_| {
            PyTypeError::new_err(format!("{name} must be a path (str or os.PathLike)"))
        })?;
        return Ok(OptionValue::Text(path.to_string_lossy().into_owned()));
    }
    if value.is_instance_of::<PyBool>() {
        // bool is an int subclass; True as a db number is a mistake, not a choice.
    } else if value.is_instance_of::<PyInt>() {
        return Ok(OptionValue::Int(value.extract()?));
    } else if value.is_instance_of::<PyFloat>() {
        return Ok(OptionValue::Float(value.extract()?));
    } else if let Ok(text) = value.cast::<PyString>() {
        return Ok(OptionValue::Text(text.to_str()?.to_owned()));
    }
    let type_name = value.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "option {name} must be a str, int or float, not {type_name}"
    )))
}
