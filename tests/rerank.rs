//! The optional reranking stage (`retrieval.rerank`) end to end against the Ollama double: the
//! chat model grades the candidates and the answer's prompt lists them in the new order; grades
//! that come too late, or a grader that fails, leave the retrieval order standing; and it stays
//! off by default.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use footnote::config::RerankConfig;
use footnote::rag::gateway::Core;
use footnote::rag::{ModelCheck, Rag};
use footnote_adapter::Question;
use footnote_ollama_double::{ModelKind, default_reply};
use serde_json::Value;

const GRADE_ASK: &str = "Grade (0-3)";

/// Two documents about kiwis: BM25 prefers the birds (the word is repeated), the grader the fruit.
async fn kiwis(env: &TestEnv) -> Core {
    let core = env.core().await;
    ingest(&core, "k", "birds.md", "# Kiwi birds\n\nThe kiwi is a flightless kiwi bird; a kiwi lays one large egg.")
        .await;
    ingest(&core, "k", "fruit.md", "# Kiwi fruit\n\nThe kiwi fruit is rich in vitamin C and is picked in late autumn.")
        .await;
    for (name, text) in ZOO {
        ingest(&core, "k", name, text).await;
    }
    core
}

fn last_user_message(messages: &[Value]) -> String {
    messages.last().and_then(|m| m["content"].as_str()).unwrap_or_default().to_owned()
}

/// Grades 3 for passages that mention vitamins, 0 for the others; answers as usual otherwise.
fn grade_the_fruit(messages: &[Value]) -> String {
    let text = last_user_message(messages);
    if !text.contains(GRADE_ASK) {
        return default_reply(messages);
    }
    if text.contains("vitamin") { "3".into() } else { "0".into() }
}

fn chat_bodies(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    let prompts: Vec<String> = env
        .double
        .requests()
        .iter()
        .filter(|r| r.path == "/api/chat")
        .map(|r| r.body["messages"].as_array().map(|m| last_user_message(m)).unwrap_or_default())
        .collect();
    prompts.into_iter().partition(|p| p.contains(GRADE_ASK))
}

/// The title of the first source in an answer prompt (`[1] Title …`).
fn first_source(prompt: &str) -> String {
    let line = prompt.lines().find(|l| l.starts_with("[1] ")).unwrap_or_else(|| panic!("no [1] in {prompt}"));
    line["[1] ".len()..].split(" — ").next().unwrap_or_default().to_owned()
}

/// Reopens the core with `config` (one core per data directory at a time: the BM25 index has a
/// single writer).
async fn reopen(env: &mut TestEnv, old: Core, config: impl FnOnce(&mut RerankConfig)) -> Core {
    drop(old);
    config(&mut env.config.retrieval.rerank);
    Core::new(Rag::open(env.config.clone(), ModelCheck::Refuse).await.expect("open"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graded_candidates_are_reordered_before_the_answer() {
    let mut env = TestEnv::new().await;
    assert!(!env.config.retrieval.rerank.enabled, "reranking is off by default");
    let core = kiwis(&env).await;

    // Without the reranker the birds come first, and nothing is graded.
    env.double.set_reply(Some(Arc::new(grade_the_fruit)));
    env.double.reset_requests();
    ask(&core, "k", Question::new("kiwi")).await;
    let (grading, answers) = chat_bodies(&env);
    assert!(grading.is_empty(), "reranking is off, yet {} grading calls", grading.len());
    assert_eq!(first_source(&answers[0]), "Kiwi birds");

    let core = reopen(&mut env, core, |r| {
        r.enabled = true;
        r.weight = 1.0;
        r.candidates = 4;
    })
    .await;
    env.double.reset_requests();
    let (_, answer) = ask(&core, "k", Question::new("kiwi")).await;
    let (grading, answers) = chat_bodies(&env);
    assert_eq!(grading.len(), 4, "one grading call per candidate");
    assert!(grading.iter().all(|g| g.contains("Question: kiwi")), "{grading:?}");
    assert_eq!(answers.len(), 1);
    assert_eq!(first_source(&answers[0]), "Kiwi fruit", "{}", answers[0]);
    assert_eq!(answer.citations.first().map(|c| c.title.as_str()), Some("Kiwi fruit"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_or_failed_grades_keep_the_retrieval_order() {
    let mut env = TestEnv::new().await;
    let rerank = &mut env.config.retrieval.rerank;
    (rerank.enabled, rerank.weight, rerank.parallel, rerank.candidates) = (true, 1.0, 1, 4);
    rerank.budget = Duration::from_millis(300);
    // A slow grader (a grading model that takes 700 ms to load): the budget runs out before any
    // grade arrives; the answer comes in the retrieval order, without waiting for the late grade.
    rerank.model = "slow-grader".into();
    env.double.add_model("slow-grader", ModelKind::Chat);
    let core = kiwis(&env).await;
    core.rag().warmup().await.expect("the chat and embedding models load");
    env.double.set_load_delay(Duration::from_millis(700));
    env.double.set_reply(Some(Arc::new(grade_the_fruit)));
    env.double.reset_requests();
    let started = std::time::Instant::now();
    let (_, answer) = ask(&core, "k", Question::new("kiwi")).await;
    let took = started.elapsed();
    let (grading, answers) = chat_bodies(&env);
    assert_eq!(grading.len(), 1, "one call in flight when the budget ran out, none started after");
    assert_eq!(first_source(&answers[0]), "Kiwi birds");
    assert_eq!(answer.citations.first().map(|c| c.title.as_str()), Some("Kiwi birds"));
    assert!(took < Duration::from_millis(700), "the answer waited for the late grade: {took:?}");
    env.double.set_load_delay(Duration::ZERO);

    // A grader that answers something other than a grade grades nothing: the order stands.
    let core = reopen(&mut env, core, |r| {
        r.model = String::new();
        r.budget = Duration::from_secs(5);
    })
    .await;
    env.double.set_reply(Some(Arc::new(|m: &[Value]| {
        if last_user_message(m).contains(GRADE_ASK) { "very relevant".into() } else { default_reply(m) }
    })));
    env.double.reset_requests();
    ask(&core, "k", Question::new("kiwi")).await;
    let (grading, answers) = chat_bodies(&env);
    assert_eq!(grading.len(), 4);
    assert_eq!(first_source(&answers[0]), "Kiwi birds");

    // A grading model Ollama does not have: every call fails, the order stands, the answer comes.
    let core = reopen(&mut env, core, |r| r.model = "no-such-grader".into()).await;
    env.double.set_reply(Some(Arc::new(grade_the_fruit)));
    env.double.reset_requests();
    let (_, answer) = ask(&core, "k", Question::new("kiwi")).await;
    assert_eq!(chat_bodies(&env).0.len(), 4, "every candidate was tried");
    assert_eq!(answer.citations.first().map(|c| c.title.as_str()), Some("Kiwi birds"));
}
