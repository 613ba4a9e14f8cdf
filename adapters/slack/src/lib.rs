//! `footnote-slack`: Footnote in a Slack workspace, on slack-morphism.
//!
//! - **Socket Mode** (default): the adapter opens a WebSocket with the app-level token, so no
//!   public URL is needed. **Events API** (`mode = "events"`): Slack posts to
//!   [`events_router`], mounted on Footnote's HTTP server, which checks each request's signature.
//! - `/ask`, `/warmup` and `/footnote sources|forget ID|status|help` are acknowledged at once;
//!   the work runs in the background. Mentions in channels and direct messages are answered in
//!   the thread of the asking message, streamed by throttled `chat.update` edits, with the
//!   numbered sources as Block Kit context blocks. Files shared with a mention (or in a direct
//!   message) are downloaded with the bot token and ingested into the channel's collection.
//! - Retried deliveries never produce a second answer ([`dedupe`]).
//!
//! Modules: [`config`] (settings), [`convert`] (pure payload mapping), [`blocks`] (pure Block
//! Kit rendering), [`web`] (Web API calls), [`handler`] (the glue), [`events`] (HTTP endpoint).

#![warn(missing_docs)]

pub mod blocks;
pub mod config;
pub mod convert;
pub mod dedupe;
pub mod events;
pub mod handler;
pub mod web;

use std::sync::Arc;

use async_trait::async_trait;
use footnote_adapter::setup::fingerprint;
use footnote_adapter::{Adapter, AdapterConfig, AdapterContext, AdapterError, Built, CancellationToken, Gateway};
use secrecy::ExposeSecret;
use slack_morphism::prelude::*;

pub use config::{Config, Mode};
pub use events::events_router;
pub use handler::SlackState;

/// The Slack adapter.
pub struct SlackAdapter {
    config: Config,
    /// In Events API mode, the state the HTTP routes share ([`AdapterConfig::build`]); in Socket
    /// Mode it is made when the adapter runs, with the gateway it is run with.
    events: Option<SlackState>,
}

impl std::fmt::Debug for SlackAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackAdapter").field("config", &self.config).finish()
    }
}

impl SlackAdapter {
    /// Checks the configuration; connects only when run.
    pub fn new(config: Config) -> Result<Self, AdapterError> {
        config.validate().map_err(|problems| AdapterError::Config(problems.join("; ")))?;
        Ok(SlackAdapter { config, events: None })
    }
}

impl AdapterConfig for Config {
    const NAME: &'static str = "slack";

    fn problems(&self) -> Vec<String> {
        self.validate().err().unwrap_or_default()
    }

    /// In Events API mode Slack posts to Footnote's own server, so the adapter brings the
    /// [`events_router`] and every instance serves it (one state for the routes and the adapter);
    /// a Socket Mode connection is one instance's at a time.
    fn build(self, context: &AdapterContext) -> Result<Built, AdapterError> {
        let identity = format!("bot token {}", fingerprint(self.bot_token.expose_secret()));
        SlackAdapter::new(self.clone())?;
        match self.mode {
            Mode::Socket => {
                Ok(Built::new(identity, move || Ok(Box::new(SlackAdapter::new(self.clone())?) as Box<dyn Adapter>)))
            }
            Mode::Events => {
                let state = SlackState::new(self.clone(), context.gateway.clone())?;
                let routes = events_router(state.clone());
                let start = move || {
                    let adapter = SlackAdapter { config: self.clone(), events: Some(state.clone()) };
                    Ok(Box::new(adapter) as Box<dyn Adapter>)
                };
                Ok(Built::new(identity, start).shared().with_routes(routes))
            }
        }
    }
}

#[async_trait]
impl Adapter for SlackAdapter {
    fn name(&self) -> &'static str {
        "slack"
    }

    /// In Socket Mode, serves the WebSocket until `shutdown`. In Events API mode, checks the bot
    /// token and waits: the HTTP server serves [`events_router`].
    async fn run(self: Box<Self>, gateway: Arc<dyn Gateway>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        // slack-morphism's WebSocket client uses the process-wide rustls provider.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let state = match self.events {
            Some(state) => state,
            None => SlackState::new(self.config.clone(), gateway)?,
        };
        let me = state.web().identity().await.map_err(|error| {
            let text = error.to_string();
            if text.contains("invalid_auth") || text.contains("not_authed") || text.contains("account_inactive") {
                AdapterError::Config("Slack refused the bot token (adapters.slack.bot_token)".into())
            } else {
                AdapterError::Connection(text)
            }
        })?;
        tracing::info!(bot_user = me.user_id, mode = ?self.config.mode, "Slack adapter connected.");
        match self.config.mode {
            Mode::Events => {
                shutdown.cancelled().await;
                Ok(())
            }
            Mode::Socket => socket_mode(state, &self.config, shutdown).await,
        }
    }
}

