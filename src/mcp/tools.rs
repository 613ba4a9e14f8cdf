//! The MCP tools: their names, descriptions and JSON schemas ([`list`]), and what each call does
//! ([`call`]). Every call first resolves its collection through the caller's [`Grant`]; a call
//! outside it, bad arguments, or a refusal of the core become a tool result marked as an error
//! whose text says what went wrong and what to do, which a model can read and act on.

use std::sync::Arc;

use footnote_adapter::{Actor, AskEvent, Gateway, Question, Scope, Upload, render};
use futures::StreamExt;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ProgressNotificationParam, Tool, ToolAnnotations};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::McpServer;
use super::scopes::Grant;
use crate::rag::MAX_QUESTION_CHARS;
use crate::rag::passages::{MAX_AROUND, MAX_SEARCH_K};

/// Default number of passages a search returns.
const DEFAULT_K: usize = 5;
/// Longest title `add_text` takes, in characters.
const MAX_TITLE_CHARS: usize = 200;

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

const COLLECTION_DOC: &str =
    "Collection to use. Optional: without it, the only (or first) collection this connection may use, else `default`.";

/// Every tool, as `tools/list` shows it; `add_text` only to callers who may write somewhere.
pub fn list(grant: &Grant) -> Vec<Tool> {
    let collection = json!({ "type": "string", "description": COLLECTION_DOC });
    let read_only = ToolAnnotations::new().read_only(true).open_world(false);
    let mut tools = vec![
        Tool::new(
            "search",
            "Search the collection's documents (keyword and meaning, combined) and return the best passages, best first: \
             each with its id (for get_passage), document title, locator (page, headings, link), a snippet and a score. \
             Cite what you use by title and locator.",
            schema(json!({
                "type": "object",
                "properties": {
                    "query": { "type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS, "description": "What to look for, in words." },
                    "collection": collection,
                    "k": { "type": "integer", "minimum": 1, "maximum": MAX_SEARCH_K, "default": DEFAULT_K, "description": "How many passages to return." },
                },
                "required": ["query"],
                "additionalProperties": false,
            })),
        )
        .annotate(read_only.clone()),
        Tool::new(
            "ask",
            "Ask Footnote a question: it answers from the collection's documents with numbered citations [n], each checked \
             against its source, and lists the sources (title, locator, snippet, support). Slower than search: a local model writes the answer.",
            schema(json!({
                "type": "object",
                "properties": {
                    "question": { "type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS, "description": "The question." },
                    "collection": collection,
                },
                "required": ["question"],
                "additionalProperties": false,
            })),
        )
        .annotate(read_only.clone()),
        Tool::new(
            "list_documents",
            "List the documents of a collection, newest first: id, title, source, kind, number of passages, size, when added.",
            schema(json!({
                "type": "object",
                "properties": { "collection": collection },
                "additionalProperties": false,
            })),
        )
        .annotate(read_only.clone()),
        Tool::new(
            "get_passage",
            "Read one passage whole (by the id a search gave), with the passages just before and after it in its document.",
            schema(json!({
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "description": "Passage id from search." },
                    "collection": collection,
                    "around": { "type": "integer", "minimum": 0, "maximum": MAX_AROUND, "default": 1, "description": "How many neighbouring passages on each side." },
                },
                "required": ["id"],
                "additionalProperties": false,
            })),
        )
        .annotate(read_only),
    ];
    if grant.may_write_anything() {
        tools.push(
            Tool::new(
                "add_text",
                "Add a text to a collection as a document, searchable at once. A text with the same title in the same \
                 collection replaces the earlier one.",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "title": { "type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS, "description": "The document's title." },
                        "text": { "type": "string", "minLength": 1, "description": "The document's text (plain text)." },
                        "collection": collection,
                    },
                    "required": ["title", "text"],
                    "additionalProperties": false,
                })),
            )
            .annotate(ToolAnnotations::new().read_only(false).destructive(false).open_world(false)),
        );
    }
    tools
}

