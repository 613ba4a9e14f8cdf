//! The support check end to end over the Ollama double: markers kept, moved, dropped and added,
//! unsupported sentences tagged, support levels in the API's JSON, answers cut by the length
//! limit shown as cut short, and the model judge.

mod common;
mod service;

use std::sync::Arc;

use common::*;
use footnote::config::Verify;
use footnote_adapter::{ATTRIBUTED_MARK, AskEvent, CitedBy, NOT_FOUND_TAG, Notice, Question, Support, render};
use service::*;

fn reply(text: &'static str) -> Option<footnote_ollama_double::ReplyFn> {
    Some(Arc::new(move |_: &[serde_json::Value]| text.to_owned()))
}

/// The number the prompt gives the source whose text contains `needle`.
fn number_of(messages: &[serde_json::Value], needle: &str) -> usize {
    let prompt = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str());
    let mut current = 0;
    for line in prompt.unwrap_or_default().lines() {
        if let Some(n) = line.strip_prefix('[').and_then(|l| l.split(']').next()).and_then(|n| n.parse().ok()) {
            current = n;
        }
        if line.contains(needle) {
            return current;
        }
    }
    panic!("no source contains {needle:?}")
}

/// A reply written by `f` from the numbers of the krill and the magma sources.
fn citing(f: fn(usize, usize) -> String) -> Option<footnote_ollama_double::ReplyFn> {
    Some(Arc::new(move |messages: &[serde_json::Value]| {
        let krill = number_of(messages, "krill");
        let magma =
            if messages.iter().any(|m| m.to_string().contains("magma")) { number_of(messages, "magma") } else { 0 };
        f(krill, magma)
    }))
}

/// A core over the zoo documents, embedding with `all-minilm` (the model the shipped weights
/// were tuned for, so the check compares vectors).
async fn zoo(env: &mut TestEnv) -> footnote::rag::gateway::Core {
    env.config.ollama.embed_model = "all-minilm".into();
    let core = env.core().await;
    for (name, text) in ZOO {
        ingest(&core, "zoo", name, text).await;
    }
    core
}

#[tokio::test]
async fn wrong_markers_move_unsupported_claims_are_tagged_and_right_ones_stay() {
    let mut env = TestEnv::new().await;
    let core = zoo(&mut env).await;
    env.double.set_reply(citing(|krill, _| {
        format!(
            "Penguins eat krill, squid and fish caught while diving [{krill}]. \
             A volcano erupts when magma rises through the crust [{krill}]. \
             Penguins have been seen flying over the Sahara desert at night [{krill}]."
        )
    }));
    let (events, answer) = ask(&core, "zoo", Question::new("What do penguins eat, and why do volcanoes erupt?")).await;
    assert!(events.iter().filter(|e| matches!(e, AskEvent::Token(_))).count() > 1, "still streamed");
    let titles: Vec<&str> = answer.citations.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, vec!["Penguins", "Volcanoes"], "{answer:#?}");
    assert_eq!(
        answer.text,
        format!(
            "Penguins eat krill, squid and fish caught while diving [1]. \
             A volcano erupts when magma rises through the crust [2{ATTRIBUTED_MARK}]. \
             Penguins have been seen flying over the Sahara desert at night {NOT_FOUND_TAG}."
        )
    );
    assert_eq!(answer.citations[0].support, Support::Supported);
    assert_eq!(answer.citations[0].cited_by, CitedBy::Model);
    assert_eq!(answer.citations[1].cited_by, CitedBy::Footnote);
    let supports: Vec<Support> = answer.sentences.iter().map(|s| s.support).collect();
    assert_eq!(supports, vec![Support::Supported, Support::Supported, Support::NotFound]);
    assert!(render::answer_plain(&answer).contains(render::ATTRIBUTED_NOTE));
    // The check embedded the answer's three sentences and their contraries in one call.
    let embeds: Vec<_> = env.double.requests().into_iter().filter(|r| r.path == "/api/embed").collect();
    let last = embeds.last().expect("an embed call");
    let inputs: Vec<&str> = last.body["input"].as_array().expect("inputs").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(inputs.len(), 6, "{:?}", last.body);
    assert_eq!(inputs[0], "Penguins eat krill, squid and fish caught while diving");
    assert_eq!(inputs[3], "It is not true that penguins eat krill, squid and fish caught while diving");
    assert_eq!(inputs[5], "Penguins have not been seen flying over the Sahara desert at night");
}

