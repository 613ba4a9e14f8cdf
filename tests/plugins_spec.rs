//! The plugin protocol's specification, `plugins/protocol.json`: the committed file is the one
//! generated from the types both sides use, and every message, of every kind, validates against
//! it and reads back to what was sent.
//!
//! After changing a wire type: `FOOTNOTE_BLESS=1 cargo nextest run -p footnote --test plugins_spec`.

use std::time::Duration;

use footnote_adapter::wire::{
    Accepted, Ack, AskRequest, Call, Finished, ForgetRequest, GatewayFailure, Hello, IngestFailure, IngestRequest,
    Progress, Refusal, ServerFrame,
};
use footnote_adapter::{
    Actor, Answer, AskError, AskEvent, Citation, CitedBy, DocumentInfo, ForgetReceipt, GatewayError, IngestError,
    IngestOutcome, IngestReceipt, Locator, ModelState, ModelWarmup, Notice, Origin, Question, Role, Scope,
    SentenceCheck, Status, Support, Timings, Turn, Upload, WarmupReport,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/protocol.json");

#[test]
fn the_committed_spec_is_the_one_the_types_generate() {
    let generated = footnote::plugins::spec::document();
    if std::env::var_os("FOOTNOTE_BLESS").is_some() {
        std::fs::write(SPEC, &generated).expect("write the spec");
    }
    let committed = std::fs::read_to_string(SPEC).unwrap_or_default();
    assert!(
        committed == generated,
        "plugins/protocol.json is not what the types generate: run FOOTNOTE_BLESS=1 cargo nextest run -p footnote --test plugins_spec"
    );
}

/// Whether `value` matches `schema` (the subset of JSON Schema the generator writes: `$ref`,
/// `oneOf`, `anyOf`, `allOf`, `type`, `properties`, `required`, `additionalProperties`,
/// `items`, `enum`, `minimum`). Every property of an object must be declared.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/").ok_or_else(|| format!("{at}: odd $ref {r}"))?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: $ref to a missing schema {name}"));
        }
        return check(doc, target, value, &format!("{at}→{name}"));
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        // The parts of an `allOf` describe one object together: check each, then the union of
        // their properties.
        for part in all {
            check_loose(doc, part, value, at)?;
        }
        return undeclared(doc, schema, value, at);
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching: Vec<usize> = (0..one.len()).filter(|i| check(doc, &one[*i], value, at).is_ok()).collect();
        if matching.len() != 1 {
            let why: Vec<String> = one.iter().filter_map(|s| check(doc, s, value, at).err()).collect();
            return Err(format!("{at}: {} of oneOf match {value}: {why:?}", matching.len()));
        }
        return Ok(());
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return if any.iter().any(|s| check(doc, s, value, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: no anyOf matches {value}"))
        };
    }
    check_loose(doc, schema, value, at)?;
    undeclared(doc, schema, value, at)
}

/// [`check`] without the test for undeclared properties (for one part of an `allOf`).
fn check_loose(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")];
        if target.get("oneOf").is_none() && target.get("anyOf").is_none() && target.get("allOf").is_none() {
            return check_loose(doc, target, value, at);
        }
    }
    if schema.get("$ref").is_some() || schema.get("oneOf").is_some() || schema.get("allOf").is_some() {
        return check(doc, schema, value, at);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        return Err(format!("{at}: {n} is below {min}"));
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing required `{name}` in {value}"));
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                if let Some(v) = object.get(name) {
                    check(doc, sub, v, &format!("{at}.{name}"))?;
                }
            }
        }
    }
    Ok(())
}

/// The properties a schema declares, through `$ref`s and `allOf`s.
fn declared(doc: &Value, schema: &Value, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return declared(doc, &doc["components"]["schemas"][name], out);
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        declared(doc, part, out);
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        out.extend(props.keys().cloned());
    }
}

/// Fails on a property of an object the schema does not declare (a field the spec forgot).
fn undeclared(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(object) = value.as_object() else { return Ok(()) };
    if schema.get("additionalProperties").is_some_and(|a| a.is_object()) {
        return Ok(()); // a map
    }
    let mut names = Vec::new();
    declared(doc, schema, &mut names);
    match object.keys().find(|k| !names.contains(k)) {
        Some(extra) => Err(format!("{at}: `{extra}` is not in the spec ({value})")),
        None => Ok(()),
    }
}

