//! `footnote-discord`: the Discord adapter of Footnote, built on serenity.
//!
//! People ask with `/ask`, by mentioning the bot, or in a direct message; they add documents with
//! `/ingest` or by mentioning the bot with attachments. Answers stream into a thread, keep their
//! `[n]` markers, and list the numbered sources in an embed.
//!
//! - [`config`]: the `[adapters.discord]` section.
//! - [`convert`]: pure mapping from Discord payloads to gateway calls.
//! - [`reply`]: pure rendering of answers and reports within Discord's limits.
//! - [`stream`]: where a reply goes and how a streamed answer is shown there.
//! - [`handler`]: the serenity event handler.

pub mod config;
pub mod convert;
pub mod handler;
pub mod reply;
pub mod stream;

use std::sync::Arc;

use async_trait::async_trait;
use footnote_adapter::setup::fingerprint;
use footnote_adapter::{Adapter, AdapterConfig, AdapterContext, AdapterError, Built, CancellationToken, Gateway};
use secrecy::ExposeSecret;
use serenity::all::{ApplicationId, ClientBuilder, GatewayIntents, Http, HttpBuilder, Permissions};

pub use config::Config;
pub use handler::{Handler, Settings};

/// The gateway intents the bot always asks for; Guilds fills the cache with channels, threads
/// and roles (for thread detection and the owner/administrator check).
pub const BASE_INTENTS: GatewayIntents =
    GatewayIntents::GUILDS.union(GatewayIntents::GUILD_MESSAGES).union(GatewayIntents::DIRECT_MESSAGES);

/// The intents for `config`: [`BASE_INTENTS`], plus the privileged Message Content intent unless
/// it is turned off.
pub fn intents(config: &Config) -> GatewayIntents {
    if config.message_content { BASE_INTENTS | GatewayIntents::MESSAGE_CONTENT } else { BASE_INTENTS }
}

/// The least permissions the bot needs in a channel, for the invite URL (see the README): View
/// Channels, Send Messages, Send Messages in Threads, Create Public Threads, Embed Links and Read
/// Message History.
pub const INVITE_PERMISSIONS: Permissions = Permissions::VIEW_CHANNEL
    .union(Permissions::SEND_MESSAGES)
    .union(Permissions::SEND_MESSAGES_IN_THREADS)
    .union(Permissions::CREATE_PUBLIC_THREADS)
    .union(Permissions::EMBED_LINKS)
    .union(Permissions::READ_MESSAGE_HISTORY);

/// The Discord adapter.
#[derive(Debug)]
pub struct DiscordAdapter {
    config: Config,
}

impl DiscordAdapter {
    /// Checks the configuration and builds the adapter; connecting happens in [`Adapter::run`].
    pub fn new(config: Config) -> Result<Self, AdapterError> {
        config.validate().map_err(|problems| AdapterError::Config(problems.join("; ")))?;
        Ok(DiscordAdapter { config })
    }
}

impl AdapterConfig for Config {
    const NAME: &'static str = "discord";

    fn problems(&self) -> Vec<String> {
        self.validate().err().unwrap_or_default()
    }

    fn build(self, _: &AdapterContext) -> Result<Built, AdapterError> {
        // One gateway session per bot: the application, or the token when the id is not given.
        let identity = match self.application_id {
            Some(id) => format!("application {id}"),
            None => format!("bot token {}", fingerprint(self.token.expose_secret())),
        };
        DiscordAdapter::new(self.clone())?;
        Ok(Built::new(identity, move || Ok(Box::new(DiscordAdapter::new(self.clone())?) as Box<dyn Adapter>)))
    }
}

/// The REST client for `config`: the token, the application id when known, and the API base for
/// a proxy or test double (whose rate limiting is then its own business, as serenity's limiter
/// always talks to discord.com).
pub fn http_client(config: &Config) -> Http {
    let mut builder = HttpBuilder::new(config.token.expose_secret());
    if let Some(id) = config.application_id {
        builder = builder.application_id(ApplicationId::new(id));
    }
    if let Some(base) = &config.api_base {
        builder = builder.proxy(base.trim_end_matches('/')).ratelimiter_disabled(true);
    }
    builder.build()
}

fn run_error(error: &serenity::Error) -> AdapterError {
    use serenity::all::GatewayError as G;
    match error {
        serenity::Error::Gateway(G::InvalidAuthentication) => {
            AdapterError::Config("Discord refused the bot token: reset it in the Developer Portal".into())
        }
        serenity::Error::Gateway(G::DisallowedGatewayIntents) => AdapterError::Config(
            "Discord refused the Message Content intent: turn it on under Bot → Privileged Gateway Intents, \
             or set adapters.discord.message_content = false"
                .into(),
        ),
        serenity::Error::Gateway(G::InvalidGatewayIntents) => {
            AdapterError::Config("Discord refused the gateway intents".into())
        }
        other => AdapterError::Connection(other.to_string()),
    }
}

#[async_trait]
impl Adapter for DiscordAdapter {
    fn name(&self) -> &'static str {
        "discord"
    }

    async fn run(self: Box<Self>, gateway: Arc<dyn Gateway>, shutdown: CancellationToken) -> Result<(), AdapterError> {
        let handler = Arc::new(Handler::new(gateway, Settings::from(&self.config)));
        let mut client = ClientBuilder::new_with_http(http_client(&self.config), intents(&self.config))
            .event_handler(handler::Events(handler))
            .await
            .map_err(|e| run_error(&e))?;
        let shards = client.shard_manager.clone();
        tracing::info!(adapter = "discord", "Connecting to Discord.");
        tokio::select! {
            result = client.start() => result.map_err(|e| run_error(&e)),
            () = shutdown.cancelled() => {
                tracing::info!(adapter = "discord", "Disconnecting from Discord.");
                shards.shutdown_all().await;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_invite_url_carries_the_minimal_permissions() {
        let readme = include_str!("../README.md");
        let expected = format!("permissions={}", INVITE_PERMISSIONS.bits());
        assert!(readme.contains(&expected), "README must contain {expected}");
    }

    #[test]
    fn message_content_is_requested_unless_turned_off() {
        let mut config = Config::new("t");
        assert!(intents(&config).contains(GatewayIntents::MESSAGE_CONTENT | GatewayIntents::GUILD_MESSAGES));
        config.message_content = false;
        assert_eq!(intents(&config), BASE_INTENTS);
    }

    #[test]
    fn new_refuses_a_bad_config_with_every_problem() {
        let mut config = Config::new(" ");
        config.max_attachment_bytes = 0;
        let Err(AdapterError::Config(text)) = DiscordAdapter::new(config) else { panic!("accepted") };
        assert!(text.contains("token") && text.contains("max_attachment_bytes"), "{text}");
        let adapter = DiscordAdapter::new(Config::new("abc.def.ghi")).map_err(|e| e.to_string());
        assert_eq!(adapter.map(|a| a.name()), Ok("discord"));
    }
}
