//! `footnote-matrix`: the Matrix adapter of Footnote, built on matrix-sdk with end-to-end
//! encryption.
//!
//! People ask with `!ask`, by mentioning the bot, or in a direct message; they add documents by
//! replying `!ingest` to a file (or sending a file to the bot in a DM). Answers stream by edits
//! into a thread on the asking message, keep their `[n]` markers, and list the numbered sources.
//! The login and the encryption keys persist in the store directory, so a restart is the same
//! device.
//!
//! - [`config`]: the `[adapters.matrix]` section.
//! - [`session`]: logging in and keeping the session.
//! - [`convert`]: pure mapping from Matrix events to gateway calls.
//! - [`download`]: files, streamed from the media repository and stopped at the size limit.
//! - [`reply`]: pure rendering of answers and reports into plain and HTML bodies within limits.
//! - [`stream`]: where a reply goes and how a streamed answer is shown there.
//! - [`handler`]: invites and messages.

#![recursion_limit = "256"]

pub mod config;
pub mod convert;
pub mod download;
pub mod handler;
pub mod reply;
pub mod session;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use footnote_adapter::{Adapter, AdapterConfig, AdapterContext, AdapterError, Built, CancellationToken, Gateway};
use matrix_sdk::Room;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::SyncOrStrippedState;
use matrix_sdk::ruma::MilliSecondsSinceUnixEpoch;
use matrix_sdk::ruma::api::error::ErrorKind;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::member::StrippedRoomMemberEvent;
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;

pub use config::Config;
pub use handler::{Handler, Settings};

/// How long one sync request may wait for news on the homeserver.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The Matrix adapter.
#[derive(Debug)]
pub struct MatrixAdapter {
    config: Config,
}

impl MatrixAdapter {
    /// Checks the configuration and builds the adapter; connecting happens in [`Adapter::run`].
    /// A relative `store_dir` is taken as it is (relative to the working directory); built from
    /// the configuration ([`AdapterConfig::build`]), it lives in the data directory.
    pub fn new(config: Config) -> Result<Self, AdapterError> {
        config.validate().map_err(|problems| AdapterError::Config(problems.join("; ")))?;
        Ok(MatrixAdapter { config })
    }
}

impl AdapterConfig for Config {
    const NAME: &'static str = "matrix";

    fn problems(&self) -> Vec<String> {
        self.validate().err().unwrap_or_default()
    }

    /// A relative `store_dir` (the session and the encryption keys) lives in the data directory.
    fn build(mut self, context: &AdapterContext) -> Result<Built, AdapterError> {
        self.store_dir = context.resolve(&self.store_dir);
        let identity = format!("{} on {}", self.user_id, self.homeserver);
        MatrixAdapter::new(self.clone())?;
        Ok(Built::new(identity, move || Ok(Box::new(MatrixAdapter::new(self.clone())?) as Box<dyn Adapter>)))
    }
}

fn sync_error(error: &matrix_sdk::Error) -> AdapterError {
    if let Some(ErrorKind::UnknownToken { .. }) = error.client_api_error_kind() {
        // Logged out elsewhere. The restart finds the saved session refused and logs in again
        // with the same device id, so the store's keys stay in use.
        return AdapterError::Connection("the homeserver no longer accepts the bot's session".into());
    }
    AdapterError::Connection(format!("Matrix sync failed: {error}"))
}

