//! The adapter's internal error type. Its `Display` is for the log only: users get fixed,
//! safe sentences (see `reply.rs`), never one of these strings.

use footnote_adapter::{AdapterError, LedgerError};

/// Everything that can go wrong while talking to the mail servers or keeping state.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The IMAP server refused a command or the connection broke.
    #[error("imap: {0}")]
    Imap(#[from] async_imap::error::Error),
    /// IMAP login failed (wrong user or password).
    #[error("imap login failed: {0}")]
    Login(async_imap::error::Error),
    /// The mailbox has no UIDVALIDITY, so progress cannot be tracked safely.
    #[error("mailbox {0} reports no UIDVALIDITY")]
    NoUidValidity(String),
    /// Connecting, TLS or reading and writing the state file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server name is not valid for TLS.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// Sending a reply over SMTP failed.
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// A reply could not be built (bad address or header).
    #[error("building a reply: {0}")]
    Build(String),
    /// The state file is damaged.
    #[error("state file {path}: {source}")]
    State {
        /// The state file.
        path: String,
        /// What was wrong with it.
        source: serde_json::Error,
    },
    /// A test failpoint fired (simulated crash).
    #[error("failpoint {0:?} fired")]
    Failpoint(crate::Failpoint),
    /// The shared state could not be read or written (several instances on one database).
    #[error("{0}")]
    Ledger(#[from] LedgerError),
}

impl From<EmailError> for AdapterError {
    fn from(error: EmailError) -> Self {
        match error {
            EmailError::Login(_) | EmailError::ServerName(_) | EmailError::State { .. } => {
                AdapterError::Config(error.to_string())
            }
            EmailError::Imap(_)
            | EmailError::Io(_)
            | EmailError::Smtp(_)
            | EmailError::NoUidValidity(_)
            | EmailError::Ledger(_) => AdapterError::Connection(error.to_string()),
            EmailError::Build(_) | EmailError::Failpoint(_) => AdapterError::Other(error.to_string()),
        }
    }
}
