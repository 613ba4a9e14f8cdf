//! The registry reads each section with the adapter's own type and reports every problem.

use std::sync::Arc;

use figment::value::{Dict, Value};
use footnote_adapter::testing::RecordingGateway;
use footnote_adapter::{AdapterContext, CancellationToken};

use super::*;

fn section(pairs: &[(&str, &str)]) -> Value {
    let mut dict = Dict::new();
    for (k, v) in pairs {
        dict.insert((*k).into(), Value::from(*v));
    }
    Value::Dict(Default::default(), dict)
}

fn sections(entries: &[(&str, Value)]) -> Dict {
    entries.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect()
}

fn context(data_dir: &str) -> AdapterContext {
    AdapterContext {
        data_dir: data_dir.into(),
        shutdown: CancellationToken::new(),
        gateway: Arc::new(RecordingGateway::new(Vec::new())),
    }
}

#[test]
fn an_unknown_name_and_an_adapter_not_in_this_build_are_refused_by_name() {
    let unknown = problems(&sections(&[("irc", section(&[]))]));
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert!(unknown[0].contains("no adapter named \"irc\"") && unknown[0].contains("discord"), "{unknown:?}");

    // Runs in every build: what a build without the feature says of the section.
    let missing = Entry::missing("discord").problems(&section(&[]));
    assert!(missing[0].contains("does not include the discord adapter"), "{missing:?}");
    assert!(missing[0].contains("--features discord"), "{missing:?}");
    // And in this build, each adapter left out is refused with that sentence.
    for entry in registry().iter().filter(|e| !e.is_compiled()) {
        let found = problems(&sections(&[(entry.feature, section(&[]))]));
        assert!(found.iter().any(|p| p.contains(&format!("--features {}", entry.feature))), "{found:?}");
    }
    assert!(problems(&Dict::new()).is_empty());
}

#[test]
fn each_adapter_crate_names_itself_as_its_feature() {
    for entry in registry() {
        assert_eq!(entry.name, entry.feature);
    }
}

#[test]
#[cfg(feature = "matrix")]
fn the_matrix_section_is_checked_and_built_by_the_matrix_crate() {
    let bad = sections(&[("matrix", section(&[("homeserver", "matrix.example.org"), ("user_id", "@bot:x")]))]);
    let found = problems(&bad);
    assert!(found.iter().all(|p| p.starts_with("[adapters.matrix]")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("homeserver")) && found.iter().any(|p| p.contains("password")));
    assert!(build(&bad, &context("/srv/footnote")).is_err());

    let good = [("homeserver", "https://matrix.example.org"), ("user_id", "@bot:example.org"), ("password", "pw")];
    let good = sections(&[("matrix", section(&good))]);
    assert!(problems(&good).is_empty());
    let built = build(&good, &context("/srv/footnote")).expect("a complete section builds");
    assert_eq!(built.len(), 1);
    let (name, adapter) = &built[0];
    assert_eq!(*name, "matrix");
    assert_eq!(adapter.identity, "@bot:example.org on https://matrix.example.org");
    assert!(adapter.exclusive && adapter.routes.is_none());
    assert_eq!((adapter.start)().expect("starts").name(), "matrix");
}

#[test]
#[cfg(feature = "discord")]
fn a_discord_section_without_a_token_is_refused_and_a_token_never_shows_in_the_identity() {
    let mut dict = Dict::new();
    dict.insert("application_id".into(), Value::from(1u64));
    let found = problems(&sections(&[("discord", Value::Dict(Default::default(), dict))]));
    assert!(!found.is_empty() && found.iter().all(|p| p.starts_with("[adapters.discord]")), "{found:?}");

    let token = "MTA1.secret-part.of-the-token";
    let built = build(&sections(&[("discord", section(&[("token", token)]))]), &context("/d")).unwrap();
    assert!(built[0].1.identity.starts_with("bot token ") && !built[0].1.identity.contains("secret"));
}

#[test]
#[cfg(feature = "slack")]
fn slack_brings_its_events_routes_and_is_served_by_every_instance_only_in_events_mode() {
    let events = [("bot_token", "xoxb-1-2"), ("mode", "events"), ("signing_secret", "s3cret")];
    let built = build(&sections(&[("slack", section(&events))]), &context("/d")).unwrap();
    let (_, slack) = &built[0];
    assert!(slack.routes.is_some() && !slack.exclusive, "{slack:?}");

    let socket = [("bot_token", "xoxb-1-2"), ("app_token", "xapp-1-2")];
    let built = build(&sections(&[("slack", section(&socket))]), &context("/d")).unwrap();
    let (_, slack) = &built[0];
    assert!(slack.routes.is_none() && slack.exclusive, "{slack:?}");

    let found = problems(&sections(&[("slack", section(&[("bot_token", "xoxb-1"), ("mode", "events")]))]));
    assert!(found.iter().any(|p| p.contains("signing_secret")), "{found:?}");
}