async fn socket_mode(state: SlackState, config: &Config, shutdown: CancellationToken) -> Result<(), AdapterError> {
    let app_token = config
        .app_token
        .as_ref()
        .ok_or_else(|| AdapterError::Config("adapters.slack.app_token is required in socket mode".into()))?;
    let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose_secret().to_owned()));
    let resume = state.clone();
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(state.web().client())
            .with_error_handler(on_error)
            .with_user_state(state),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new().with_command_events(on_command).with_push_events(on_push);
    let listener = SlackClientSocketModeListener::new(&SlackClientSocketModeConfig::new(), environment, callbacks);
    listener.listen_for(&token).await.map_err(|e| AdapterError::Connection(format!("Socket Mode: {e}")))?;
    listener.start().await;
    // Taking over from an instance that stopped: its unfinished questions get an "ask again".
    resume.tell_unfinished().await;
    shutdown.cancelled().await;
    listener.shutdown().await;
    Ok(())
}

async fn state_of(states: &SlackClientEventsUserState) -> Option<SlackState> {
    states.read().await.get_user_state::<SlackState>().cloned()
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<web::Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(state) = state_of(&states).await {
        match serde_json::to_value(&event) {
            Ok(body) => {
                state.accept_event(body);
            }
            Err(error) => tracing::warn!(%error, "Could not read a Socket Mode event."),
        }
    }
    Ok(())
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackClient<web::Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let text = match (state_of(&states).await, serde_json::to_value(&event)) {
        (Some(state), Ok(body)) => state.accept_command(&convert::form_from_json(&body)),
        _ => "Something went wrong on my side; the administrator can find the details in the log.".to_owned(),
    };
    Ok(SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
        .with_response_type(SlackMessageResponseType::Ephemeral))
}

fn on_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SlackClient<web::Connector>>,
    _states: SlackClientEventsUserState,
) -> HttpStatusCode {
    tracing::warn!(%error, "Slack Socket Mode error.");
    // Acknowledge anyway: a redelivery would be dropped as a duplicate.
    HttpStatusCode::OK
}

#[cfg(test)]
mod tests {
    //! Socket Mode hands over slack-morphism's typed events; they must map exactly as the raw
    //! Events API JSON does.

    use serde_json::json;

    use super::*;
    use crate::convert::{CommandAction, Inbound};

    #[test]
    fn typed_push_events_round_trip_into_the_same_mapping() {
        let raw = json!({
            "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
            "event_id": "Ev9", "event_time": 1515449522,
            "event": {"type": "message", "channel": "D024BE91L", "user": "U1", "text": "hi there",
                "ts": "1355517523.000005", "event_ts": "1355517523.000005", "channel_type": "im",
                "files": [{"id": "F1", "name": "a.md", "mimetype": "text/markdown",
                    "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/a.md"}]}
        });
        let typed: SlackPushEventCallback = serde_json::from_value(raw.clone()).expect("slack-morphism reads it");
        let again = serde_json::to_value(&typed).expect("serialises");
        let from_raw = convert::parse_event_callback(&raw, Some("U0BOT"));
        let from_typed = convert::parse_event_callback(&again, Some("U0BOT"));
        assert!(matches!(&from_raw, Inbound::Message(m) if m.files.len() == 1 && m.text == "hi there"));
        assert_eq!(from_raw, from_typed);

        let mention = json!({"team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": "Ev10",
            "event_time": 1, "event": {"type": "app_mention", "user": "U1", "text": "<@U0BOT> why?",
            "ts": "2.000001", "thread_ts": "1.000001", "channel": "C1", "event_ts": "2.000001"}});
        let typed: SlackPushEventCallback = serde_json::from_value(mention.clone()).expect("reads");
        let again = serde_json::to_value(&typed).expect("serialises");
        assert_eq!(
            convert::parse_event_callback(&mention, Some("U0BOT")),
            convert::parse_event_callback(&again, Some("U0BOT"))
        );
    }

    #[test]
    fn typed_commands_keep_their_fields() {
        let raw = json!({"team_id": "T1", "channel_id": "C1", "user_id": "U1", "command": "/footnote",
            "text": "forget doc_1", "response_url": "https://hooks.slack.com/commands/1/2", "trigger_id": "t",
            "api_app_id": "A1"});
        let typed: SlackCommandEvent = serde_json::from_value(raw).expect("slack-morphism reads it");
        let fields = convert::form_from_json(&serde_json::to_value(&typed).expect("serialises"));
        let command = convert::parse_command(&fields).expect("maps");
        assert_eq!(command.action, CommandAction::Forget("doc_1".into()));
        assert_eq!(command.scope.space.as_deref(), Some("T1"));
        assert_eq!(command.response_url.as_deref(), Some("https://hooks.slack.com/commands/1/2"));
    }

    #[test]
    fn new_rejects_an_unusable_config() {
        assert!(matches!(SlackAdapter::new(Config::new("xoxb-1")), Err(AdapterError::Config(_))));
        let mut config = Config::new("xoxb-1");
        config.app_token = Some("xapp-1".to_owned().into());
        let adapter = SlackAdapter::new(config).expect("valid");
        assert_eq!(adapter.name(), "slack");
    }
}
