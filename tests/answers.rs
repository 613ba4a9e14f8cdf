//! Answers end to end against the Ollama double: streaming, checked and renumbered citations,
//! empty retrieval, uncited answers, follow-ups, and each Ollama failure as the user sees it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use footnote::rag::{ModelCheck, Rag, RagError};
use footnote_adapter::{Actor, AskError, AskEvent, Gateway, Notice, Question, Role, Turn, render};
use futures::StreamExt;

async fn zoo(env: &TestEnv) -> footnote::rag::gateway::Core {
    let core = env.core().await;
    for (name, text) in ZOO {
        ingest(&core, "zoo", name, text).await;
    }
    core
}

#[tokio::test]
async fn answer_streams_and_cites_the_right_source() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    let (events, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    let streamed: String = events
        .iter()
        .filter_map(|e| match e {
            AskEvent::Token(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(events.iter().filter(|e| matches!(e, AskEvent::Token(_))).count() > 1, "the answer was not streamed");
    assert_eq!(streamed.trim(), answer.text, "streamed text must already carry the final numbers");
    assert_eq!(answer.notice, None);
    assert!(answer.text.contains("[1]"), "{}", answer.text);
    assert_eq!(answer.citations[0].n, 1);
    assert_eq!(answer.citations[0].title, "Penguins");
    assert!(answer.citations[0].snippet.to_lowercase().contains("krill"), "{:?}", answer.citations[0]);
    // The top heading only repeats the title, so the locator shows the section alone.
    assert_eq!(answer.citations[0].locator.heading_path, vec!["Diet"]);
    assert_eq!(answer.model, "qwen2.5:3b-instruct");
    assert!(answer.timings.first_token.is_some());
    // Every marker in the text points at a listed citation, numbered 1..n.
    for (i, c) in answer.citations.iter().enumerate() {
        assert_eq!(c.n as usize, i + 1);
    }
    let rendered = render::answer_plain(&answer);
    assert!(rendered.contains("Sources:\n[1] Penguins — Diet: “"), "{rendered}");
}

#[tokio::test]
async fn markers_are_checked_and_renumbered_by_first_use() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    env.double.set_reply(Some(Arc::new(|_: &[serde_json::Value]| {
        // Sentences too short to be claims: only the markers' numbers are checked here.
        "Magma rises [2]. Flour too [9]. Again [2][1].".to_owned()
    })));
    let (_, answer) = ask(&core, "zoo", Question::new("volcano magma starter flour")).await;
    assert_eq!(answer.text, "Magma rises [1]. Flour too. Again [1][2].");
    assert_eq!(answer.citations.len(), 2);
    assert_eq!(answer.citations[0].n, 1);
    assert_eq!(answer.citations[1].n, 2);
}

#[tokio::test]
async fn an_uncited_answer_is_shown_with_all_its_sources() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    env.double.set_reply(Some(Arc::new(|_: &[serde_json::Value]| "They eat krill.".to_owned())));
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.notice, Some(Notice::Uncited));
    assert_eq!(answer.text, "They eat krill.");
    assert!(!answer.citations.is_empty());
    assert_eq!(answer.citations[0].title, "Penguins");
}

#[tokio::test]
async fn nothing_found_answers_without_calling_the_model() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    env.double.reset_requests();
    let (_, answer) = ask(&core, "empty-collection", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.notice, Some(Notice::NothingFound));
    assert!(answer.text.is_empty(), "the notice alone says it: {:?}", answer.text);
    assert!(answer.citations.is_empty());
    assert!(env.double.requests().iter().all(|r| r.path != "/api/chat"), "the model was asked anyway");
}

#[tokio::test]
async fn follow_up_carries_the_thread_history() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    env.double.reset_requests();
    let question = Question {
        text: "And how long does the male keep it warm?".into(),
        history: vec![
            Turn { role: Role::User, text: "Who keeps the penguin egg warm?".into() },
            Turn { role: Role::Assistant, text: "The male does [1].".into() },
        ],
    };
    let (_, answer) = ask(&core, "zoo", question).await;
    assert_eq!(answer.citations[0].title, "Penguins", "the follow-up lost its context: {answer:?}");
    let chat = env.double.requests().into_iter().find(|r| r.path == "/api/chat").expect("a chat call");
    let messages = chat.body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["system", "user", "assistant", "user"]);
    assert_eq!(messages[1]["content"], "Who keeps the penguin egg warm?");
}

