//! TLS for SMTP (RFC 3207 STARTTLS, and implicit TLS as on port 465), built on rustls.
//!
//! rustls, not OpenSSL: database servers often load their own OpenSSL, and a second copy
//! in one process clashes. The ring crypto provider builds with cargo and a C compiler.
//! Certificates are verified against the operating system's trust store, plus the PEM
//! bundle of `tls_ca_file`, unless the caller sets `tls_insecure`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::Error;

/// The TLS mode of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP. Credentials are refused unless `insecure_plaintext_auth` is set.
    None,
    /// STARTTLS is required: without it nothing is sent.
    StartTls,
    /// TLS from the first byte, as on port 465.
    Implicit,
    /// STARTTLS when the server offers it, plain SMTP otherwise. A man in the middle can
    /// remove the offer, so this protects only against passive eavesdropping.
    Opportunistic,
}

impl TlsMode {
    /// Parses the value of the `tls` option.
    pub fn parse(value: &str) -> Option<TlsMode> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::StartTls),
            "implicit" => Some(TlsMode::Implicit),
            "opportunistic" => Some(TlsMode::Opportunistic),
            _ => None,
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::Opportunistic => "opportunistic",
        })
    }
}

/// The client configuration for starting TLS, and the name that the server's certificate
/// must match.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// Builds the TLS setup for one call.
///
/// `server_name` overrides `host` for the certificate check, for a relay reached by IP
/// address whose certificate carries its DNS name.
pub fn setup(host: &str, server_name: Option<&str>, ca_file: Option<&Path>, insecure: bool) -> Result<TlsSetup, Error> {
    let name_text = server_name.unwrap_or(host);
    let literal = name_text.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(name_text);
    let server_name = ServerName::try_from(literal.to_owned()).map_err(|_| {
        Error::InvalidArgument(format!(
            "Invalid TLS server name \"{name_text}\": use a DNS name or an IP address, or set tls_server_name."
        ))
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Internal(format!("the TLS provider rejected the default protocol versions: {error}")))?;

    let config = if insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider))).with_no_client_auth()
    } else {
        let mut roots = system_roots().clone();
        if let Some(path) = ca_file {
            add_ca_file(&mut roots, path)?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(TlsSetup { config: Arc::new(config), server_name })
}

/// Loads the operating system's trust store once per process. Certificates that fail to
/// parse are skipped, because one bad file in /etc/ssl/certs must not stop all mail.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(loaded.certs);
        roots
    })
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), Error> {
    let shown = path.display();
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|error| Error::InvalidArgument(format!("Reading the CA file {shown} failed: {error}. Set tls_ca_file to a readable PEM file.")))?;
    if certificates.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "The CA file {shown} contains no PEM certificate. Set tls_ca_file to a file with \"BEGIN CERTIFICATE\" blocks."
        )));
    }
    let (_, rejected) = roots.add_parsable_certificates(certificates);
    if rejected > 0 {
        return Err(Error::InvalidArgument(format!("The CA file {shown} contains {rejected} certificate(s) that could not be parsed.")));
    }
    Ok(())
}

/// Describes a TLS failure for the last error, with what to do about it.
/// `implicit` reports whether the handshake was the first thing on the connection, which makes
/// a plain-text answer a sign of a port that expects STARTTLS.
pub fn describe(error: &rustls::Error, server_name: &ServerName<'_>, implicit: bool) -> String {
    let name = server_name.to_str();
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate was issued by an unknown certificate authority (unknown issuer). Install the CA in the system trust store, or set tls_ca_file to its PEM file".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired. The server's administrator must renew it".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet. Check this machine's clock".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => {
            format!("the server's certificate is not valid for the name \"{name}\" (name mismatch). Connect by the name in the certificate, or set tls_server_name to it")
        }
        rustls::Error::InvalidCertificate(CertificateError::Revoked) => "the server's certificate has been revoked".into(),
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "the server presents a CA certificate as its own, as a self-signed certificate does. Give the server a certificate issued by a CA and trust that CA with tls_ca_file, or for a test only set tls_insecure=1".into()
        }
        rustls::Error::InvalidCertificate(other) => format!("the server's certificate is not valid: {}", rustls::Error::InvalidCertificate(other.clone())),
        rustls::Error::PeerIncompatible(_) | rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion | rustls::AlertDescription::HandshakeFailure) => {
            format!("the server and this client have no TLS version or cipher suite in common ({error}). The server may support only TLS 1.0 or 1.1, which are not allowed")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } | rustls::Error::InappropriateHandshakeMessage { .. } => {
            if implicit {
                format!("the server did not answer with valid TLS ({error}). If this port speaks plain SMTP, use tls=starttls instead of tls=implicit")
            } else {
                format!("the server did not answer with valid TLS after STARTTLS ({error})")
            }
        }
        other => other.to_string(),
    }
}

/// A verifier that accepts any certificate, used only when the caller sets `tls_insecure=1`.
/// Signatures are still checked, so the session is encrypted, but not authenticated: a man in
/// the middle can read and change everything.
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
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(TlsMode::parse("STARTTLS"), Some(TlsMode::StartTls));
        assert_eq!(TlsMode::parse("implicit"), Some(TlsMode::Implicit));
        assert_eq!(TlsMode::parse("ssl"), None);
    }

    #[test]
    fn ip_literal_server_name() {
        let setup = setup("[127.0.0.1]", None, None, false).unwrap();
        assert_eq!(setup.server_name.to_str(), "127.0.0.1");
    }

    #[test]
    fn bad_server_name_rejected() {
        assert!(matches!(setup("127.0.0.1", Some("not a name"), None, false), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn missing_ca_file_rejected() {
        let error = setup("localhost", None, Some(Path::new("/nonexistent/ca.pem")), false).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