/// Serializes `message`, validates it against the spec's schema `name`, and reads it back.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(doc: &Value, name: &str, message: &T) {
    let value = serde_json::to_value(message).expect("serializes");
    let schema = &doc["components"]["schemas"][name];
    assert!(!schema.is_null(), "the spec has no schema {name}");
    if let Err(why) = check(doc, schema, &value, name) {
        panic!("{name} does not match the spec: {why}");
    }
    let back: T = serde_json::from_value(value.clone()).expect("reads back");
    assert_eq!(&back, message, "{name} changed on the way: {value}");
}

fn scope() -> Scope {
    Scope { platform: "irc".into(), space: Some("libera".into()), room: "#footnote".into(), thread: Some("t1".into()) }
}

fn actor() -> Actor {
    Actor { user_id: "alice".into(), display_name: Some("Alice".into()), roles: vec!["op".into()], is_owner: true }
}

fn answer() -> Answer {
    let citation = Citation {
        n: 1,
        document_id: "12".into(),
        title: "Manual".into(),
        locator: Locator {
            page: Some(3),
            heading_path: vec!["Setup".into()],
            attachment: Some("a.pdf".into()),
            subject: Some("Hi".into()),
            date: Some("2026-01-01T00:00:00Z".into()),
            link: Some("https://example.org/m/1".into()),
        },
        snippet: "Hold the reset button.".into(),
        score: 0.5,
        support: Support::Supported,
        support_score: Some(0.75),
        cited_by: CitedBy::Both,
    };
    Answer {
        text: "Hold it for ten seconds [1].".into(),
        citations: vec![citation],
        notice: Some(Notice::Uncited),
        model: "m".into(),
        timings: Timings {
            retrieval: Duration::from_millis(3),
            first_token: Some(Duration::from_millis(40)),
            total: Duration::from_millis(90),
        },
        sentences: vec![SentenceCheck {
            text: "Hold it for ten seconds.".into(),
            sources: vec![1],
            support: Support::Partial,
            score: Some(0.25),
        }],
        cut_short: true,
    }
}

fn ask_errors() -> Vec<AskError> {
    vec![
        AskError::Invalid("empty".into()),
        AskError::Denied,
        AskError::RateLimited(Duration::from_secs(30)),
        AskError::Unavailable("down".into()),
        AskError::Timeout,
        AskError::ShuttingDown,
        AskError::Internal,
    ]
}

