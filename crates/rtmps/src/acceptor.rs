//! The server side: certificate loading, the self-signed default, hot reload, accepting connections.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

/// Where the certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first) and PEM private key; `None` for a generated self-signed pair.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file could not be read or parsed.
    #[error("cannot read certificate chain {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The private key file could not be read or parsed.
    #[error("cannot read private key {path}: {reason}")]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("cannot generate the self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
}

/// Accepts TLS connections with a certificate that can be replaced at run time.
#[derive(Debug, Clone)]
pub struct TlsAcceptor {
    settings: TlsSettings,
    current: Arc<RwLock<(Arc<ServerConfig>, String)>>,
}

impl TlsAcceptor {
    /// Loads (or generates) the certificate.
    pub fn new(settings: TlsSettings) -> Result<TlsAcceptor, TlsError> {
        let loaded = load(&settings)?;
        Ok(TlsAcceptor {
            settings,
            current: Arc::new(RwLock::new(loaded)),
        })
    }

    /// SHA-256 fingerprint of the certificate in use (colon-separated hex, as browsers show it).
    pub fn fingerprint(&self) -> String {
        self.current.read().map(|c| c.1.clone()).unwrap_or_default()
    }

    /// Whether the certificate is the generated self-signed one.
    pub fn is_self_signed(&self) -> bool {
        self.settings.cert_and_key.is_none()
    }

    /// Re-reads the certificate files. Open connections keep the certificate they started with; a failure
    /// keeps the current certificate. Returns the new fingerprint.
    pub fn reload(&self) -> Result<String, TlsError> {
        let loaded = load(&self.settings)?;
        let fingerprint = loaded.1.clone();
        if let Ok(mut current) = self.current.write() {
            *current = loaded;
        }
        Ok(fingerprint)
    }

    /// Runs the TLS handshake on an accepted connection.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> io::Result<TlsStream<S>> {
        let config = self
            .current
            .read()
            .map(|c| c.0.clone())
            .map_err(|_| io::Error::other("TLS configuration lock poisoned"))?;
        tokio_rustls::TlsAcceptor::from(config).accept(stream).await
    }
}

fn load(settings: &TlsSettings) -> Result<(Arc<ServerConfig>, String), TlsError> {
    let (chain, key) = match &settings.cert_and_key {
        Some((cert, key)) => (read_chain(cert)?, read_key(key)?),
        None => self_signed()?,
    };
    let fingerprint = chain
        .first()
        .map(|leaf| fingerprint(leaf))
        .unwrap_or_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // librtmp with GnuTLS mistakes TLS 1.3 session tickets for stream data.
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), fingerprint))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if chain.is_empty() {
        return Err(error("no CERTIFICATE block in the file".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    // Accepts PKCS#8, PKCS#1 (RSA) and SEC1 (EC) blocks.
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::PrivateKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated = rcgen::generate_simple_self_signed(names)?;
    let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    Ok((vec![generated.cert.der().clone()], key))
}

fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    Sha256::digest(certificate.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
