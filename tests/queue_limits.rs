//! One user cannot fill the model queue: a per-user cap on waiting questions, a rate limit on
//! uploads, a warm-up that runs once however many ask for it (with a time limit and a rate
//! limit), and a question whose asker went away (HTTP client, server-sent events) leaving the
//! queue at once instead of when its first token is due.

mod common;
mod service;

use std::time::{Duration, Instant};

use common::*;
use footnote::rag::gateway::Core;
use footnote_adapter::{AskError, AskEvent, Gateway, GatewayError, IngestError, Question, Scope};
use futures::StreamExt;
use futures::stream::BoxStream;
use service::*;

/// Polls `check` every 20 ms until it holds, failing with `what` after `within`.
async fn until(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a question and returns its (unread) event stream, which keeps it alive.
async fn start_ask(core: &Core, scope: &Scope, user: &str) -> BoxStream<'static, AskEvent> {
    core.ask_stream(scope, &member(user), Question::new("What do penguins eat?")).await
}

#[tokio::test]
async fn one_user_cannot_fill_the_queue_but_others_still_get_in() {
    let mut env = TestEnv::new().await;
    env.config.ollama.max_parallel = 1;
    env.config.limits.queue_per_user = 2;
    let core = env.core().await;
    let here = room("slack", Some("T"), "C");
    core.ingest(&here, &member("u"), upload(ZOO[0].0, ZOO[0].1)).await.unwrap();
    env.double.set_token_delay(Duration::from_millis(500));
    let queue = &core.rag().queue();

    let _running = start_ask(&core, &here, "eve").await;
    until(Duration::from_secs(10), "eve's first question running", || queue.running() == 1).await;
    let _w1 = start_ask(&core, &here, "eve").await;
    until(Duration::from_secs(10), "eve's second question waiting", || queue.waiting() == 1).await;
    let _w2 = start_ask(&core, &here, "eve").await;
    until(Duration::from_secs(10), "eve's third question waiting", || queue.waiting() == 2).await;
    let mut refused = start_ask(&core, &here, "eve").await;
    match refused.next().await {
        Some(AskEvent::Failed(e @ AskError::RateLimited(_))) => {
            assert!(e.user_message().starts_with("You are asking faster than I can answer"), "{}", e.user_message());
        }
        other => panic!("eve's fourth question: {other:?}"),
    }
    let mut bob = start_ask(&core, &here, "bob").await;
    match bob.next().await {
        Some(AskEvent::Queued { position }) => assert!(position >= 1),
        other => panic!("bob still gets in: {other:?}"),
    }
    assert_eq!(queue.waiting(), 3);
}

#[tokio::test]
async fn uploads_are_rate_limited_per_user() {
    let mut env = TestEnv::new().await;
    env.config.limits.ingest_per_minute = 1;
    env.config.limits.ingest_burst = 2;
    let core = env.core().await;
    let here = room("discord", Some("g"), "c");
    for (name, text) in &ZOO[..2] {
        core.ingest(&here, &member("eve"), upload(name, text)).await.unwrap();
    }
    let refused = core.ingest(&here, &member("eve"), upload(ZOO[2].0, ZOO[2].1)).await.unwrap_err();
    let IngestError::RateLimited(wait) = &refused else { panic!("{refused:?}") };
    assert!(*wait > Duration::from_secs(20), "{wait:?}");
    assert!(refused.user_message().contains("faster") && refused.user_message().contains("Nothing was added"));
    assert_eq!(core.documents(&here, &member("x")).await.unwrap().len(), 2, "nothing of the refused file was stored");
    core.ingest(&here, &member("bob"), upload(ZOO[2].0, ZOO[2].1)).await.expect("another user is not limited by eve");
    for (name, text) in ZOO {
        ingest(&core, "local", name, text).await; // the operator is not limited
    }
}