#[test]
fn every_message_validates_against_the_spec_and_reads_back() {
    let doc: Value = serde_json::from_str(&footnote::plugins::spec::document()).expect("JSON");

    // Requests.
    let question = Question {
        text: "How do I reset it?".into(),
        history: vec![
            Turn { role: Role::User, text: "Hi".into() },
            Turn { role: Role::Assistant, text: "Hello".into() },
        ],
    };
    round_trip(&doc, "AskRequest", &AskRequest { id: "q1".into(), scope: scope(), actor: actor(), question });
    round_trip(
        &doc,
        "AskRequest",
        &AskRequest { id: "q2".into(), scope: Scope::default(), actor: Actor::default(), question: Question::new("x") },
    );
    round_trip(&doc, "Call", &Call { scope: scope(), actor: actor() });
    let upload = Upload {
        file_name: "notes.txt".into(),
        mime: Some("text/plain".into()),
        bytes: vec![0, 1, 2, 250, 255],
        origin: Origin { link: Some("irc://x".into()), sender: Some("alice".into()), sent_at: Some("2026".into()) },
    };
    round_trip(&doc, "IngestRequest", &IngestRequest { scope: scope(), actor: actor(), upload: upload.clone() });
    let bare = Upload { file_name: "a.md".into(), bytes: b"# A".to_vec(), ..Upload::default() };
    round_trip(&doc, "IngestRequest", &IngestRequest { scope: scope(), actor: actor(), upload: bare });
    round_trip(&doc, "ForgetRequest", &ForgetRequest { scope: scope(), actor: actor(), document_id: "12".into() });
    round_trip(&doc, "Ack", &Ack { ids: vec!["q1".into(), "q2".into()] });
    assert_eq!(serde_json::to_value(&upload).unwrap()["bytes"], "AAEC+v8=", "bytes travel as base64");

    // The event stream: every frame, every event.
    let hello = Hello {
        protocol: 1,
        plugin: "irc".into(),
        platform: "irc".into(),
        max_in_flight: 32,
        max_upload_bytes: 1 << 20,
    };
    round_trip(&doc, "ServerFrame", &ServerFrame::Hello(hello));
    for event in [AskEvent::Queued { position: 2 }, AskEvent::LoadingModel, AskEvent::Token("Hold".into())] {
        round_trip(&doc, "ServerFrame", &ServerFrame::Progress(Progress { id: "q1".into(), event }));
    }
    round_trip(
        &doc,
        "ServerFrame",
        &ServerFrame::Finished(Finished::new("q1".into(), scope(), actor(), AskEvent::Done(answer()))),
    );
    let mut nothing = Answer::nothing_found(Timings::default());
    nothing.timings.first_token = None;
    round_trip(
        &doc,
        "ServerFrame",
        &ServerFrame::Finished(Finished::new("q3".into(), scope(), actor(), AskEvent::Done(nothing))),
    );
    for error in ask_errors() {
        let frame = Finished::new("q2".into(), scope(), actor(), AskEvent::Failed(error.clone()));
        assert_eq!(frame.message.as_deref(), Some(error.user_message().as_str()));
        round_trip(&doc, "ServerFrame", &ServerFrame::Finished(frame));
    }

    // Replies.
    round_trip(&doc, "Accepted", &Accepted { id: "q1".into() });
    round_trip(&doc, "Refusal", &Refusal { error: "wrong_platform".into(), message: "No.".into() });
    let receipt = IngestReceipt {
        document_id: "12".into(),
        title: "Notes".into(),
        collection: "irc:#footnote".into(),
        chunks: 2,
        pages: Some(1),
        outcome: IngestOutcome::Replaced { previous_id: "11".into() },
        embeddings_pending: true,
    };
    round_trip(&doc, "IngestReceipt", &receipt);
    for outcome in [IngestOutcome::Added, IngestOutcome::Duplicate] {
        round_trip(&doc, "IngestReceipt", &IngestReceipt { outcome, pages: None, ..receipt.clone() });
    }
    let ingest_errors = [
        IngestError::Empty,
        IngestError::TooLarge("the limit is 1 MB".into()),
        IngestError::Unsupported("x".into()),
        IngestError::Unreadable("x".into()),
        IngestError::Timeout,
        IngestError::Denied,
        IngestError::NameTaken { name: "a.md".into(), document_id: "3".into() },
        IngestError::RateLimited(Duration::from_secs(5)),
        IngestError::Unavailable("x".into()),
        IngestError::Internal,
    ];
    for error in ingest_errors {
        round_trip(&doc, "IngestFailure", &IngestFailure::from(error));
    }
    let gateway_errors = [
        GatewayError::Denied,
        GatewayError::NotFound("9".into()),
        GatewayError::Unavailable("x".into()),
        GatewayError::Internal,
    ];
    for error in gateway_errors {
        round_trip(&doc, "GatewayFailure", &GatewayFailure::from(error));
    }
    let model = ModelState { name: "m".into(), available: true, loaded: false, expires_at: Some("2026".into()) };
    let status = Status {
        ollama_reachable: true,
        chat_model: model.clone(),
        embed_model: ModelState { expires_at: None, ..model },
        documents: 1,
        chunks: 2,
        pending_embeddings: 0,
        problem: Some("x".into()),
    };
    round_trip(&doc, "Status", &status);
    let warm = ModelWarmup { name: "m".into(), took: Duration::from_millis(5), load: Duration::from_millis(1) };
    round_trip(&doc, "WarmupReport", &WarmupReport { models: vec![warm] });
    let info = DocumentInfo {
        id: "12".into(),
        title: "Notes".into(),
        source: "notes.txt".into(),
        collection: "c".into(),
        kind: "text".into(),
        chunks: 2,
        bytes: 10,
        added_at: "2026".into(),
        pending_embeddings: 0,
    };
    round_trip(&doc, "DocumentInfo", &info);
    round_trip(&doc, "ForgetReceipt", &ForgetReceipt { document_id: "12".into(), title: "Notes".into(), chunks: 2 });
}

#[test]
fn a_message_that_breaks_the_spec_is_caught() {
    // The checker itself: a wrong type, a missing field and an unknown one are each refused.
    let doc: Value = serde_json::from_str(&footnote::plugins::spec::document()).unwrap();
    let schema = &doc["components"]["schemas"]["ServerFrame"];
    let bad = [
        serde_json::json!({"type": "hello", "protocol": "1", "plugin": "p", "platform": "p", "max_in_flight": 1, "max_upload_bytes": 1}),
        serde_json::json!({"type": "progress", "event": {"type": "token", "data": "x"}}),
        serde_json::json!({"type": "progress", "id": "q", "event": {"type": "token", "data": "x"}, "extra": 1}),
        serde_json::json!({"type": "progress", "id": "q", "event": {"type": "tokens", "data": "x"}}),
    ];
    for value in bad {
        assert!(check(&doc, schema, &value, "ServerFrame").is_err(), "accepted {value}");
    }
}
