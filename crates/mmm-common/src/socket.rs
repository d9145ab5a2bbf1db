//! Listener and connector for MMM's sockets (spec §2.4 `<socket>`, §4.1): plain TCP, or
//! rustls TLS when `<socket> type ssl`. Used by the agent listener, the monitor's agent
//! client, the monitor's command listener and `mmm_control`.
//!
//! API:
//! - [`Listener::bind`]`(addr, &SocketConfig)` → a listener (SO_REUSEADDR, as 2.2.1).
//!   [`Listener::accept`] returns an [`Accepted`] TCP connection and its peer address;
//!   [`Accepted::establish`]`(timeout)` runs the TLS handshake (if any) under a timeout, so
//!   the accept loop never waits on a slow client. For `type ssl` the server presents
//!   `cert_file`/`key_file` and **requires** a client certificate signed by `ca_file`.
//! - [`connect`]`(addr, &SocketConfig, timeout)` → a [`Stream`]; the TCP connect and the TLS
//!   handshake both sit under `timeout`. For `type ssl` the client presents
//!   `cert_file`/`key_file` and verifies the server's chain against `ca_file`. As 2.2.1
//!   (IO::Socket::SSL without a verify_hostname), the server's name/IP is not matched
//!   against the certificate: MMM deployments use certificates without IP SANs. The chain
//!   must still lead to `ca_file`.
//! - [`Stream`]: `AsyncRead + AsyncWrite`, plain or TLS (client or server side).
//!
//! Line framing lives in `line.rs`, the accept loop in `server.rs`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{SocketConfig, SocketType};

/// Errors of the socket layer.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// `type ssl` without a required file.
    #[error("<socket> type ssl needs {0}")]
    MissingFile(&'static str),
    /// A certificate, key or CA file could not be read or parsed.
    #[error("could not load {what} '{path}': {reason}")]
    Load {
        /// Which file (`cert_file`, `key_file`, `ca_file`).
        what: &'static str,
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),
    /// The address could not be parsed or resolved.
    #[error("bad address '{0}'")]
    BadAddress(String),
    /// A connect or handshake did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// `connect` or `TLS handshake`.
        what: &'static str,
        /// The bound.
        after: Duration,
    },
    /// An IO error (bind, accept, connect, handshake).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A connected stream: plain TCP or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, server side (an accepted connection).
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// TLS, client side.
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::TlsServer(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn required<'a>(v: &'a Option<String>, what: &'static str) -> Result<&'a str, SocketError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(SocketError::MissingFile(what))
}

fn load_certs(path: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, SocketError> {
    let load_err = |reason: String| SocketError::Load {
        what,
        path: path.to_string(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(load_err("no certificate found".into()));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, SocketError> {
    let load_err = |reason: String| SocketError::Load {
        what: "key_file",
        path: path.to_string(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| load_err(e.to_string()))?;
    // The first PKCS#1, PKCS#8 or SEC1 key in the file, as rustls-pemfile's private_key did.
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        pem::Error::NoItemsFound => load_err("no private key found".into()),
        e => load_err(e.to_string()),
    })
}

fn load_roots(path: &str) -> Result<Arc<RootCertStore>, SocketError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, "ca_file")? {
        roots.add(cert).map_err(|e| SocketError::Load {
            what: "ca_file",
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(roots))
}

/// Builds the server-side TLS acceptor for `type ssl` (client certificates required).
pub fn tls_acceptor(cfg: &SocketConfig) -> Result<TlsAcceptor, SocketError> {
    let certs = load_certs(required(&cfg.cert_file, "cert_file")?, "cert_file")?;
    let key = load_key(required(&cfg.key_file, "key_file")?)?;
    let roots = load_roots(required(&cfg.ca_file, "ca_file")?)?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| SocketError::Tls(rustls::Error::General(e.to_string())))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Verifies the server's chain against `ca_file` but not its name (see the module doc).
#[derive(Debug)]
struct ChainOnlyVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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

/// Builds the client-side TLS connector for `type ssl`. `ca_file` is required to verify
/// the server (mmm_control, which 2.2.1 lets run without `ca_file`, must set it too).
pub fn tls_connector(cfg: &SocketConfig) -> Result<TlsConnector, SocketError> {
    let certs = load_certs(required(&cfg.cert_file, "cert_file")?, "cert_file")?;
    let key = load_key(required(&cfg.key_file, "key_file")?)?;
    let roots = load_roots(required(&cfg.ca_file, "ca_file")?)?;
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| SocketError::Tls(rustls::Error::General(e.to_string())))?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier { inner }))
        .with_client_auth_cert(certs, key)?;
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn resolve(addr: &str) -> Result<SocketAddr, SocketError> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    tokio::net::lookup_host(addr)
        .await
        .map_err(|_| SocketError::BadAddress(addr.to_string()))?
        .next()
        .ok_or_else(|| SocketError::BadAddress(addr.to_string()))
}

