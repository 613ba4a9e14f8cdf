//! `[scopes]`: which collection a chat room reads and writes, and who may ask, ingest and forget
//! there. The rules are enforced by the core ([`crate::rag::access`]), never by the adapters.

use serde::{Deserialize, Serialize};

/// How a chat room without a named collection maps to a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mapping {
    /// Each room (channel) is its own collection.
    Room,
    /// All rooms of a space (Discord guild, Matrix space, Slack workspace) share one.
    Space,
    /// One collection for every room of every platform.
    Global,
}

/// `[scopes]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopesConfig {
    /// Default mapping of rooms to collections.
    pub mapping: Mapping,
    /// Users who may do everything everywhere, as `platform:user_id`.
    pub admins: Vec<String>,
    /// Roles (as the platform reports them) that make a user an admin.
    pub admin_roles: Vec<String>,
    /// Who may ask questions, unless a named collection says otherwise.
    pub ask: Vec<String>,
    /// Who may add documents, unless a named collection says otherwise.
    pub ingest: Vec<String>,
    /// Who may forget documents, unless a named collection says otherwise.
    pub forget: Vec<String>,
    /// Named collections shared by the rooms they list.
    pub collections: Vec<NamedCollection>,
}

impl Default for ScopesConfig {
    fn default() -> Self {
        ScopesConfig {
            mapping: Mapping::Room,
            admins: Vec::new(),
            admin_roles: vec!["admin".into()],
            ask: vec![ANYONE.into()],
            ingest: vec![ANYONE.into()],
            forget: vec![ADMIN.into()],
            collections: Vec::new(),
        }
    }
}

/// Rule entry: everybody.
pub const ANYONE: &str = "anyone";
/// Rule entry: owners of the room or space, configured admins and holders of an admin role.
pub const ADMIN: &str = "admin";

/// A collection shared by several rooms, with its own rules if it wants them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCollection {
    /// The collection's name (also what the CLI's `--collection` and the HTTP API use).
    pub name: String,
    /// The rooms that read and write it.
    pub rooms: Vec<RoomMatch>,
    /// Who may ask here (default: `scopes.ask`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<Vec<String>>,
    /// Who may add documents here (default: `scopes.ingest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Vec<String>>,
    /// Who may forget documents here (default: `scopes.forget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget: Option<Vec<String>>,
}

/// Which rooms a named collection covers: a whole platform, a whole space, or one room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomMatch {
    /// `discord`, `matrix`, `slack`, `email`.
    pub platform: String,
    /// The guild/space/workspace id; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// The channel/room id; absent: every room (of the space, if given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
}

/// One entry of an `ask`/`ingest`/`forget` list, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// `anyone`
    Anyone,
    /// `admin`
    Admin,
    /// `user:ID` (the platform's user id)
    User(String),
    /// `role:NAME`
    Role(String),
}

impl Principal {
    /// Parses `anyone`, `admin`, `user:ID` or `role:NAME`.
    pub fn parse(s: &str) -> Option<Principal> {
        match s.trim() {
            ANYONE => Some(Principal::Anyone),
            ADMIN => Some(Principal::Admin),
            other => match other.split_once(':') {
                Some(("user", id)) if !id.is_empty() => Some(Principal::User(id.to_owned())),
                Some(("role", name)) if !name.is_empty() => Some(Principal::Role(name.to_owned())),
                _ => None,
            },
        }
    }
}

impl ScopesConfig {
    pub(crate) fn problems(&self, p: &mut Vec<String>) {
        rule_problems("scopes.ask", &self.ask, p);
        rule_problems("scopes.ingest", &self.ingest, p);
        rule_problems("scopes.forget", &self.forget, p);
        for (i, c) in self.collections.iter().enumerate() {
            let at = format!("scopes.collections[{i}]");
            for (name, rules) in [("ask", &c.ask), ("ingest", &c.ingest), ("forget", &c.forget)] {
                if let Some(rules) = rules {
                    rule_problems(&format!("{at}.{name}"), rules, p);
                }
            }
            if c.name.trim().is_empty() {
                p.push(format!("{at}.name must not be empty"));
            }
            if c.rooms.is_empty() || c.rooms.iter().any(|r| r.platform.trim().is_empty()) {
                p.push(format!("{at}.rooms must list rooms, each with a platform"));
            }
        }
        for admin in &self.admins {
            if !admin.contains(':') {
                p.push(format!("scopes.admins: {admin:?} must be written platform:user_id"));
            }
        }
    }
}

fn rule_problems(what: &str, rules: &[String], p: &mut Vec<String>) {
    for rule in rules {
        if Principal::parse(rule).is_none() {
            p.push(format!("{what}: {rule:?} is not one of \"anyone\", \"admin\", \"user:ID\", \"role:NAME\""));
        }
    }
}
