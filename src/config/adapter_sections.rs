//! `[adapters.<name>]`: one untyped section per chat adapter, read by the adapter crate's own
//! configuration type (through the registry in [`crate::adapters`]).
//!
//! The core does not know which keys of a section are secrets (tokens, passwords, and URLs or
//! addresses that can carry credentials), so `Debug` and `Serialize` never show a section's
//! text values: keys, numbers and booleans are shown, every string is redacted.

use std::fmt;

use figment::value::{Dict, Value};
use serde::{Deserialize, Serialize, Serializer};

/// What `Debug` shows instead of a string of an adapter section.
const REDACTED: &str = "[REDACTED]";

/// The adapter sections, by adapter name.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct AdapterSections(pub Dict);

impl std::ops::Deref for AdapterSections {
    type Target = Dict;
    fn deref(&self) -> &Dict {
        &self.0
    }
}

impl std::ops::DerefMut for AdapterSections {
    fn deref_mut(&mut self) -> &mut Dict {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a AdapterSections {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// `value` with every string replaced by `with`.
fn redact(value: &Value, with: &str) -> serde_json::Value {
    match value {
        Value::String(..) => serde_json::Value::String(with.to_owned()),
        Value::Char(..) => serde_json::Value::String(with.to_owned()),
        Value::Bool(_, b) => serde_json::Value::Bool(*b),
        Value::Num(_, n) => match n.to_i128().and_then(|i| i64::try_from(i).ok()) {
            Some(i) => i.into(),
            None => n
                .to_f64()
                .and_then(serde_json::Number::from_f64)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        },
        Value::Empty(..) => serde_json::Value::Null,
        Value::Dict(_, dict) => {
            serde_json::Value::Object(dict.iter().map(|(k, v)| (k.clone(), redact(v, with))).collect())
        }
        Value::Array(_, items) => serde_json::Value::Array(items.iter().map(|v| redact(v, with)).collect()),
    }
}

impl AdapterSections {
    fn redacted(&self, with: &str) -> serde_json::Map<String, serde_json::Value> {
        self.0.iter().map(|(name, section)| (name.clone(), redact(section, with))).collect()
    }
}

impl fmt::Debug for AdapterSections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted(REDACTED)).finish()
    }
}

impl Serialize for AdapterSections {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.redacted("").serialize(s)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail returns figment::Error, as the other config tests do
mod tests {
    use std::path::Path;

    use figment::Jail;

    use crate::config::Config;

    /// Every secret of every adapter: `(adapter, key)`. The test below checks that this list
    /// names every `SecretString` field of every adapter's configuration.
    const SECRETS: &[(&str, &str)] = &[
        ("discord", "token"),
        ("email", "password"),
        ("email", "smtp_password"),
        ("matrix", "password"),
        ("matrix", "access_token"),
        ("matrix", "store_passphrase"),
        ("slack", "bot_token"),
        ("slack", "app_token"),
        ("slack", "signing_secret"),
    ];

    /// A secret value that the adapter's own checks accept (Slack's tokens have a prefix).
    fn marker(adapter: &str, key: &str) -> String {
        let prefix = match (adapter, key) {
            ("slack", "bot_token") => "xoxb-",
            ("slack", "app_token") => "xapp-",
            _ => "",
        };
        format!("{prefix}secret-{adapter}-{key}-7f3a")
    }

    #[test]
    fn the_list_names_every_secret_field_of_every_adapter() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&root).unwrap() {
            let adapter = entry.unwrap().file_name().into_string().unwrap();
            let Ok(source) = std::fs::read_to_string(root.join(&adapter).join("src/config.rs")) else { continue };
            for line in source.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("pub ")
                    && let Some((field, ty)) = rest.split_once(':')
                    && ty.contains("SecretString")
                {
                    found.push((adapter.clone(), field.trim().to_owned()));
                }
            }
        }
        found.sort();
        let mut listed: Vec<(String, String)> =
            SECRETS.iter().map(|(a, k)| ((*a).to_owned(), (*k).to_owned())).collect();
        listed.sort();
        assert_eq!(found, listed, "update SECRETS with the adapters' secret fields");
    }

    #[test]
    fn no_adapter_secret_shows_in_debug_or_serialize() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            // Sections every adapter accepts, so that the configuration loads.
            let settings = |name: &str| match name {
                "email" => {
                    "imap_host = \"imap.example.org\"\nimap_port = 993\nsmtp_host = \"smtp.example.org\"\n\
                            username = \"bot\"\nfrom_address = \"bot@example.org\"\nask_address = \"bot@example.org\"\n\
                            allowed_senders = [\"@example.org\"]\nstate_path = \"email.json\"\n\
                            authserv_id = \"mx.example.org\"\nsmtp_username = \"bot\"\n"
                }
                "matrix" => {
                    "user_id = \"@bot:example.org\"\nallowed_inviters = [\"@hunter2:example.org\"]\n\
                             homeserver = \"https://bot:hunter2@matrix.example.org\"\n"
                }
                _ => "",
            };
            let mut toml = String::new();
            let mut adapter = "";
            for (name, key) in SECRETS {
                if *name != adapter {
                    toml.push_str(&format!("[adapters.{name}]\n{}", settings(name)));
                    adapter = name;
                }
                // Env overrides the file for one of them, so both sources are covered.
                if (*name, *key) != ("slack", "bot_token") {
                    toml.push_str(&format!("{key} = \"{}\"\n", marker(name, key)));
                }
            }
            jail.create_file("footnote.toml", &toml)?;
            jail.set_env("FOOTNOTE_ADAPTERS__SLACK__BOT_TOKEN", marker("slack", "bot_token"));
            let config = Config::load(Some(Path::new("footnote.toml"))).unwrap_or_else(|e| panic!("{e}"));
            let section = config.adapters.get("slack").and_then(|s| s.as_dict()).expect("slack section");
            assert_eq!(section.get("bot_token").and_then(|v| v.as_str()), Some(marker("slack", "bot_token").as_str()));

            let shown = [
                format!("{config:?}"),
                format!("{config:#?}"),
                format!("{:?}", config.adapters),
                serde_json::to_string(&config).unwrap(),
                toml::to_string(&serde_json::to_value(&config).unwrap()).unwrap_or_default(),
            ];
            for text in &shown {
                for (name, key) in SECRETS {
                    assert!(!text.contains(&marker(name, key)), "{name}.{key} shown in {text}");
                }
                assert!(!text.contains("hunter2"), "a credential in a URL or list shown in {text}");
                assert!(text.contains("bot_token") && text.contains("993"), "the structure is still shown: {text}");
            }
            Ok(())
        });
    }
}
