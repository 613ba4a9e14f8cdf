//! What chat users may do to documents that are not theirs, through the gateway as adapters
//! call it: replacing a document (same file name) needs the right to forget it; owning a room
//! gives powers over that room's own collection only; admins are rate-limited too; `status`
//! shows chat users a plain sentence and keeps the model server's address for admins.

mod common;
mod service;

use common::*;
use footnote::config::Mapping;
use footnote::rag::gateway::{Core, STATUS_UNREACHABLE};
use footnote_adapter::{Actor, AskError, AskEvent, Gateway, GatewayError, IngestError, IngestOutcome, Question, Scope};
use futures::StreamExt;
use service::{member, room};

async fn core_with(env: &mut TestEnv, f: impl FnOnce(&mut footnote::config::Config)) -> Core {
    f(&mut env.config);
    env.core().await
}

fn owner(id: &str) -> Actor {
    // What the Matrix adapter reports for whoever created the room (power level 100).
    Actor { is_owner: true, roles: vec!["admin".into()], ..member(id) }
}

#[tokio::test]
async fn replacing_a_document_needs_the_right_to_forget_it() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |_| {}).await;
    let here = room("discord", Some("g1"), "c1");
    let admin = owner("admin");
    let first =
        core.ingest(&here, &admin, upload("handbook.md", "# Handbook\n\nThe fire exit is on the left.")).await.unwrap();

    // A member's file of the same name would forget the admin's: refused, the admin's stays.
    let attempt = upload("handbook.md", "# Handbook\n\nThe fire exit is locked; use the window.");
    let refused = core.ingest(&here, &member("eve"), attempt).await.unwrap_err();
    assert_eq!(refused, IngestError::NameTaken { name: "handbook.md".into(), document_id: first.document_id.clone() });
    let message = refused.user_message();
    assert!(
        message.contains("handbook.md") && message.contains("Nothing was added") && message.contains("rename"),
        "{message}"
    );
    let docs = core.documents(&here, &member("eve")).await.unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].id, first.document_id, "the admin's document is untouched");
    // Under another name it is simply added; the same bytes are a duplicate, not an error.
    let renamed = upload("handbook (eve).md", "# Handbook\n\nThe fire exit is locked; use the window.");
    assert_eq!(core.ingest(&here, &member("eve"), renamed).await.unwrap().outcome, IngestOutcome::Added);
    let same = upload("handbook.md", "# Handbook\n\nThe fire exit is on the left.");
    assert_eq!(core.ingest(&here, &member("eve"), same).await.unwrap().outcome, IngestOutcome::Duplicate);
    // Someone who may forget may replace.
    let update = upload("handbook.md", "# Handbook\n\nThe fire exit is on the right now.");
    let replaced = core.ingest(&here, &admin, update).await.unwrap();
    assert_eq!(replaced.outcome, IngestOutcome::Replaced { previous_id: first.document_id });
}

#[tokio::test]
async fn owning_a_room_gives_no_power_over_shared_collections() {
    for mapping in [Mapping::Space, Mapping::Global] {
        let mut env = TestEnv::new().await;
        let core = core_with(&mut env, |c| {
            c.scopes.mapping = mapping;
            c.scopes.admins = vec!["matrix:@boss:example.org".into()];
        })
        .await;
        let shared_room = room("matrix", Some("!space:example.org"), "!team:example.org");
        let boss = member("@boss:example.org");
        let receipt =
            core.ingest(&shared_room, &boss, upload("policy.md", "Holidays are booked in March.")).await.unwrap();

        // Eve creates a room of her own in the same space and invites the bot: she is its
        // owner with power level 100, and her room reads the shared collection.
        let her_room = room("matrix", Some("!space:example.org"), "!eves:evil.example");
        let eve = owner("@eve:evil.example");
        assert_eq!(core.documents(&her_room, &eve).await.unwrap().len(), 1, "{mapping:?}: she reads it");
        let denied = core.forget(&her_room, &eve, &receipt.document_id).await.unwrap_err();
        assert_eq!(denied, GatewayError::Denied, "{mapping:?}");
        let attempt = core.ingest(&her_room, &eve, upload("policy.md", "Holidays are cancelled.")).await.unwrap_err();
        assert!(matches!(attempt, IngestError::NameTaken { .. }), "{mapping:?}: {attempt:?}");
        assert_eq!(core.documents(&shared_room, &boss).await.unwrap()[0].id, receipt.document_id);
        // The configured admin may, from any room.
        core.forget(&her_room, &boss, &receipt.document_id).await.expect("configured admin");
    }

    // With a collection per room, the owner rules her own room.
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |_| {}).await;
    let her_room = room("matrix", None, "!eves:evil.example");
    let eve = owner("@eve:evil.example");
    let receipt = core.ingest(&her_room, &member("@guest:x"), upload("notes.md", "Lunch at noon.")).await.unwrap();
    core.forget(&her_room, &eve, &receipt.document_id).await.expect("owner of the room's own collection");
}

#[tokio::test]
async fn admins_are_rate_limited_too_with_a_larger_allowance() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| {
        c.limits.rate_per_minute = 1;
        c.limits.rate_burst = 1;
    })
    .await;
    let here = room("matrix", None, "!mine:example.org");
    let ask = |actor: Actor| {
        let (core, here) = (core.clone(), here.clone());
        async move {
            let events: Vec<AskEvent> =
                core.ask_stream(&here, &actor, Question::new("anything?")).await.collect().await;
            events.last().cloned()
        }
    };
    assert!(matches!(ask(member("u")).await, Some(AskEvent::Done(_))));
    assert!(matches!(ask(member("u")).await, Some(AskEvent::Failed(AskError::RateLimited(_)))));
    let admin = owner("@owner:example.org");
    for i in 0..footnote::rag::admission::ADMIN_RATE_FACTOR {
        assert!(matches!(ask(admin.clone()).await, Some(AskEvent::Done(_))), "admin question {i}");
    }
    let limited = ask(admin).await;
    assert!(matches!(limited, Some(AskEvent::Failed(AskError::RateLimited(_)))), "{limited:?}");
    // The operator (CLI, HTTP API) is not limited.
    for _ in 0..8 {
        let events: Vec<AskEvent> =
            core.ask_stream(&scope("default"), &Actor::operator(), Question::new("anything?")).await.collect().await;
        assert!(matches!(events.last(), Some(AskEvent::Done(_))));
    }
}

#[tokio::test]
async fn status_shows_chat_users_a_sentence_and_admins_the_detail() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| c.scopes.admins = vec!["discord:boss".into()]).await;
    env.double.stop().await;
    let url = env.config.ollama.url.clone();
    let here: Scope = room("discord", Some("g"), "c");

    for who in [member("anyone"), owner("room-owner")] {
        let status = core.status(&here, &who).await.unwrap();
        assert!(!status.ollama_reachable);
        let problem = status.problem.unwrap();
        assert_eq!(problem, STATUS_UNREACHABLE, "{}", who.user_id);
        assert!(!problem.contains("127.0.0.1") && !problem.contains("http"), "{problem}");
    }
    for (scope, who) in [(here.clone(), member("boss")), (scope("default"), Actor::operator())] {
        let problem = core.status(&scope, &who).await.unwrap().problem.unwrap();
        assert!(problem.contains(&url) && problem.contains("ollama serve"), "{}: {problem}", who.user_id);
    }
}