#[async_trait]
impl Adapter for MatrixAdapter {
    fn name(&self) -> &'static str {
        "matrix"
    }

    async fn run(self: Box<Self>, gateway: Arc<dyn Gateway>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        let store_dir = self.config.store_dir.clone();
        // Taking the bot over from an instance that stopped: what it left unanswered since it
        // started counts as new (the ledger tells which messages it finished).
        let resume = gateway.ledger().and_then(|l| l.resume_since());
        let started = resume
            .and_then(MilliSecondsSinceUnixEpoch::from_system_time)
            .unwrap_or_else(MilliSecondsSinceUnixEpoch::now);
        if resume.is_some() {
            tracing::info!(adapter = "matrix", "Taking over from another instance: answering what it left unanswered.");
        }
        let client = tokio::select! {
            client = session::connect(&self.config, &store_dir) => client?,
            () = shutdown.cancelled() => return Ok(()),
        };
        let bot = client.user_id().ok_or_else(|| AdapterError::Other("logged in without a user id".into()))?.to_owned();
        let handler = Arc::new(Handler::new(gateway, Settings::from(&self.config), bot.clone(), started));
        let on_message = handler.clone();
        client.add_event_handler(move |event: OriginalSyncRoomMessageEvent, room: Room| {
            let handler = on_message.clone();
            let new = handler.is_new(event.origin_server_ts);
            async move {
                // Answers take a while: never hold up the sync loop.
                if new {
                    tokio::spawn(async move { handler.on_message(event, room).await });
                }
            }
        });
        let on_undecryptable = handler.clone();
        client.add_event_handler(move |event: OriginalSyncRoomEncryptedEvent, room: Room| {
            let handler = on_undecryptable.clone();
            let new = handler.is_new(event.origin_server_ts);
            async move {
                if new {
                    tokio::spawn(async move { handler.on_undecryptable(event, room).await });
                }
            }
        });
        let on_invite = handler.clone();
        client.add_event_handler(move |event: StrippedRoomMemberEvent, room: Room| {
            let handler = on_invite.clone();
            async move {
                tokio::spawn(async move { handler.on_invite(event, room).await });
            }
        });
        // Catch up first: messages stamped before this start are what the bot missed while it was
        // down, history it never answers (the handler checks); newer ones in this batch are
        // answered. The keys that arrived meanwhile are stored, so encrypted rooms stay readable.
        let caught_up = tokio::select! {
            response = client.sync_once(SyncSettings::default().timeout(Duration::ZERO)) => {
                response.map_err(|e| sync_error(&e))?
            }
            () = shutdown.cancelled() => return Ok(()),
        };
        handler.caught_up();
        tracing::info!(adapter = "matrix", user = %bot, "Connected to Matrix.");

        // Invites that came while the bot was away (each is answered once).
        for room in client.invited_rooms() {
            let handler = handler.clone();
            tokio::spawn(async move {
                match room.invite_details().await {
                    Ok(invite) => {
                        let direct = match invite.invitee.event().as_ref() {
                            SyncOrStrippedState::Stripped(event) => event.content.is_direct.unwrap_or(false),
                            SyncOrStrippedState::Sync(_) => false,
                        };
                        handler.answer_invite(&room, &invite.inviter_id, direct).await;
                    }
                    Err(error) => tracing::warn!(error = %error, room = %room.room_id(), "Could not read an invite."),
                }
            });
        }
        let settings = SyncSettings::default().token(caught_up.next_batch).timeout(SYNC_TIMEOUT);
        tokio::select! {
            result = client.sync(settings) => match result {
                Ok(()) => Err(AdapterError::Connection("the Matrix sync loop ended".into())),
                Err(error) => Err(sync_error(&error)),
            },
            () = shutdown.cancelled() => {
                tracing::info!(adapter = "matrix", "Disconnecting from Matrix.");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_refuses_a_bad_config_with_every_problem() {
        let mut config = Config::with_password("matrix.example.org", "@bot:example.org", "");
        config.max_file_bytes = 0;
        let Err(AdapterError::Config(text)) = MatrixAdapter::new(config) else { panic!("accepted") };
        assert!(text.contains("homeserver") && text.contains("password") && text.contains("max_file_bytes"), "{text}");
        let adapter = MatrixAdapter::new(Config::with_password("https://m.example.org", "@bot:example.org", "pw"));
        assert_eq!(adapter.map(|a| a.name()).map_err(|e| e.to_string()), Ok("matrix"));
    }
}
