//! The rustls client configuration of a `rediss://` connection.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::url::{CertReqs, TlsOptions};
use crate::errors::{ConnErrorKind, Error};

fn config_error(message: String) -> Error {
    Error::Connection {
        kind: ConnErrorKind::Config,
        retry_safe: true,
        message,
    }
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|err| config_error(format!("cannot read {what} {}: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{what} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Builds the client configuration for `options`.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| config_error(format!("TLS setup failed: {err}")))?;

    let builder = match options.cert_reqs {
        CertReqs::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
        CertReqs::Required => {
            let mut roots = RootCertStore::empty();
            match &options.ca_certs {
                Some(path) => {
                    for cert in read_certs(path, "ssl_ca_certs")? {
                        roots.add(cert).map_err(|err| {
                            config_error(format!("bad CA in {}: {err}", path.display()))
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        }
    };

    let config = match &options.certfile {
        None => builder.with_no_client_auth(),
        Some(certfile) => {
            let chain = read_certs(certfile, "ssl_certfile")?;
            let keyfile = options.keyfile.as_deref().unwrap_or(certfile);
            let key = PrivateKeyDer::from_pem_file(keyfile).map_err(|err| {
                config_error(format!(
                    "cannot read ssl_keyfile {}: {err}",
                    keyfile.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| config_error(format!("bad client certificate: {err}")))?
        }
    };
    Ok(Arc::new(config))
}

/// The name the server's certificate must carry: the host, or its IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| config_error(format!("{host:?} is not a valid TLS server name")))
}

/// `ssl_cert_reqs="none"`: any certificate is accepted; signatures are still checked
/// so the handshake itself stays sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