/// A tool result marked as an error, with a sentence for the model.
pub fn refusal(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A result whose text is `text` and whose structured content is `value`.
fn result(text: String, value: Value) -> CallToolResult {
    let mut r = CallToolResult::structured(value);
    r.content = vec![ContentBlock::text(text)];
    r
}

fn json_result(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

fn args<T: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, String> {
    serde_json::from_value(Value::Object(arguments.unwrap_or_default()))
        .map_err(|e| format!("Invalid arguments for {tool}: {e}. See the tool's input schema."))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    collection: Option<String>,
    k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskArgs {
    question: String,
    collection: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    collection: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PassageArgs {
    id: i64,
    collection: Option<String>,
    around: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTextArgs {
    title: String,
    text: String,
    collection: Option<String>,
}

/// Runs tool `name` for `grant`. `Err` only for a tool that does not exist (a protocol error).
pub async fn call(
    server: &McpServer,
    grant: &Grant,
    name: &str,
    arguments: Option<JsonObject>,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let outcome = match name {
        "search" => search(server, grant, arguments).await,
        "ask" => ask(server, grant, arguments, ctx).await,
        "list_documents" => list_documents(server, grant, arguments).await,
        "get_passage" => get_passage(server, grant, arguments).await,
        "add_text" => add_text(server, grant, arguments).await,
        other => {
            return Err(ErrorData::invalid_params(
                format!("no tool named {other:?}: the tools are search, ask, list_documents, get_passage, add_text"),
                None,
            ));
        }
    };
    Ok(outcome.unwrap_or_else(refusal))
}

/// A tool's result, or the sentence that refuses the call.
type Outcome = Result<CallToolResult, String>;

async fn search(server: &McpServer, grant: &Grant, arguments: Option<JsonObject>) -> Outcome {
    let a: SearchArgs = args("search", arguments)?;
    let collection = grant.read(a.collection.as_deref()).map_err(|e| e.0)?;
    let query = a.query.trim();
    if query.is_empty() {
        return Err("The query is empty: say in words what to look for.".to_owned());
    }
    if query.chars().count() > MAX_QUESTION_CHARS {
        return Err(format!("The query is too long: at most {MAX_QUESTION_CHARS} characters."));
    }
    let k = a.k.unwrap_or(DEFAULT_K);
    if !(1..=MAX_SEARCH_K).contains(&k) {
        return Err(format!("k must be between 1 and {MAX_SEARCH_K}."));
    }
    let scope = server.scope(&collection);
    let hits = server.core.search(&scope, &Actor::operator(), query, k).await.map_err(|e| e.user_message())?;
    Ok(json_result(json!({ "collection": collection, "passages": hits })))
}

async fn list_documents(server: &McpServer, grant: &Grant, arguments: Option<JsonObject>) -> Outcome {
    let a: ListArgs = args("list_documents", arguments)?;
    let collection = grant.read(a.collection.as_deref()).map_err(|e| e.0)?;
    let docs =
        server.core.documents(&server.scope(&collection), &Actor::operator()).await.map_err(|e| e.user_message())?;
    Ok(json_result(json!({ "collection": collection, "documents": docs })))
}

async fn get_passage(server: &McpServer, grant: &Grant, arguments: Option<JsonObject>) -> Outcome {
    let a: PassageArgs = args("get_passage", arguments)?;
    let collection = grant.read(a.collection.as_deref()).map_err(|e| e.0)?;
    let around = a.around.unwrap_or(1);
    if around > MAX_AROUND {
        return Err(format!("around must be between 0 and {MAX_AROUND}."));
    }
    let scope = server.scope(&collection);
    match server.core.passage(&scope, &Actor::operator(), a.id, around).await {
        Ok(context) => Ok(json_result(json!(context))),
        Err(footnote_adapter::GatewayError::NotFound(_)) => Err(format!(
            "There is no passage {} in collection “{collection}”. Use an id that search returned for this collection.",
            a.id
        )),
        Err(e) => Err(e.user_message()),
    }
}

async fn add_text(server: &McpServer, grant: &Grant, arguments: Option<JsonObject>) -> Outcome {
    let a: AddTextArgs = args("add_text", arguments)?;
    let collection = grant.write(a.collection.as_deref()).map_err(|e| e.0)?;
    let title: String =
        a.title.trim().chars().map(|c| if c.is_control() || c == '/' || c == '\\' { ' ' } else { c }).collect();
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(format!("The title must be 1 to {MAX_TITLE_CHARS} characters long."));
    }
    if a.text.trim().is_empty() {
        return Err("The text is empty: there is nothing to add.".to_owned());
    }
    let upload = Upload {
        file_name: format!("{title}.txt"),
        mime: Some("text/plain".into()),
        bytes: a.text.into_bytes(),
        origin: Default::default(),
    };
    let receipt = server
        .core
        .ingest(&server.scope(&collection), &Actor::operator(), upload)
        .await
        .map_err(|e| e.user_message())?;
    // Beside a running server the indexes are its to update: wait until this text is searchable.
    if let Err(e) = server.core.rag().settle().await {
        tracing::warn!(error = %e, "The added text may not be searchable yet.");
    }
    Ok(result(format!("{} (collection “{collection}”)", receipt.summary()), json!(receipt)))
}

async fn ask(
    server: &McpServer,
    grant: &Grant,
    arguments: Option<JsonObject>,
    ctx: &RequestContext<RoleServer>,
) -> Outcome {
    let a: AskArgs = args("ask", arguments)?;
    let collection = grant.read(a.collection.as_deref()).map_err(|e| e.0)?;
    let scope = server.scope(&collection);
    let mut events = server.core.ask_stream(&scope, &Actor::operator(), Question::new(a.question)).await;
    let progress = Progress::new(ctx);
    let mut writing = false;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = ctx.ct.cancelled() => return Err("The question was cancelled.".to_owned()),
        };
        match event {
            Some(AskEvent::Queued { position }) => {
                progress.say(format!("Waiting for the model, position {position}.")).await;
            }
            Some(AskEvent::LoadingModel) => progress.say("Loading the model into memory.").await,
            Some(AskEvent::Token(_)) if !writing => {
                writing = true;
                progress.say("Writing the answer.").await;
            }
            Some(AskEvent::Token(_)) => {}
            Some(AskEvent::Done(answer)) => return Ok(result(render::answer_plain(&answer), json!(answer))),
            Some(AskEvent::Failed(e)) => return Err(e.user_message()),
            None => return Err("The answer ended without a result; try again.".to_owned()),
        }
    }
}

/// Progress notifications for one request, when its caller asked for them (sent a progress
/// token); each one counts up.
struct Progress<'a> {
    ctx: &'a RequestContext<RoleServer>,
    token: Option<rmcp::model::ProgressToken>,
    step: std::sync::atomic::AtomicU32,
}

impl<'a> Progress<'a> {
    fn new(ctx: &'a RequestContext<RoleServer>) -> Progress<'a> {
        Progress { ctx, token: ctx.meta.get_progress_token(), step: Default::default() }
    }

    async fn say(&self, message: impl Into<String>) {
        let Some(token) = self.token.clone() else { return };
        let step = self.step.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let param = ProgressNotificationParam::new(token, f64::from(step)).with_message(message);
        if let Err(e) = self.ctx.peer.notify_progress(param).await {
            tracing::debug!(error = %e, "A progress notification was not delivered.");
        }
    }
}

/// The scope of MCP calls: the operator's local platform, room = collection.
pub fn scope(platform: &'static str, collection: &str) -> Scope {
    Scope::local(platform, collection)
}
