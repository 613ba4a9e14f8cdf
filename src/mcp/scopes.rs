//! What a caller of the MCP server (and of the HTTP API) may reach: a [`Grant`] names the
//! collections it may read (search, ask, list, read passages) and, separately, those it may write
//! (add and forget documents). A plain `server.tokens` entry and the operator's own `footnote
//! mcp` hold the whole data directory; a `[[server.scoped_tokens]]` entry, or `footnote mcp
//! --collection NAME --read-only`, holds less. Refusals are sentences a model can act on, and say
//! nothing about collections the caller may not read.

use std::collections::BTreeSet;

use crate::config::ScopedToken;

/// The collection named when a call names none and the grant reaches every collection.
pub use crate::http::DEFAULT_COLLECTION;

/// Which collections a grant reaches for one kind of access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every collection.
    All,
    /// These collections only (none when empty).
    Only(BTreeSet<String>),
}

impl Reach {
    fn contains(&self, collection: &str) -> bool {
        match self {
            Reach::All => true,
            Reach::Only(set) => set.contains(collection),
        }
    }

    /// `["*"]` (or any list holding `*`) is every collection.
    fn from_list(list: &[String]) -> Reach {
        if list.iter().any(|c| c.trim() == "*") {
            return Reach::All;
        }
        Reach::Only(list.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect())
    }

    fn describe(&self) -> String {
        match self {
            Reach::All => "every collection".to_owned(),
            Reach::Only(set) if set.is_empty() => "no collection".to_owned(),
            Reach::Only(set) => set.iter().map(|c| format!("“{c}”")).collect::<Vec<_>>().join(", "),
        }
    }
}

/// What one caller may read and write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// A name for the log (the scoped token's `name`, or `operator`).
    pub name: String,
    read: Reach,
    write: Reach,
}

/// Why a call was refused, as a sentence for the caller (a model reads it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Grant {
    /// Everything: the operator (a plain token, a server without tokens, `footnote mcp`).
    pub fn operator() -> Grant {
        Grant { name: "operator".into(), read: Reach::All, write: Reach::All }
    }

    /// The operator narrowed on the command line: to one collection, and/or to reading.
    pub fn narrowed(collection: Option<&str>, read_only: bool) -> Grant {
        let reach = match collection.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Reach::Only(BTreeSet::from([c.to_owned()])),
            None => Reach::All,
        };
        let write = if read_only { Reach::Only(BTreeSet::new()) } else { reach.clone() };
        Grant { name: "operator".into(), read: reach, write }
    }

    /// The grant of a `[[server.scoped_tokens]]` entry.
    pub fn scoped(token: &ScopedToken) -> Grant {
        Grant { name: token.name.clone(), read: Reach::from_list(&token.read), write: Reach::from_list(&token.write) }
    }

    /// True when nothing is narrowed: the operator's full powers.
    pub fn is_operator(&self) -> bool {
        self.read == Reach::All && self.write == Reach::All
    }

    /// True when the grant may write somewhere.
    pub fn may_write_anything(&self) -> bool {
        self.write != Reach::Only(BTreeSet::new())
    }

    /// The collection a call reads: the one it names, else the grant's only (or first)
    /// readable collection, else `default`. Refused when the grant may not read it.
    pub fn read(&self, named: Option<&str>) -> Result<String, Refused> {
        let collection = pick(named, &self.read);
        if self.read.contains(&collection) {
            Ok(collection)
        } else {
            tracing::info!(grant = %self.name, %collection, "Refused a read outside the grant.");
            Err(Refused(format!(
                "Not allowed: this connection may not read collection “{collection}”. It may read {}.",
                self.read.describe()
            )))
        }
    }

    /// The collection a call writes (adds to or forgets from), chosen like [`Grant::read`].
    pub fn write(&self, named: Option<&str>) -> Result<String, Refused> {
        let collection = pick(named, &self.write);
        if self.write.contains(&collection) {
            Ok(collection)
        } else {
            tracing::info!(grant = %self.name, %collection, "Refused a write outside the grant.");
            Err(Refused(match &self.write {
                Reach::Only(set) if set.is_empty() => {
                    "Not allowed: this connection is read-only; it may not add or forget documents.".to_owned()
                }
                w => format!(
                    "Not allowed: this connection may not add to or forget from collection “{collection}”. It may write to {}.",
                    w.describe()
                ),
            }))
        }
    }

    /// True when the grant may read `collection` (no log line: for filtering).
    pub fn may_read(&self, collection: &str) -> bool {
        self.read.contains(collection)
    }
}

fn pick(named: Option<&str>, reach: &Reach) -> String {
    if let Some(c) = named.map(str::trim).filter(|c| !c.is_empty()) {
        return c.to_owned();
    }
    match reach {
        Reach::Only(set) => set.iter().next().cloned().unwrap_or_else(|| DEFAULT_COLLECTION.to_owned()),
        Reach::All => DEFAULT_COLLECTION.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(read: &[&str], write: &[&str]) -> ScopedToken {
        ScopedToken {
            name: "t".into(),
            token: secrecy::SecretString::from("x".repeat(20)),
            read: read.iter().map(|s| s.to_string()).collect(),
            write: write.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn scoped_tokens_reach_their_collections_only() {
        let g = Grant::scoped(&token(&["a"], &[]));
        assert!(!g.is_operator());
        assert_eq!(g.read(None).unwrap(), "a", "the only readable collection is the default");
        assert_eq!(g.read(Some("a")).unwrap(), "a");
        let refused = g.read(Some("b")).unwrap_err().0;
        assert!(refused.contains("“b”") && refused.contains("“a”"), "{refused}");
        assert!(g.write(Some("a")).unwrap_err().0.contains("read-only"));
        assert!(!g.may_write_anything());
        let g = Grant::scoped(&token(&["*"], &["inbox"]));
        assert_eq!(g.read(Some("anything")).unwrap(), "anything");
        assert_eq!(g.write(None).unwrap(), "inbox");
        assert!(g.write(Some("other")).is_err());
    }

    #[test]
    fn the_operator_narrowed_on_the_command_line() {
        assert!(Grant::operator().is_operator());
        assert!(Grant::narrowed(None, false).is_operator());
        let g = Grant::narrowed(Some("notes"), true);
        assert_eq!(g.read(None).unwrap(), "notes");
        assert!(g.read(Some("default")).is_err());
        assert!(g.write(None).is_err());
        let g = Grant::narrowed(None, true);
        assert_eq!(g.read(Some("x")).unwrap(), "x");
        assert!(g.write(Some("x")).is_err());
    }
}
