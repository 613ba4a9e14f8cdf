//! `[[plugins]]`: chat platforms served by plugins in other processes over the wire protocol
//! (`footnote_adapter::wire`). Each entry gives a plugin its own token bound to one platform name.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::rag::access::LOCAL_PLATFORMS;

/// One plugin: its name, the platform its token is bound to, and the token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// A name for the log and `/api/status` (never the token).
    pub name: String,
    /// The platform every scope the plugin sends must name (`irc`, `teams`, …). The `[scopes]`
    /// rules of that platform apply to it exactly as to a built-in adapter.
    pub platform: String,
    /// The plugin's secret (kept only as a hash once the server runs; redacted when shown).
    #[serde(default, serialize_with = "super::serialize_secret")]
    pub token: SecretString,
    /// The name of an environment variable that holds the token instead of `token`.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl PluginConfig {
    /// The token: `token`, or else the variable `token_env` names (empty when neither is set).
    pub fn secret(&self) -> SecretString {
        if !self.token.expose_secret().trim().is_empty() {
            return self.token.clone();
        }
        let from_env = self.token_env.as_deref().and_then(|name| std::env::var(name).ok()).unwrap_or_default();
        SecretString::from(from_env.trim().to_owned())
    }
}

/// Problems with the `[[plugins]]` entries, for [`Config::validate`](super::Config::validate).
pub(crate) fn problems(plugins: &[PluginConfig], p: &mut Vec<String>) {
    let mut names = std::collections::HashSet::new();
    let mut tokens = std::collections::HashSet::new();
    for plugin in plugins {
        let name = plugin.name.trim();
        if name.is_empty() {
            p.push("plugins: every plugin needs a name".into());
        } else if !names.insert(name) {
            p.push(format!("plugins: the name “{name}” is used twice"));
        }
        let platform = plugin.platform.trim();
        if platform.is_empty() || platform.contains(char::is_whitespace) || platform.contains(':') {
            p.push(format!("plugins “{name}”: platform must be one word without `:` (such as \"irc\")"));
        } else if LOCAL_PLATFORMS.contains(&platform) {
            p.push(format!(
                "plugins “{name}”: platform “{platform}” is the operator's own surface; give the plugin a chat platform name"
            ));
        }
        let token = plugin.secret();
        if token.expose_secret().len() < 16 {
            let from = match &plugin.token_env {
                Some(var) if plugin.token.expose_secret().trim().is_empty() => format!(" (from ${var})"),
                _ => String::new(),
            };
            p.push(format!("plugins “{name}”: the token{from} must be at least 16 characters long"));
        } else if !tokens.insert(blake3::hash(token.expose_secret().as_bytes())) {
            p.push(format!("plugins “{name}”: another plugin has the same token"));
        }
    }
}
