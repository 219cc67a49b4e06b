//! TLS built in (`--tls-cert FILE --tls-key FILE`): rustls with the ring provider, TLS 1.2 and
//! 1.3 only, HTTP/1.1 over ALPN, and a certificate that can be replaced while the server runs
//! (SIGHUP re-reads both files; connections already open keep the certificate they started
//! with, new handshakes get the new one; a file that does not load is logged and the old
//! certificate stays).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// The server's certificate and key, re-read on demand.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("reading the certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading the private key {}: {e}", key.display()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("the private key {} cannot sign: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| {
        format!(
            "the private key {} does not belong to the certificate {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

impl CertStore {
    /// Loads the certificate chain (PEM) and its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// A message naming the file that does not load, or a key that does not match.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let current = load(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(current),
        }))
    }

    /// Re-reads both files; on success new handshakes use them.
    ///
    /// # Errors
    /// The same as [`CertStore::load`]; the certificate in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let next = load(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The acceptor of `roster serve --tls-cert … --tls-key …`: TLS 1.2 and 1.3, HTTP/1.1.
///
/// # Errors
/// When the protocol versions cannot be configured (not with the ring provider).
pub fn acceptor(certs: Arc<CertStore>) -> Result<tokio_rustls::TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Re-reads the certificate (if any) and the secret key file (if any) on every SIGHUP until
/// `stop` turns true. Without either the signal is only logged: SIGHUP's default action would
/// end the process, and a unit file's `ExecReload` must not stop the server.
pub async fn reload_on_sighup(
    certs: Option<Arc<CertStore>>,
    keys: Arc<crate::secretbox::KeyRing>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!(
                "cannot listen for SIGHUP: the certificate and keys will not be reloaded"
            );
            return;
        };
        let key_file = matches!(keys.source(), crate::secretbox::KeySource::File(_));
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    match certs.as_ref().map(|c| (c, c.reload())) {
                        Some((c, Ok(()))) => tracing::info!(cert = %c.cert.display(), "TLS certificate reloaded"),
                        Some((_, Err(e))) => tracing::error!(error = %e, "TLS certificate reload failed; keeping the current one"),
                        None if !key_file => tracing::info!("SIGHUP: nothing to reload (no --tls-cert, no --secret-key-file)"),
                        None => {}
                    }
                    if key_file {
                        match keys.reload() {
                            Ok(n) => tracing::info!(keys = n, key_ids = ?keys.key_ids(), "secret key file reloaded"),
                            Err(e) => tracing::error!(error = %e, "secret key file reload failed; keeping the keys held"),
                        }
                    }
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (certs, keys, stop.changed().await);
    }
}
