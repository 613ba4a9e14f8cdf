//! The client against the Ollama double: batching, keep-alive, streaming, warm-up, model facts
//! and every failure the client must name (unreachable, missing model, timeout, cut stream,
//! error lines, context too long, malformed replies).

use std::time::Duration;

use footnote_ollama_double::{OllamaDouble, embed_text};
use futures::StreamExt;
use serde_json::{Value, json};

use super::*;
use crate::config::OllamaConfig;

const CHAT: &str = "qwen2.5:3b-instruct";
const EMBED: &str = "nomic-embed-text";

fn config(d: &OllamaDouble) -> OllamaConfig {
    OllamaConfig { url: d.url.clone(), ..OllamaConfig::default() }
}

fn client(d: &OllamaDouble) -> OllamaClient {
    OllamaClient::new(&config(d)).expect("client")
}

fn question() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("Answer only from the numbered sources and cite them as [n]."),
        ChatMessage::user(
            "[1] france.md\nParis is the capital of France. It has many museums.\n\n\
             [2] baking.md\nBread needs flour, water and yeast.\n\n\
             Question: What is the capital of France?",
        ),
    ]
}

const ANSWER: &str = "According to the documents, Paris is the capital of France [1].";

fn bodies(d: &OllamaDouble, path: &str) -> Vec<Value> {
    d.requests().into_iter().filter(|r| r.path == path).map(|r| r.body).collect()
}

#[tokio::test]
async fn embed_batches_keep_order_and_run_in_parallel() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    let inputs: Vec<String> = (0..70).map(|i| format!("note {i} about topic{i}")).collect();
    let vectors = c.embed(EMBED, &inputs).await.unwrap();
    assert_eq!(vectors.len(), 70);
    for (input, vector) in inputs.iter().zip(&vectors) {
        assert_eq!(vector, &embed_text(input, 768), "order kept for {input:?}");
    }
    let mut sizes: Vec<usize> = bodies(&d, "/api/embed").iter().map(|b| b["input"].as_array().unwrap().len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![6, 32, 32]);
    assert!(c.embed(EMBED, &[]).await.unwrap().is_empty());
    assert_eq!(d.requests().len(), 3, "no call for no input");
}

#[tokio::test]
async fn keep_alive_goes_in_every_body_that_takes_it() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    c.embed(EMBED, &["hello".to_owned()]).await.unwrap();
    c.warm_embed(EMBED).await.unwrap();
    c.warm_chat(CHAT).await.unwrap();
    c.chat(ChatRequest::new(CHAT, question())).await.unwrap();
    let mut stream = c.chat_stream(ChatRequest::new(CHAT, question())).await.unwrap();
    while stream.next().await.is_some() {}
    let generate = GenerateRequest { model: CHAT.into(), prompt: "hi".into(), ..Default::default() };
    c.generate(generate).await.unwrap();
    let recorded = d.requests();
    assert_eq!(recorded.len(), 6);
    for r in &recorded {
        assert_eq!(r.body["keep_alive"], "30m", "{}", r.path);
    }

    // Go cannot parse "-1" as a duration, so a number goes as a JSON number.
    let forever = OllamaConfig { keep_alive: "-1".into(), ..config(&d) };
    OllamaClient::new(&forever).unwrap().warm_chat(CHAT).await.unwrap();
    assert_eq!(d.requests().last().unwrap().body["keep_alive"], json!(-1));
}

#[tokio::test]
async fn chat_stream_yields_tokens_in_order_then_stats() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    let req = ChatRequest { temperature: Some(0.2), num_ctx: Some(4096), ..ChatRequest::new(CHAT, question()) };
    let chunks: Vec<ChatChunk> = c.chat_stream(req).await.unwrap().map(|c| c.expect("chunk")).collect().await;
    let (last, words) = chunks.split_last().unwrap();
    assert!(words.len() >= 3, "several chunks");
    assert!(words.iter().all(|w| !w.done && w.stats.is_none()));
    assert_eq!(chunks.iter().map(|c| c.content.as_str()).collect::<String>(), ANSWER);
    assert!(last.done);
    let stats = last.stats.clone().unwrap();
    assert_eq!(stats.done_reason.as_deref(), Some("stop"));
    assert_eq!(stats.eval_count, words.len() as u64);
    assert!(stats.prompt_eval_count > 0 && stats.total > Duration::ZERO);

    let body = &bodies(&d, "/api/chat")[0];
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"], json!({"num_ctx": 4096, "temperature": 0.2}));
    assert_eq!(body["messages"][0]["role"], "system");
}

