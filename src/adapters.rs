//! The chat adapters Footnote knows, one line each in [`registry`], and the two things the core
//! does with their `[adapters.<name>]` sections: check them when the configuration is loaded
//! ([`problems`]) and build them when `serve` starts ([`build`]). Everything else an adapter
//! needs is declared by its crate through [`AdapterConfig`]; `serve` runs what [`build`] returns.
//!
//! Adding a platform: a crate under `adapters/` whose configuration type implements
//! [`AdapterConfig`], a cargo feature of the same name as the section, and one line below.

use figment::value::{Dict, Value};
use footnote_adapter::{AdapterConfig, AdapterContext, Built};

/// Every adapter Footnote knows, compiled into this build or not.
pub fn registry() -> Vec<Entry> {
    vec![
        adapter!("discord", footnote_discord::Config),
        adapter!("matrix", footnote_matrix::Config),
        adapter!("slack", footnote_slack::Config),
        adapter!("email", footnote_email::Config),
    ]
}

/// An [`Entry`] for the adapter behind cargo feature `$feature` (also its section name), whose
/// configuration type is `$config`; a build without the feature knows only the name.
macro_rules! adapter {
    ($feature:literal, $config:ty) => {{
        #[cfg(feature = $feature)]
        let entry = Entry::compiled::<$config>($feature);
        #[cfg(not(feature = $feature))]
        let entry = Entry::missing($feature);
        entry
    }};
}
use adapter;

/// One known adapter.
pub struct Entry {
    /// The cargo feature that compiles it in, and the name of its section.
    pub feature: &'static str,
    /// What the adapter crate calls itself ([`AdapterConfig::NAME`]); the feature's name when
    /// the adapter is not in this build.
    pub name: &'static str,
    /// How to read its section; `None` when it is not compiled in.
    reader: Option<Reader>,
}

/// Functions over one adapter's section, made from its [`AdapterConfig`] type.
#[derive(Clone, Copy)]
struct Reader {
    problems: fn(&Value) -> Vec<String>,
    build: fn(&Value, &AdapterContext) -> Result<Built, Vec<String>>,
}

impl Entry {
    /// An adapter compiled into this build.
    pub fn compiled<C: AdapterConfig>(feature: &'static str) -> Entry {
        Entry { feature, name: C::NAME, reader: Some(Reader { problems: problems_of::<C>, build: build_of::<C> }) }
    }

    /// An adapter this build was made without.
    pub fn missing(feature: &'static str) -> Entry {
        Entry { feature, name: feature, reader: None }
    }

    /// Whether this build includes it.
    pub fn is_compiled(&self) -> bool {
        self.reader.is_some()
    }

    /// The problems of its section, each prefixed with the section's name.
    fn problems(&self, section: &Value) -> Vec<String> {
        match self.reader {
            Some(reader) => (reader.problems)(section),
            None => vec![format!(
                "[adapters.{0}] is configured but this build of footnote does not include the {0} adapter: rebuild with `cargo build --release --features {0}` (or remove the section)",
                self.feature
            )],
        }
    }
}

/// `section` read as `C`: its deserialization errors, or its own problems.
fn read<C: AdapterConfig>(section: &Value) -> Result<C, Vec<String>> {
    let prefix = |problem: &dyn std::fmt::Display| format!("[adapters.{}]: {problem}", C::NAME);
    let config: C = section.deserialize().map_err(|e| e.into_iter().map(|e| prefix(&e)).collect::<Vec<_>>())?;
    let problems = config.problems();
    if problems.is_empty() { Ok(config) } else { Err(problems.iter().map(|p| prefix(p)).collect()) }
}

fn problems_of<C: AdapterConfig>(section: &Value) -> Vec<String> {
    read::<C>(section).err().unwrap_or_default()
}

fn build_of<C: AdapterConfig>(section: &Value, context: &AdapterContext) -> Result<Built, Vec<String>> {
    read::<C>(section)?.build(context).map_err(|e| vec![format!("[adapters.{}]: {e}", C::NAME)])
}

/// The section's registry entry, or the problem of a name nobody knows.
fn find<'a>(known: &'a [Entry], name: &str) -> Result<&'a Entry, String> {
    known.iter().find(|entry| entry.feature == name).ok_or_else(|| {
        let names = known.iter().map(|e| e.feature).collect::<Vec<_>>().join(", ");
        format!("[adapters.{name}]: there is no adapter named {name:?} (known: {names})")
    })
}

/// Every problem of the `[adapters.*]` sections: unknown names, adapters not in this build, and
/// what each adapter finds wrong with its own section. Empty when all can work.
pub fn problems(sections: &Dict) -> Vec<String> {
    let known = registry();
    let mut problems = Vec::new();
    for (name, section) in sections {
        match find(&known, name) {
            Ok(entry) => problems.extend(entry.problems(section)),
            Err(problem) => problems.push(problem),
        }
    }
    problems
}

/// Builds every configured adapter, by section name; all problems are reported together.
pub fn build(sections: &Dict, context: &AdapterContext) -> Result<Vec<(&'static str, Built)>, Vec<String>> {
    let known = registry();
    let mut problems = Vec::new();
    let mut built = Vec::new();
    for (name, section) in sections {
        let entry = match find(&known, name) {
            Ok(entry) => entry,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        match entry.reader {
            Some(reader) => match (reader.build)(section, context) {
                Ok(adapter) => built.push((entry.name, adapter)),
                Err(mut found) => problems.append(&mut found),
            },
            None => problems.extend(entry.problems(section)),
        }
    }
    if problems.is_empty() { Ok(built) } else { Err(problems) }
}

#[cfg(test)]
mod tests;
