//! Who the client trusts for `https://` and `wss://`: the public web roots, plus any certificate
//! authority the user adds for a self-hosted server.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::ClientError;

/// An HTTP client and a rustls configuration that trust the same roots.
pub fn clients(
    extra_ca_pem: Option<&[u8]>,
) -> Result<(reqwest::Client, Arc<rustls::ClientConfig>), ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(pem) = extra_ca_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::Tls(format!("bad CA certificate: {e}")))?;
        if certs.is_empty() {
            return Err(ClientError::Tls("no certificate in the CA file".into()));
        }
        for c in certs {
            http = http.add_root_certificate(
                reqwest::Certificate::from_der(&c).map_err(|e| ClientError::Tls(e.to_string()))?,
            );
            roots.add(c).map_err(|e| ClientError::Tls(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let http = http.build().map_err(|e| ClientError::Tls(e.to_string()))?;
    Ok((http, Arc::new(tls)))
}