#[tokio::test]
async fn an_answer_without_markers_gets_footnote_attributions() {
    let mut env = TestEnv::new().await;
    let core = zoo(&mut env).await;
    env.double.set_reply(reply("Penguins eat krill, squid and fish caught while diving."));
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.text, format!("Penguins eat krill, squid and fish caught while diving [1{ATTRIBUTED_MARK}]."));
    assert_eq!(answer.notice, None, "attributed, so not shown as uncited");
    assert_eq!(answer.citations.len(), 1);
    assert_eq!(answer.citations[0].title, "Penguins");
    assert_eq!((answer.citations[0].support, answer.citations[0].cited_by), (Support::Supported, CitedBy::Footnote));
}

#[tokio::test]
async fn an_answer_with_nothing_to_attribute_still_lists_its_sources_as_not_cited() {
    let mut env = TestEnv::new().await;
    let core = zoo(&mut env).await;
    env.double.set_reply(reply("They do."));
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.notice, Some(Notice::Uncited));
    assert!(answer.citations.iter().all(|c| c.support == Support::NotCited && c.cited_by == CitedBy::None));
}

#[tokio::test]
async fn the_api_json_carries_support_levels() {
    let mut env = TestEnv::new().await;
    env.config.ollama.embed_model = "all-minilm".into();
    let running = start(config(&env), Vec::new()).await;
    let http = client();
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(ZOO[0].1.as_bytes().to_vec()).file_name(ZOO[0].0));
    assert_eq!(http.post(url(&running, "/api/documents")).multipart(form).send().await.unwrap().status(), 200);
    env.double
        .set_reply(citing(|krill, _| format!("Penguins eat krill, squid and fish caught while diving [{krill}].")));
    let body: serde_json::Value = http
        .post(url(&running, "/api/ask"))
        .json(&serde_json::json!({ "question": "What do penguins eat?" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["citations"][0]["support"], "supported", "{body}");
    assert_eq!(body["citations"][0]["cited_by"], "model", "{body}");
    assert!(body["citations"][0]["support_score"].as_f64().is_some_and(|p| p > 0.0 && p <= 1.0), "{body}");
    assert_eq!(body["sentences"][0]["support"], "supported", "{body}");
    assert_eq!(body["cut_short"], false, "{body}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_answer_stopped_by_the_length_limit_is_shown_cut_short() {
    let mut env = TestEnv::new().await;
    env.config.answer.reserve_tokens = 6;
    let core = zoo(&mut env).await;
    env.double.set_reply(reply("Penguins eat krill, squid and fish caught while diving [1]. They also dive deep."));
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert!(answer.cut_short, "{answer:#?}");
    assert!(render::answer_plain(&answer).contains(render::CUT_SHORT_NOTE));
    // The unfinished sentence is not judged.
    assert!(!answer.text.contains(NOT_FOUND_TAG), "{}", answer.text);

    env.double.set_reply(reply("Penguins eat krill [1]."));
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert!(!answer.cut_short, "a finished answer is complete");
}

#[tokio::test]
async fn the_model_judge_decides_a_doubtful_sentence() {
    let mut env = TestEnv::new().await;
    env.config.answer.verify = Verify::Model;
    // Every pair lands between `weak` and `supported`: all doubtful, so the judge is asked.
    env.config.answer.support.supported = 1.0;
    env.config.answer.support.attribute = 1.0;
    env.config.answer.support.weak = 0.0;
    let core = zoo(&mut env).await;
    env.double.set_reply(Some(Arc::new(|messages: &[serde_json::Value]| {
        let user = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str());
        match user {
            Some(q) if q.starts_with("Passage:") => {
                if q.contains("Statement: Penguins eat krill") && q.contains("Penguins eat krill") {
                    "Yes"
                } else {
                    "No"
                }
                .to_owned()
            }
            _ => format!("Penguins eat krill, squid and fish caught while diving [{}].", number_of(messages, "krill")),
        }
    })));
    let (_, answer) = ask(&core, "zoo", Question::new("What do penguins eat?")).await;
    assert_eq!(answer.sentences[0].support, Support::Supported, "{answer:#?}");
    assert_eq!(answer.citations[0].support, Support::Supported);
    let asked = env
        .double
        .requests()
        .iter()
        .filter(|r| r.path == "/api/chat" && r.body.to_string().contains("Does the passage say"))
        .count();
    assert!(asked >= 1, "the judge was asked");
}
