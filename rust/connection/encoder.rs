//! Stand-in until the native encoder is merged.

use pyo3::prelude::*;

use crate::encode::message::Encoded;
use crate::errors::Error;

pub fn encode(_obj: &Bound<'_, PyAny>) -> Result<Encoded, Error> {
    Err(Error::Encode {
        path: "data".into(),
        message: "the encoder is not available in this build".into(),
    })
}
