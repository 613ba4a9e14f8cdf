//! The test mail servers (Dovecot and the SMTP relay that `scripts/peers/email.sh start` runs):
//! the email adapter's tests and these share one description of them (`peer.rs` there).

#[path = "../../adapters/email/tests/common/peer.rs"]
mod peer;

#[allow(unused_imports)]
pub use peer::{Peer as Mail, peer as mail_peer};
