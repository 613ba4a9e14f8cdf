//! Scopes and permissions through the gateway, as chat adapters call it: the leak suite (no
//! question in one scope ever sees another scope's documents, under every mapping), the
//! permission rules with their replies, the rate limit, the answer timeout and the full queue.

mod common;
mod service;

use std::time::Duration;

use common::*;
use footnote::config::{Mapping, NamedCollection, RoomMatch};
use footnote::rag::gateway::Core;
use footnote_adapter::{Actor, AskError, AskEvent, Gateway, GatewayError, IngestError, Question, Scope};
use futures::StreamExt;
use service::{member, room};

/// A core over `env` with its config changed by `f` (the rate limit is off unless `f` sets it,
/// since the leak suite asks many questions).
async fn core_with(env: &mut TestEnv, f: impl FnOnce(&mut footnote::config::Config)) -> Core {
    env.config.limits.rate_per_minute = 0;
    f(&mut env.config);
    env.core().await
}

async fn events(core: &Core, scope: &Scope, actor: &Actor, text: &str) -> Vec<AskEvent> {
    core.ask_stream(scope, actor, Question::new(text)).await.collect().await
}

/// The leak suite over the core in process.
async fn assert_no_leaks(core: &Core) {
    common::leaks::assert_no_leaks(|_| core as &dyn Gateway).await;
}

#[tokio::test]
async fn each_room_sees_only_its_own_documents() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |_| {}).await;
    assert_no_leaks(&core).await;
    let c1 = core.documents(&room("discord", Some("g1"), "c1"), &member("x")).await.unwrap();
    assert_eq!(c1.len(), 1);
}

#[tokio::test]
async fn a_space_shares_one_collection_and_other_spaces_do_not_see_it() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| c.scopes.mapping = Mapping::Space).await;
    assert_no_leaks(&core).await;
    let g1 = core.documents(&room("discord", Some("g1"), "c9"), &member("x")).await.unwrap();
    assert_eq!(g1.len(), 2, "every channel of guild g1 reads both of its documents");
    let g2 = core.documents(&room("discord", Some("g2"), "c9"), &member("x")).await.unwrap();
    assert_eq!(g2.len(), 1);
}

#[tokio::test]
async fn named_collections_are_shared_by_the_rooms_they_list_only() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| {
        c.scopes.collections.push(NamedCollection {
            name: "projects".into(),
            rooms: vec![
                RoomMatch { platform: "discord".into(), space: Some("g1".into()), room: Some("c1".into()) },
                RoomMatch { platform: "matrix".into(), space: None, room: Some("!r:example.org".into()) },
            ],
            ask: None,
            ingest: None,
            forget: None,
        });
    })
    .await;
    assert_no_leaks(&core).await;
    let shared = core.documents(&room("matrix", None, "!r:example.org"), &member("x")).await.unwrap();
    assert_eq!(shared.len(), 2, "the Discord channel and the Matrix room share `projects`");
    assert!(shared.iter().all(|d| d.collection == "projects"));
    assert_eq!(core.documents(&room("discord", Some("g1"), "c2"), &member("x")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn global_mapping_shares_everything_but_local_collections_stay_apart() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| c.scopes.mapping = Mapping::Global).await;
    assert_no_leaks(&core).await;
    assert_eq!(core.documents(&room("slack", Some("T"), "C"), &member("x")).await.unwrap().len(), 4);
    assert!(core.documents(&Scope::local("http", "default"), &Actor::operator()).await.unwrap().is_empty());
}