/// A listening socket, plain or TLS.
pub struct Listener {
    /// The TCP listener.
    tcp: TcpListener,
    /// The TLS acceptor when `type ssl`.
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// An accepted TCP connection whose TLS handshake (if any) has not run yet.
pub struct Accepted {
    /// The raw connection.
    tcp: TcpStream,
    /// The acceptor, when TLS.
    tls: Option<TlsAcceptor>,
    /// The peer.
    pub peer: SocketAddr,
}

impl Accepted {
    /// Completes the connection: runs the TLS handshake under `timeout` (a client without a
    /// valid certificate fails here), or returns the plain stream.
    pub async fn establish(self, timeout: Duration) -> Result<Stream, SocketError> {
        match self.tls {
            None => Ok(Stream::Plain(self.tcp)),
            Some(acceptor) => {
                match tokio::time::timeout(timeout, acceptor.accept(self.tcp)).await {
                    Err(_) => Err(SocketError::Timeout {
                        what: "TLS handshake",
                        after: timeout,
                    }),
                    Ok(r) => Ok(Stream::TlsServer(Box::new(r?))),
                }
            }
        }
    }
}

impl Listener {
    /// Binds `addr` (`ip:port`) with SO_REUSEADDR, backlog 10 as 2.2.1 (more is harmless;
    /// we use 128), plain or TLS per `cfg`. TLS files are loaded now, so a bad file is an
    /// error at start-up, not at the first connection.
    pub async fn bind(addr: &str, cfg: &SocketConfig) -> Result<Listener, SocketError> {
        let tls = match cfg.kind {
            SocketType::Plain => None,
            SocketType::Ssl => Some(tls_acceptor(cfg)?),
        };
        let sa = resolve(addr).await?;
        let socket = if sa.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(sa)?;
        let tcp = socket.listen(128)?;
        Ok(Listener { tcp, tls })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, SocketError> {
        Ok(self.tcp.local_addr()?)
    }

    /// Accepts the next TCP connection. Call [`Accepted::establish`] in the connection's
    /// own task.
    pub async fn accept(&self) -> Result<Accepted, SocketError> {
        let (tcp, peer) = self.tcp.accept().await?;
        let _ = tcp.set_nodelay(true);
        Ok(Accepted {
            tcp,
            tls: self.tls.clone(),
            peer,
        })
    }
}

/// Connects to `addr` (`ip:port`), plain or TLS per `cfg`; connect and handshake together
/// are bounded by `timeout`.
pub async fn connect(
    addr: &str,
    cfg: &SocketConfig,
    timeout: Duration,
) -> Result<Stream, SocketError> {
    let connector = match cfg.kind {
        SocketType::Plain => None,
        SocketType::Ssl => Some(tls_connector(cfg)?),
    };
    let work = async {
        let sa = resolve(addr).await?;
        let tcp = TcpStream::connect(sa).await?;
        let _ = tcp.set_nodelay(true);
        match connector {
            None => Ok(Stream::Plain(tcp)),
            Some(c) => {
                let name = ServerName::IpAddress(sa.ip().into());
                Ok(Stream::TlsClient(Box::new(c.connect(name, tcp).await?)))
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(SocketError::Timeout {
            what: "connect",
            after: timeout,
        }),
        Ok(r) => r,
    }
}

/// `<socket> type plain` (the unit tests of this crate's network code).
#[cfg(test)]
pub(crate) fn plain_config() -> SocketConfig {
    SocketConfig {
        kind: SocketType::Plain,
        cert_file: None,
        key_file: None,
        ca_file: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn plain() -> SocketConfig {
        plain_config()
    }

    #[tokio::test]
    async fn plain_roundtrip() {
        let l = Listener::bind("127.0.0.1:0", &plain()).await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let a = l.accept().await.unwrap();
            let mut s = a.establish(Duration::from_secs(1)).await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let mut c = connect(&addr, &plain(), Duration::from_secs(1))
            .await
            .unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn ssl_without_files_is_an_error() {
        let cfg = SocketConfig {
            kind: SocketType::Ssl,
            ..plain()
        };
        assert!(matches!(
            Listener::bind("127.0.0.1:0", &cfg).await,
            Err(SocketError::MissingFile("cert_file"))
        ));
    }

    #[tokio::test]
    async fn connect_refused_is_reported() {
        // Bind then drop to get a (very likely) closed port.
        let l = Listener::bind("127.0.0.1:0", &plain()).await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        assert!(connect(&addr, &plain(), Duration::from_secs(1))
            .await
            .is_err());
    }
}
