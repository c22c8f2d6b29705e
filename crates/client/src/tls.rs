//! Who the client trusts for `https://` and `wss://`: the public web roots, plus any certificate
//! authority the user adds for a self-hosted server; and on top of that the server's own TLS key,
//! pinned on first use (a certificate authority that issues for the server's name is not enough to
//! play the server). Plain `http://` is for loopback only, unless a LAN test setup says so loudly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::SignalingError;
use crate::ClientError;

/// The server's TLS key as this profile knows it: the pin (SHA-256 of the certificate's
/// SubjectPublicKeyInfo) it expects, the one it last saw, and whether a handshake was refused
/// because the two differ.
#[derive(Debug, Default)]
pub struct ServerPin {
    state: Mutex<PinState>,
}

#[derive(Debug, Default)]
struct PinState {
    expected: Option<[u8; 32]>,
    seen: Option<[u8; 32]>,
    refused: Option<[u8; 32]>,
}

impl ServerPin {
    fn state(&self) -> std::sync::MutexGuard<'_, PinState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn expect(&self, pin: Option<[u8; 32]>) {
        let mut s = self.state();
        s.expected = pin;
        s.refused = None;
    }

    pub fn expected(&self) -> Option<[u8; 32]> {
        self.state().expected
    }

    /// The key of the last server that passed every check.
    pub fn seen(&self) -> Option<[u8; 32]> {
        self.state().seen
    }

    /// The key a handshake was refused for, if the server's key changed.
    pub fn refused(&self) -> Option<[u8; 32]> {
        self.state().refused
    }

    /// Decides one handshake's key: first use pins nothing by itself (the engine saves what was
    /// seen), a known pin must match.
    pub fn check(&self, spki_sha256: [u8; 32]) -> Result<(), PinError> {
        let mut s = self.state();
        match s.expected {
            Some(pin) if pin != spki_sha256 => {
                s.refused = Some(spki_sha256);
                Err(PinError::Changed)
            }
            _ => {
                s.seen = Some(spki_sha256);
                Ok(())
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("the server's TLS key is not the one this profile pinned")]
    Changed,
}

/// SHA-256 over a certificate's SubjectPublicKeyInfo (DER): the HPKP/`openssl pkey -pubout`
/// pin. It survives certificate renewals that keep the key.
pub fn spki_sha256(cert: &[u8]) -> Result<[u8; 32], ClientError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| {
        ClientError::Signaling(SignalingError::Tls(format!(
            "unreadable server certificate: {e}"
        )))
    })?;
    Ok(Sha256::digest(parsed.tbs_certificate.subject_pki.raw).into())
}

#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pin: Arc<ServerPin>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        let spki = spki_sha256(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        self.pin
            .check(spki)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// An HTTP client and a rustls configuration that trust the same roots and check the same pin.
pub fn clients(
    extra_ca_pem: Option<&[u8]>,
    pin: Arc<ServerPin>,
) -> Result<(reqwest::Client, Arc<rustls::ClientConfig>), ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                ClientError::Signaling(SignalingError::Tls(format!("bad CA certificate: {e}")))
            })?;
        if certs.is_empty() {
            return Err(ClientError::Signaling(SignalingError::Tls(
                "no certificate in the CA file".into(),
            )));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| ClientError::Signaling(SignalingError::Tls(e.to_string())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ClientError::Signaling(SignalingError::Tls(e.to_string())))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Signaling(SignalingError::Tls(e.to_string())))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinningVerifier { inner, pin }))
        .with_no_client_auth();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // Only the origin checked (https, or loopback): a server's redirect could otherwise send
        // a request on to plain http elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .use_preconfigured_tls(tls.clone())
        .build()
        .map_err(|e| ClientError::Signaling(SignalingError::Tls(e.to_string())))?;
    Ok((http, Arc::new(tls)))
}

/// Whether this client may talk to `origin`: `https://` anywhere; plain `http://` only to this
/// machine (loopback), or anywhere when the user set the loudly named LAN-test flag. Anyone on the
/// path of a plain connection could otherwise play the server.
pub fn check_origin(origin: &str, allow_plain_http: bool) -> Result<(), ClientError> {
    let url = reqwest::Url::parse(origin)
        .map_err(|e| ClientError::Refused(format!("not a server address ({origin}): {e}")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_plain_http || is_loopback(&url) => Ok(()),
        "http" => Err(ClientError::Refused(format!(
            "plain http:// is refused for a server on another machine ({origin}): anyone on the \
             way could play the server. Use https://, or for a test network only, \
             --insecure-plain-http-on-lan"
        ))),
        other => Err(ClientError::Refused(format!(
            "unsupported scheme {other}:// (use https://)"
        ))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_flagged() {
        for ok in [
            "https://chat.example.org",
            "http://127.0.0.1:7878",
            "http://127.1.2.3",
            "http://[::1]:80",
            "http://localhost:7878",
        ] {
            assert!(check_origin(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://203.0.113.5:7878",
            "http://chat.example.org",
            "http://localhost.example.org",
            "http://[2001:db8::1]",
            "ftp://127.0.0.1",
            "nonsense",
        ] {
            assert!(check_origin(bad, false).is_err(), "{bad}");
        }
        assert!(check_origin("http://203.0.113.5:7878", true).is_ok());
        assert!(check_origin("ftp://203.0.113.5", true).is_err());
    }

    #[test]
    fn a_pin_is_kept_until_a_different_key_is_refused() {
        let pin = ServerPin::default();
        assert_eq!(pin.check([1; 32]), Ok(()), "first use");
        assert_eq!(pin.seen(), Some([1; 32]));
        pin.expect(Some([1; 32]));
        assert_eq!(pin.check([1; 32]), Ok(()));
        assert_eq!(pin.check([2; 32]), Err(PinError::Changed));
        assert_eq!(pin.refused(), Some([2; 32]));
        assert_eq!(pin.seen(), Some([1; 32]), "the refused key is not 'seen'");
        pin.expect(None);
        assert_eq!(pin.refused(), None);
        assert_eq!(
            pin.check([2; 32]),
            Ok(()),
            "after the user trusted the change"
        );
    }
}