#[tokio::test]
async fn permissions_are_enforced_with_clear_replies() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| {
        c.scopes.admins = vec!["discord:boss".into()];
        c.scopes.collections.push(NamedCollection {
            name: "hr".into(),
            rooms: vec![RoomMatch { platform: "discord".into(), space: Some("g1".into()), room: Some("hr".into()) }],
            ask: Some(vec!["role:staff".into()]),
            ingest: Some(vec!["user:clerk".into()]),
            forget: None,
        });
    })
    .await;
    let hr = room("discord", Some("g1"), "hr");
    let general = room("discord", Some("g1"), "general");
    let staff = Actor { roles: vec!["staff".into()], ..member("s") };

    // Ingest: only the clerk (and admins) in #hr; anyone elsewhere.
    let denied = core.ingest(&hr, &staff, upload("pay.md", "Salaries are paid on the 25th.")).await.unwrap_err();
    assert_eq!(denied, IngestError::Denied);
    assert_eq!(denied.user_message(), "You are not allowed to add documents here.");
    let receipt = core.ingest(&hr, &member("clerk"), upload("pay.md", "Salaries are paid on the 25th.")).await.unwrap();
    core.ingest(&general, &member("anyone"), upload("lunch.md", "Lunch is at noon.")).await.unwrap();

    // Ask: staff only in #hr.
    let all = events(&core, &hr, &member("visitor"), "When are salaries paid?").await;
    assert!(matches!(all.as_slice(), [AskEvent::Failed(AskError::Denied)]), "{all:?}");
    assert_eq!(AskError::Denied.user_message(), "You are not allowed to ask questions here.");
    assert!(matches!(events(&core, &hr, &staff, "When are salaries paid?").await.last(), Some(AskEvent::Done(_))));
    assert_eq!(core.documents(&hr, &member("visitor")).await.unwrap_err(), GatewayError::Denied);

    // Forget: admins only (configured admin, admin role, owner), by default.
    assert_eq!(core.forget(&hr, &staff, &receipt.document_id).await.unwrap_err(), GatewayError::Denied);
    assert_eq!(GatewayError::Denied.user_message(), "You are not allowed to do that here.");
    core.forget(&hr, &member("boss"), &receipt.document_id).await.expect("configured admin");
    let lunch = core.documents(&general, &member("x")).await.unwrap().remove(0);
    let owner = Actor { is_owner: true, ..member("o") };
    core.forget(&general, &owner, &lunch.id).await.expect("the room's owner");
}

#[tokio::test]
async fn the_rate_limit_and_the_answer_timeout_reply_in_words() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| {
        c.limits.rate_per_minute = 1;
        c.limits.rate_burst = 2;
        c.limits.answer_timeout = Duration::from_millis(400);
    })
    .await;
    let here = room("slack", Some("T"), "C");
    core.ingest(&here, &member("u"), upload(ZOO[0].0, ZOO[0].1)).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            events(&core, &here, &member("u"), "What do penguins eat?").await.last(),
            Some(AskEvent::Done(_))
        ));
    }
    let all = events(&core, &here, &member("u"), "What do penguins eat?").await;
    let Some(AskEvent::Failed(e @ AskError::RateLimited(wait))) = all.last() else { panic!("{all:?}") };
    assert!(*wait > Duration::from_secs(20), "{wait:?}");
    assert!(
        e.user_message().starts_with("You are asking faster than I can answer. Try again in"),
        "{}",
        e.user_message()
    );
    // Others are not limited by u's questions; admins are never limited.
    assert!(matches!(
        events(&core, &here, &member("v"), "What do penguins eat?").await.last(),
        Some(AskEvent::Done(_))
    ));

    env.double.set_token_delay(Duration::from_millis(300));
    let all = events(&core, &here, &member("w"), "What do penguins eat?").await;
    assert!(matches!(all.last(), Some(AskEvent::Failed(AskError::Timeout))), "{all:?}");
    assert!(AskError::Timeout.user_message().contains("took too long"));
}

#[tokio::test]
async fn a_full_queue_says_busy() {
    let mut env = TestEnv::new().await;
    let core = core_with(&mut env, |c| {
        c.ollama.max_parallel = 1;
        c.limits.queue_max = 1;
    })
    .await;
    let here = room("slack", Some("T"), "C");
    core.ingest(&here, &member("u"), upload(ZOO[0].0, ZOO[0].1)).await.unwrap();
    env.double.set_token_delay(Duration::from_millis(100));
    let asks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|user| {
            let core = core.clone();
            let here = here.clone();
            tokio::spawn(async move { events(&core, &here, &member(user), "What do penguins eat?").await })
        })
        .collect();
    let mut busy = 0;
    for ask in asks {
        match ask.await.unwrap().last() {
            Some(AskEvent::Done(_)) => {}
            Some(AskEvent::Failed(e @ AskError::Unavailable(_))) => {
                assert!(e.user_message().contains("busy"), "{}", e.user_message());
                busy += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(busy, 1, "one runs, one waits, the third is told the bot is busy");
}
