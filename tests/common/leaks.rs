//! The leak suite: no question in one scope ever sees another scope's documents. It runs over any
//! [`Gateway`]: the core in process (`tests/scopes.rs`) and plugins over the wire
//! (`tests/plugins.rs`).

use footnote_adapter::{Actor, AskEvent, Gateway, Question, Scope};
use futures::StreamExt;

use super::upload;

fn room(platform: &str, space: Option<&str>, room: &str) -> Scope {
    Scope { platform: platform.into(), space: space.map(Into::into), room: room.into(), thread: None }
}

fn member(id: &str) -> Actor {
    Actor { user_id: id.into(), display_name: None, roles: Vec::new(), is_owner: false }
}

/// Two guilds with two channels each, plus a Matrix room, all talking about the same things.
pub fn rooms() -> Vec<(Scope, &'static str, &'static str)> {
    vec![
        (
            room("discord", Some("g1"), "c1"),
            "bridge.md",
            "The project budget for the bridge is four million euros; the deadline is March.",
        ),
        (
            room("discord", Some("g1"), "c2"),
            "tunnel.md",
            "The project budget for the tunnel is nine million euros; the deadline is June.",
        ),
        (
            room("discord", Some("g2"), "c1"),
            "dam.md",
            "The project budget for the dam is two million euros; the deadline is May.",
        ),
        (
            room("matrix", None, "!r:example.org"),
            "port.md",
            "The project budget for the port is seven million euros; the deadline is July.",
        ),
    ]
}

pub const QUESTIONS: &[&str] =
    &["project budget deadline", "bridge four million", "tunnel nine million June", "dam May", "port July budget"];

/// Ingests one document per room, then asks every question in every room and checks that each
/// cited document is one the room's collection holds. `gateway_for` gives the gateway a scope's
/// platform is served by.
pub async fn assert_no_leaks<'g>(gateway_for: impl Fn(&Scope) -> &'g dyn Gateway) {
    let uploader = member("uploader");
    for (scope, name, text) in rooms() {
        gateway_for(&scope).ingest(&scope, &uploader, upload(name, text)).await.expect("ingest");
    }
    let mut cited = 0;
    for (scope, _, _) in rooms() {
        let gateway = gateway_for(&scope);
        let visible: Vec<String> =
            gateway.documents(&scope, &uploader).await.unwrap().into_iter().map(|d| d.id).collect();
        for question in QUESTIONS {
            let all: Vec<AskEvent> =
                gateway.ask_stream(&scope, &member("asker"), Question::new(*question)).await.collect().await;
            let Some(AskEvent::Done(answer)) = all.last() else { panic!("{all:?}") };
            cited += answer.citations.len();
            for c in &answer.citations {
                assert!(
                    visible.contains(&c.document_id),
                    "{question:?} in {scope:?} cites {} ({}) of another scope",
                    c.title,
                    c.document_id
                );
            }
        }
    }
    assert!(cited >= rooms().len() * 2, "too few citations for the suite to mean anything: {cited}");
}