#[tokio::test]
async fn whole_chat_and_generate() {
    let d = OllamaDouble::start().await;
    d.set_load_delay(Duration::from_millis(30));
    let c = client(&d);
    let answer = c.chat(ChatRequest::new(CHAT, question())).await.unwrap();
    assert_eq!(answer.content, ANSWER);
    assert!(answer.stats.load >= Duration::from_millis(30), "first call loads");
    assert!(bodies(&d, "/api/chat")[0].get("options").is_none(), "no options when none are set");

    let req = GenerateRequest {
        model: CHAT.into(),
        prompt: "[1] a.md\nThe moon orbits the earth.\nQuestion: what orbits the earth?".into(),
        system: Some("Cite sources.".into()),
        num_ctx: Some(2048),
    };
    let generated = c.generate(req).await.unwrap();
    assert_eq!(generated.response, "According to the documents, The moon orbits the earth [1].");
    assert_eq!(generated.stats.load, Duration::ZERO, "already loaded");
    let body = &bodies(&d, "/api/generate")[0];
    assert_eq!((body["system"].as_str(), body["stream"].as_bool()), (Some("Cite sources."), Some(false)));
    assert_eq!(body["options"], json!({"num_ctx": 2048}));
}

#[tokio::test]
async fn a_cut_stream_ends_with_stream_cut() {
    let d = OllamaDouble::start().await;
    d.cut_stream_after(Some(2));
    let c = client(&d);
    let items: Vec<_> = c.chat_stream(ChatRequest::new(CHAT, question())).await.unwrap().collect().await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[..2].iter().all(|i| matches!(i, Ok(ChatChunk { done: false, .. }))));
    assert!(matches!(items[2], Err(OllamaError::StreamCut)));
    let whole = c.chat(ChatRequest::new(CHAT, question())).await.unwrap_err();
    assert!(matches!(whole, OllamaError::StreamCut), "{whole:?}");
    assert_eq!(whole.fix(), "Ollama stopped mid-answer; check its log and ask again");
}

#[tokio::test]
async fn an_error_line_mid_stream_is_mapped() {
    let d = OllamaDouble::start().await;
    d.fail_stream_after(1, "llama runner process has terminated: signal: killed");
    let c = client(&d);
    let items: Vec<_> = c.chat_stream(ChatRequest::new(CHAT, question())).await.unwrap().collect().await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    match &items[1] {
        Err(OllamaError::Api { status: 200, message }) => assert!(message.contains("terminated")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_models_are_named_with_the_pull_command() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    let errors = [
        c.chat(ChatRequest::new("llama9:70b", question())).await.unwrap_err(),
        c.chat_stream(ChatRequest::new("llama9:70b", question())).await.err().unwrap(),
        c.embed("llama9:70b", &["x".to_owned()]).await.unwrap_err(),
        c.show("llama9:70b").await.unwrap_err(),
        c.warm_chat("llama9:70b").await.unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(&e, OllamaError::ModelNotFound { model } if model == "llama9:70b"), "{e:?}");
        assert_eq!(e.fix(), "Pull it with `ollama pull llama9:70b`");
    }
}

#[tokio::test]
async fn a_refused_connection_is_unreachable_with_the_url() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    assert!(c.is_reachable().await);
    d.stop().await;
    let e = c.embed(EMBED, &["x".to_owned()]).await.unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    assert!(matches!(&e, OllamaError::Unreachable { url } if *url == d.url));
    assert!(e.fix().contains("ollama serve") && e.fix().contains(&d.url));
    assert!(c.chat_stream(ChatRequest::new(CHAT, question())).await.err().unwrap().is_unreachable());
    assert!(!c.is_reachable().await);
    d.restart().await;
    assert!(c.is_reachable().await, "the same client works again");
}

#[tokio::test]
async fn credentials_in_the_url_stay_out_of_messages() {
    let cfg = OllamaConfig { url: "http://user:s3cret@127.0.0.1:9/".into(), ..OllamaConfig::default() };
    let c = OllamaClient::new(&cfg).unwrap();
    assert_eq!(c.base_url(), "http://127.0.0.1:9");
    let e = c.ps().await.unwrap_err();
    assert!(!format!("{e} {e:?} {}", e.fix()).contains("s3cret"));
    let bad = OllamaClient::new(&OllamaConfig { url: "not a url".into(), ..OllamaConfig::default() });
    assert!(matches!(bad, Err(OllamaError::Config(_))));
}

