//! IMAP and SMTP connections: TLS (rustls with the ring provider and the webpki roots),
//! STARTTLS or plain TCP for IMAP through async-imap; lettre's pooled transport for SMTP.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::config::{Config, Security};
use crate::error::EmailError;

/// How long to wait for a server before giving up on a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A byte stream IMAP can run over: plain TCP or TLS.
pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}

/// A logged-in IMAP session over either kind of stream.
pub type ImapSession = Session<Box<dyn ImapStream>>;

fn tls_connector() -> Result<TlsConnector, EmailError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // An explicit provider: no dependence on a process-wide default being installed.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| EmailError::Io(std::io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn wrap_tls(tcp: TcpStream, host: &str) -> Result<Box<dyn ImapStream>, EmailError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| EmailError::ServerName(host.to_owned()))?;
    Ok(Box::new(tls_connector()?.connect(name, tcp).await?))
}

/// Connects, secures and logs in to the IMAP server.
pub async fn connect(config: &Config) -> Result<ImapSession, EmailError> {
    let host = config.imap_host.as_str();
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, config.imap_port())))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "IMAP connect timed out"))??;
    let client = match config.imap_security {
        Security::Tls => greeted(Client::new(wrap_tls(tcp, host).await?)).await?,
        Security::Plain => greeted(Client::new(Box::new(tcp) as Box<dyn ImapStream>)).await?,
        Security::Starttls => {
            let mut plain = greeted(Client::new(tcp)).await?;
            plain.run_command_and_check_ok("STARTTLS", None).await?;
            // No greeting after STARTTLS (RFC 3501 §6.2.1).
            Client::new(wrap_tls(plain.into_inner(), host).await?)
        }
    };
    client.login(&config.username, config.password.expose_secret()).await.map_err(|(error, _)| EmailError::Login(error))
}

async fn greeted<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(
    mut client: Client<T>,
) -> Result<Client<T>, EmailError> {
    match client.read_response().await? {
        Some(_) => Ok(client),
        None => Err(async_imap::error::Error::ConnectionLost.into()),
    }
}

/// The SMTP transport for replies.
pub fn smtp(config: &Config) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
    let host = config.smtp_host.as_str();
    let builder = match config.smtp_security {
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
        Security::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let mut builder = builder.port(config.smtp_port()).timeout(Some(CONNECT_TIMEOUT));
    if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
    }
    Ok(builder.build())
}