#[tokio::test]
async fn warm_up_runs_once_for_many_askers_within_a_time_limit_and_a_rate_limit() {
    let mut env = TestEnv::new().await;
    env.config.limits.rate_per_minute = 1;
    env.config.limits.rate_burst = 1;
    let core = env.core().await;
    env.double.unload_all();
    env.double.set_load_delay(Duration::from_millis(800));
    env.double.reset_requests();

    let here = room("discord", Some("g"), "c");
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let (core, here) = (core.clone(), here.clone());
            tokio::spawn(async move { core.warmup(&here, &member(&format!("u{i}"))).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every asker gets the warm-up's report");
    }
    let chat_loads = env.double.requests().iter().filter(|r| r.path == "/api/chat").count();
    assert_eq!(chat_loads, 1, "one load for six askers");

    // Asking again at once: u0 is over its allowance.
    let limited = core.warmup(&here, &member("u0")).await.unwrap_err();
    let GatewayError::Unavailable(message) = &limited else { panic!("{limited:?}") };
    assert!(message.starts_with("You are asking faster"), "{message}");
}

#[tokio::test]
async fn a_warm_up_that_takes_too_long_ends_with_a_reply_and_frees_the_queue() {
    let mut env = TestEnv::new().await;
    env.config.limits.answer_timeout = Duration::from_millis(500);
    let core = env.core().await;
    env.double.unload_all();
    env.double.set_load_delay(Duration::from_secs(5));
    let here = room("discord", Some("g"), "c");
    let started = Instant::now();
    let timed_out = core.warmup(&here, &member("u9")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(matches!(timed_out, GatewayError::Unavailable(_)), "{timed_out:?}");
    assert_eq!((core.rag().queue().running(), core.rag().queue().waiting()), (0, 0));
}

/// Starts a slow answer over HTTP that holds the only model slot; returns its response.
async fn occupy_the_model(running: &footnote::serve::Running) -> reqwest::Response {
    let mut reply = client()
        .post(url(running, "/api/ask/stream"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap();
    let mut body = String::new();
    while !body.contains("event: token") {
        body.push_str(&String::from_utf8_lossy(&reply.chunk().await.unwrap().expect("more of the stream")));
    }
    reply
}

#[tokio::test]
async fn a_question_whose_asker_went_away_leaves_the_queue_at_once() {
    let env = TestEnv::new().await;
    let mut cfg = config(&env);
    cfg.ollama.max_parallel = 1;
    let running = start(cfg, Vec::new()).await;
    ingest(&running.core, "default", ZOO[0].0, ZOO[0].1).await;
    // The first answer is far longer than the test: a waiting question can only leave the queue
    // by being abandoned, never by being admitted when the first one ends.
    env.double.set_reply(Some(std::sync::Arc::new(|_: &[serde_json::Value]| "Penguins eat krill [1]. ".repeat(400))));
    env.double.set_token_delay(Duration::from_millis(500));
    let queue = running.core.rag().queue().clone();
    let first = occupy_the_model(&running).await;
    assert_eq!(queue.running(), 1);

    // A streamed question that waits, read until it says so, then closed by its client.
    let mut waiting = client()
        .post(url(&running, "/api/ask/stream"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap();
    let mut body = String::new();
    while !body.contains("event: queued") {
        body.push_str(&String::from_utf8_lossy(&waiting.chunk().await.unwrap().expect("more of the stream")));
    }
    assert_eq!(queue.waiting(), 1);
    drop(waiting);
    until(Duration::from_secs(5), "the abandoned stream to leave the queue", || queue.waiting() == 0).await;
    assert_eq!(queue.running(), 1, "while the first answer is still being written");

    // A plain question whose client gives up before its answer.
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(1500)).build().unwrap();
    let ask =
        impatient.post(url(&running, "/api/ask")).json(&serde_json::json!({ "question": "What do penguins eat?" }));
    let gave_up = tokio::spawn(ask.send());
    until(Duration::from_secs(5), "the plain question to wait", || queue.waiting() == 1).await;
    assert!(gave_up.await.unwrap().is_err(), "the client timed out");
    until(Duration::from_secs(5), "the abandoned question to leave the queue", || queue.waiting() == 0).await;
    assert_eq!(queue.running(), 1, "while the first answer is still being written");
    drop(first);
    until(Duration::from_secs(5), "the first answer to stop too", || queue.running() == 0).await;
    running.stop().await.unwrap();
}