#[tokio::test]
async fn slow_replies_time_out() {
    let d = OllamaDouble::start().await;
    d.set_token_delay(Duration::from_millis(400));
    let cfg = OllamaConfig { request_timeout: Duration::from_millis(150), ..config(&d) };
    let c = OllamaClient::new(&cfg).unwrap();
    let whole = c.chat(ChatRequest::new(CHAT, question())).await.unwrap_err();
    assert!(matches!(whole, OllamaError::Timeout { after } if after == Duration::from_millis(150)), "{whole:?}");
    assert!(whole.fix().contains("ollama.request_timeout"));
    let mut stream = c.chat_stream(ChatRequest::new(CHAT, question())).await.unwrap();
    assert!(matches!(stream.next().await, Some(Err(OllamaError::Timeout { .. }))));
    assert!(stream.next().await.is_none(), "the stream ends after an error");

    d.set_load_delay(Duration::from_millis(400));
    let e = c.embed("all-minilm", &["x".to_owned()]).await.unwrap_err();
    assert!(matches!(e, OllamaError::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn show_reads_lengths_by_architecture() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    let nomic = c.show(EMBED).await.unwrap();
    assert_eq!(nomic.architecture.as_deref(), Some("nomic-bert"));
    assert_eq!((nomic.embedding_length, nomic.context_length), (Some(768), Some(2048)));
    assert_eq!(nomic.capabilities, vec!["embedding".to_owned()]);
    let minilm = c.show("all-minilm:latest").await.unwrap();
    assert_eq!((minilm.architecture.as_deref(), minilm.embedding_length), (Some("bert"), Some(384)));
    assert_eq!(minilm.context_length, Some(512));
    assert!(c.show(CHAT).await.unwrap().capabilities.contains(&"completion".to_owned()));
}

#[tokio::test]
async fn warm_up_loads_and_ps_tells_until_when() {
    let d = OllamaDouble::start().await;
    d.set_load_delay(Duration::from_millis(80));
    let c = client(&d);
    assert!(c.ps().await.unwrap().is_empty());
    let chat = c.warm_chat(CHAT).await.unwrap();
    assert!(chat.took >= Duration::from_millis(80) && chat.load >= Duration::from_millis(80));
    let embed = c.warm_embed(EMBED).await.unwrap();
    assert!(embed.load >= Duration::from_millis(80));
    assert_eq!(bodies(&d, "/api/chat")[0]["messages"], json!([]));
    assert_eq!(bodies(&d, "/api/embed")[0]["input"], json!([]));
    let again = c.warm_chat(CHAT).await.unwrap();
    assert!(again.took < Duration::from_millis(80), "already loaded");

    let running = c.ps().await.unwrap();
    assert_eq!(running.len(), 2);
    let qwen = running.iter().find(|m| m.name == CHAT).expect("chat model loaded");
    let left = qwen.expires_at.expect("expires_at parsed") - chrono::Utc::now().fixed_offset();
    assert!((1790..=1800).contains(&left.num_seconds()), "{left}");
    assert!(qwen.size_vram > 0);
}

#[tokio::test]
async fn tags_list_the_pulled_models() {
    let d = OllamaDouble::start().await;
    let models = client(&d).tags().await.unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert!(names.contains(&"nomic-embed-text:latest") && names.contains(&CHAT), "{names:?}");
    assert!(models.iter().all(|m| m.size > 0 && m.model == m.name));
}

#[tokio::test]
async fn error_replies_are_classified() {
    let d = OllamaDouble::start().await;
    let c = client(&d);
    d.fail_next(400, "the input length exceeds the context length");
    let e = c.embed(EMBED, &["x".to_owned()]).await.unwrap_err();
    assert!(matches!(e, OllamaError::ContextTooLong { .. }), "{e:?}");
    assert!(e.fix().contains("ollama.num_ctx"));

    d.fail_next(500, "llama runner process has terminated");
    let e = c.chat(ChatRequest::new(CHAT, question())).await.unwrap_err();
    assert!(matches!(&e, OllamaError::Api { status: 500, message } if message.contains("terminated")));

    d.fail_next(200, "odd");
    let e = c.embed(EMBED, &["a".to_owned(), "b".to_owned()]).await.unwrap_err();
    assert!(matches!(&e, OllamaError::BadResponse(m) if m.contains("2 embeddings, got 0")), "{e:?}");
}