#[tokio::test]
async fn every_ollama_call_carries_keep_alive() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    core.warmup(&scope("zoo"), &Actor::operator()).await.unwrap();
    let requests = env.double.requests();
    let with_body: Vec<_> =
        requests.iter().filter(|r| ["/api/embed", "/api/chat", "/api/generate"].contains(&r.path.as_str())).collect();
    assert!(with_body.len() >= 4);
    for r in with_body {
        assert_eq!(r.body["keep_alive"], "30m", "{} without keep_alive", r.path);
    }
}

#[tokio::test]
async fn a_cut_stream_fails_with_a_clear_message() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    env.double.cut_stream_after(Some(2));
    let events: Vec<AskEvent> = core
        .ask_stream(&scope("zoo"), &Actor::operator(), Question::new("What do penguins eat?"))
        .await
        .collect()
        .await;
    match events.last() {
        Some(AskEvent::Failed(AskError::Unavailable(message))) => {
            assert!(message.contains("stopped in the middle"), "{message}");
        }
        other => panic!("expected a stream-cut failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_chat_model_says_which_pull_to_run() {
    let mut env = TestEnv::new().await;
    env.config.ollama.chat_model = "llama-not-pulled:7b".into();
    let core = zoo(&env).await;
    let error = core.ask(&scope("zoo"), &Actor::operator(), Question::new("What do penguins eat?")).await.unwrap_err();
    assert!(error.user_message().contains("ollama pull llama-not-pulled:7b"), "{}", error.user_message());
}

#[tokio::test]
async fn a_slow_model_times_out() {
    let mut env = TestEnv::new().await;
    env.config.ollama.request_timeout = Duration::from_millis(300);
    let core = zoo(&env).await;
    env.double.set_token_delay(Duration::from_secs(2));
    let error = core.ask(&scope("zoo"), &Actor::operator(), Question::new("What do penguins eat?")).await.unwrap_err();
    assert_eq!(error, AskError::Timeout);
}

#[tokio::test]
async fn loading_model_is_reported_before_the_first_token() {
    let env = TestEnv::new().await;
    let core = zoo(&env).await;
    env.double.set_load_delay(Duration::from_millis(50));
    let (events, _) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    let loading = events.iter().position(|e| matches!(e, AskEvent::LoadingModel)).expect("a LoadingModel event");
    let first_token = events.iter().position(|e| matches!(e, AskEvent::Token(_))).unwrap();
    assert!(loading < first_token);
    // Once loaded, the next answer does not report loading again.
    let (events, _) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert!(!events.iter().any(|e| matches!(e, AskEvent::LoadingModel)));
}

#[tokio::test]
async fn a_different_embedding_model_is_refused_until_reindexed() {
    let mut env = TestEnv::new().await;
    zoo(&env).await;
    env.config.ollama.embed_model = "all-minilm".into();
    let refused = Rag::open(env.config.clone(), ModelCheck::Refuse).await.err().expect("must refuse");
    assert!(matches!(refused, RagError::EmbedModelChanged { .. }));
    assert!(refused.to_string().contains("footnote reindex --embeddings"), "{refused}");

    let rag = Rag::open(env.config.clone(), ModelCheck::Allow).await.unwrap();
    let embedded = rag.reindex(true).await.unwrap();
    assert_eq!(embedded as i64, rag.store().counts(None).await.unwrap().chunks);
    assert_eq!(rag.indexes().vector_index().unwrap().dims(), 384);
    drop(rag);
    let rag = Rag::open(env.config.clone(), ModelCheck::Refuse).await.expect("the new model is now the stored one");
    let (_, answer) = ask(&footnote::rag::gateway::Core::new(rag), "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.citations[0].title, "Penguins");
}
