//! Scopes and permissions: which collection a call's [`Scope`] reads and writes, and whether its
//! [`Actor`] may ask, ingest or forget there. Configured in `[scopes]`
//! ([`ScopesConfig`]); enforced by [`Core`](super::gateway::Core) before any work is done, so
//! that no adapter can forget to check.
//!
//! Defaults: each chat room is its own collection; anyone in a room may ask and add documents;
//! only admins may forget. Admins may always do everything. Users listed in `scopes.admins` are
//! admins everywhere on their platform; what the platform reports (room or guild ownership, an
//! `scopes.admin_roles` role, which anyone has in a room they create) makes a user admin of that
//! room's own collection only, never of one other rooms share.

use footnote_adapter::{Actor, Scope};

use crate::config::{Mapping, NamedCollection, Principal, ScopesConfig};

/// Platforms whose scope names its collection directly: the CLI, the HTTP API and the web page.
/// Their callers are the operator (a shell on the machine, or a holder of an API token).
pub const LOCAL_PLATFORMS: &[&str] = &["cli", "http", "web"];

/// The collection every room shares with `mapping = "global"`.
pub const GLOBAL_COLLECTION: &str = "global";

/// Something an actor may or may not do in a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask questions.
    Ask,
    /// Add documents.
    Ingest,
    /// Forget documents.
    Forget,
}

/// The `[scopes]` rules, parsed once.
#[derive(Clone, Debug)]
pub struct Policy {
    cfg: ScopesConfig,
}

impl Policy {
    /// Builds the policy from validated settings.
    pub fn new(cfg: &ScopesConfig) -> Policy {
        Policy { cfg: cfg.clone() }
    }

    /// The collection `scope` reads and writes.
    pub fn collection(&self, scope: &Scope) -> String {
        if LOCAL_PLATFORMS.contains(&scope.platform.as_str()) {
            return scope.room.clone();
        }
        if let Some(named) = self.named(scope) {
            return named.name.clone();
        }
        let room = || room_collection(scope);
        match self.cfg.mapping {
            Mapping::Room => room(),
            Mapping::Space => match &scope.space {
                Some(space) => format!("{}:{}", scope.platform, space),
                None => room(),
            },
            Mapping::Global => GLOBAL_COLLECTION.to_owned(),
        }
    }

    /// Whether `actor` may do `action` in `scope`.
    pub fn allows(&self, scope: &Scope, actor: &Actor, action: Action) -> bool {
        if self.is_admin(scope, actor) {
            return true;
        }
        let named = self.named(scope);
        let rules = match action {
            Action::Ask => named.and_then(|n| n.ask.as_ref()).unwrap_or(&self.cfg.ask),
            Action::Ingest => named.and_then(|n| n.ingest.as_ref()).unwrap_or(&self.cfg.ingest),
            Action::Forget => named.and_then(|n| n.forget.as_ref()).unwrap_or(&self.cfg.forget),
        };
        rules.iter().filter_map(|r| Principal::parse(r)).any(|p| match p {
            Principal::Anyone => true,
            Principal::Admin => false, // checked above
            Principal::User(id) => actor.user_id == id,
            Principal::Role(role) => actor.roles.contains(&role),
        })
    }

    /// Whether `actor` has admin powers in `scope`: users listed in `scopes.admins` everywhere
    /// on their platform; owners and holders of an admin role (powers the platform reports, which
    /// whoever creates a room has there) only over that room's own collection, never over a
    /// collection other rooms share (`space`, `global`, named).
    pub fn is_admin(&self, scope: &Scope, actor: &Actor) -> bool {
        let room_powers = actor.is_owner || actor.roles.iter().any(|r| self.cfg.admin_roles.contains(r));
        self.is_server_admin(scope, actor) || (room_powers && self.is_own_collection(scope))
    }

    /// The local operator, or a user listed in `scopes.admins`: who may see the server's details
    /// (the model server's address, raw errors).
    pub fn is_server_admin(&self, scope: &Scope, actor: &Actor) -> bool {
        self.is_operator(scope)
            || self
                .cfg
                .admins
                .iter()
                .any(|a| a.split_once(':') == Some((scope.platform.as_str(), actor.user_id.as_str())))
    }

    /// True for the CLI, the HTTP API and the web page, whose callers are the operator.
    pub fn is_operator(&self, scope: &Scope) -> bool {
        LOCAL_PLATFORMS.contains(&scope.platform.as_str())
    }

    /// True when `scope` reads and writes its room's own collection (room mapping, no named
    /// collection), which nobody outside the room shares.
    fn is_own_collection(&self, scope: &Scope) -> bool {
        self.is_operator(scope) || (self.named(scope).is_none() && self.collection(scope) == room_collection(scope))
    }

    /// The first named collection listing the scope's room.
    fn named(&self, scope: &Scope) -> Option<&NamedCollection> {
        self.cfg.collections.iter().find(|c| {
            c.rooms.iter().any(|m| {
                m.platform == scope.platform
                    && m.space.as_ref().is_none_or(|s| scope.space.as_ref() == Some(s))
                    && m.room.as_ref().is_none_or(|r| *r == scope.room)
            })
        })
    }
}

/// The collection of a chat room of its own: `platform:space:room` (or `platform:room`).
fn room_collection(scope: &Scope) -> String {
    match &scope.space {
        Some(space) => format!("{}:{}:{}", scope.platform, space, scope.room),
        None => format!("{}:{}", scope.platform, scope.room),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoomMatch;

    fn room(platform: &str, space: Option<&str>, room: &str) -> Scope {
        Scope { platform: platform.into(), space: space.map(Into::into), room: room.into(), thread: None }
    }

    fn user(id: &str, roles: &[&str]) -> Actor {
        Actor {
            user_id: id.into(),
            display_name: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            is_owner: false,
        }
    }

    #[test]
    fn mappings() {
        let mut cfg = ScopesConfig::default();
        let general = room("discord", Some("g1"), "general");
        assert_eq!(Policy::new(&cfg).collection(&general), "discord:g1:general");
        assert_eq!(Policy::new(&cfg).collection(&room("matrix", None, "!r:x")), "matrix:!r:x");
        assert_eq!(Policy::new(&cfg).collection(&Scope::local("http", "notes")), "notes");
        cfg.mapping = Mapping::Space;
        assert_eq!(Policy::new(&cfg).collection(&general), "discord:g1");
        cfg.mapping = Mapping::Global;
        assert_eq!(Policy::new(&cfg).collection(&general), "global");
        cfg.collections.push(NamedCollection {
            name: "handbook".into(),
            rooms: vec![RoomMatch { platform: "discord".into(), space: Some("g1".into()), room: None }],
            ask: None,
            ingest: None,
            forget: None,
        });
        let p = Policy::new(&cfg);
        assert_eq!(p.collection(&general), "handbook");
        assert_eq!(p.collection(&room("discord", Some("g2"), "general")), "global");
    }

    #[test]
    fn default_rules_let_anyone_ask_and_ingest_and_admins_forget() {
        let p = Policy::new(&ScopesConfig::default());
        let here = room("slack", Some("T1"), "C1");
        let anyone = user("U1", &[]);
        assert!(p.allows(&here, &anyone, Action::Ask));
        assert!(p.allows(&here, &anyone, Action::Ingest));
        assert!(!p.allows(&here, &anyone, Action::Forget));
        assert!(p.allows(&here, &user("U2", &["admin"]), Action::Forget));
        assert!(p.allows(&here, &Actor { is_owner: true, ..anyone }, Action::Forget));
    }

    #[test]
    fn room_powers_stop_at_the_rooms_own_collection() {
        let creator = Actor { is_owner: true, ..user("@eve:evil.example", &["admin"]) };
        let her_room = room("matrix", Some("!space:x"), "!mine:evil.example");
        let mut cfg = ScopesConfig::default();
        assert!(Policy::new(&cfg).allows(&her_room, &creator, Action::Forget), "her own room");
        for mapping in [Mapping::Space, Mapping::Global] {
            cfg.mapping = mapping;
            let p = Policy::new(&cfg);
            assert!(!p.is_admin(&her_room, &creator), "{mapping:?}");
            assert!(!p.allows(&her_room, &creator, Action::Forget), "{mapping:?}: shared with other rooms");
            assert!(p.allows(&her_room, &creator, Action::Ingest));
        }
        cfg.mapping = Mapping::Room;
        cfg.collections.push(NamedCollection {
            name: "handbook".into(),
            rooms: vec![RoomMatch { platform: "matrix".into(), space: None, room: Some("!mine:evil.example".into()) }],
            ask: None,
            ingest: None,
            forget: None,
        });
        assert!(!Policy::new(&cfg).allows(&her_room, &creator, Action::Forget), "a named collection");
        cfg.admins.push("matrix:@eve:evil.example".into());
        assert!(
            Policy::new(&cfg).allows(&her_room, &creator, Action::Forget),
            "configured admins are admins everywhere"
        );
        assert!(Policy::new(&cfg).is_server_admin(&her_room, &creator));
        assert!(
            !Policy::new(&ScopesConfig::default()).is_server_admin(&her_room, &creator),
            "owning a room is not enough"
        );
    }

    #[test]
    fn named_collections_have_their_own_rules_and_config_admins_win() {
        let mut cfg = ScopesConfig { admins: vec!["discord:42".into()], ..Default::default() };
        cfg.collections.push(NamedCollection {
            name: "policies".into(),
            rooms: vec![RoomMatch { platform: "discord".into(), space: None, room: Some("hr".into()) }],
            ask: Some(vec!["role:staff".into()]),
            ingest: Some(vec!["user:7".into()]),
            forget: None,
        });
        let p = Policy::new(&cfg);
        let hr = room("discord", Some("g"), "hr");
        assert!(!p.allows(&hr, &user("1", &[]), Action::Ask));
        assert!(p.allows(&hr, &user("1", &["staff"]), Action::Ask));
        assert!(!p.allows(&hr, &user("1", &["staff"]), Action::Ingest));
        assert!(p.allows(&hr, &user("7", &[]), Action::Ingest));
        assert!(p.allows(&hr, &user("42", &[]), Action::Forget), "configured admin");
        assert!(!p.allows(&room("matrix", None, "hr"), &user("42", &[]), Action::Forget), "admin ids are per platform");
    }
}
