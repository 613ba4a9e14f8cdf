//! The web page: server-rendered minijinja templates (embedded in the binary) and htmx, also
//! embedded. The ask form posts the question, gets back a fragment that opens a server-sent
//! event stream; tokens are appended as they come and the final event replaces the fragment with
//! the checked answer and its footnotes. Fragments always answer 200 (htmx does not swap error
//! statuses) and carry the `user_message()` of an error.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Form, Multipart, Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use footnote_adapter::html::escape;
use footnote_adapter::{ATTRIBUTED_MARK, Answer, AskEvent, Gateway, NOT_FOUND_TAG, Question, Scope};
use futures::{Stream, StreamExt};
use minijinja::{Environment, Value, context};
use rand::RngCore;
use serde::Deserialize;

use super::AppState;
use super::upload::{self, read_upload};

/// Questions posted but whose stream has not been opened yet are dropped after this long.
const PENDING_TTL: Duration = Duration::from_secs(300);

/// The templates, compiled into the binary.
pub fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("page.html", include_str!("templates/page.html")),
        ("login.html", include_str!("templates/login.html")),
        ("pending.html", include_str!("templates/pending.html")),
        ("answer.html", include_str!("templates/answer.html")),
        ("documents.html", include_str!("templates/documents.html")),
        ("receipt.html", include_str!("templates/receipt.html")),
        ("status.html", include_str!("templates/status.html")),
    ] {
        env.add_template(name, source).expect("the embedded templates parse");
    }
    env
}

/// Questions waiting for their stream, by random id.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, (Question, Instant)>>);

impl Pending {
    fn put(&self, question: Question) -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < PENDING_TTL);
        map.insert(id.clone(), (question, Instant::now()));
        id
    }

    fn take(&self, id: &str) -> Option<Question> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id).map(|(q, _)| q)
    }
}

fn render(state: &AppState, name: &str, ctx: Value) -> Html<String> {
    match state.0.templates.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html),
        Err(e) => {
            tracing::error!(error = %e, template = name, "Template failed.");
            Html("<p class=\"error\">Something went wrong on my side.</p>".into())
        }
    }
}

fn scope(state: &AppState) -> Scope {
    Scope::local("web", &state.0.web_collection)
}

/// The page, or the login form when a token is needed.
#[utoipa::path(get, path = "/", tag = "web", responses((status = 200, description = "The web page (or its login form)", content_type = "text/html", body = String)))]
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Html<String> {
    if !state.0.auth.is_authenticated(&headers, "/") {
        return render(&state, "login.html", context! {});
    }
    render(
        &state,
        "page.html",
        context! { collection => state.0.web_collection.clone(), logout => !state.0.auth.is_open() },
    )
}

/// The login form's fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    /// One of `server.tokens`.
    token: String,
}

/// Checks the token, starts a session and sets its cookie.
#[utoipa::path(post, path = "/login", tag = "web", request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Logged in: back to the page"), (status = 401, description = "Wrong token", content_type = "text/html", body = String)))]
pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    match state.0.auth.login(&form.token) {
        Some(session) => {
            let cookie = state.0.auth.cookie(&session);
            (StatusCode::SEE_OTHER, [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())]).into_response()
        }
        None => {
            let page = render(&state, "login.html", context! { error => "That token is not valid." });
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
    }
}

/// Ends the session on the server and clears its cookie.
#[utoipa::path(post, path = "/logout", tag = "web", responses((status = 303, description = "Logged out")))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.0.auth.logout(&headers);
    let cookie = state.0.auth.cookie("");
    (StatusCode::SEE_OTHER, [(SET_COOKIE, cookie), (LOCATION, "/".to_owned())]).into_response()
}

/// htmx, its SSE extension and the style sheet, embedded in the binary.
#[utoipa::path(get, path = "/static/{file}", tag = "web", params(("file" = String, Path, description = "htmx.min.js, sse.min.js or style.css")),
    responses((status = 200, description = "The file"), (status = 404, description = "No such file")))]
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static str, &str) = match file.as_str() {
        "htmx.min.js" => (include_str!("static/htmx.min.js"), "text/javascript"),
        "sse.min.js" => (include_str!("static/sse.min.js"), "text/javascript"),
        "style.css" => (include_str!("static/style.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// The ask form's fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AskForm {
    /// The question.
    question: String,
}

/// Takes a question and returns the fragment that streams its answer.
#[utoipa::path(post, path = "/ui/ask", tag = "web", request_body(content = AskForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Answer fragment that opens the stream", content_type = "text/html", body = String)))]
pub async fn ask(State(state): State<AppState>, Form(form): Form<AskForm>) -> Html<String> {
    let question = form.question.trim().to_owned();
    let id = state.0.pending.put(Question::new(question.clone()));
    render(&state, "pending.html", context! { id, question })
}

/// The answer's text as HTML with its `[n]` markers linked to the footnotes.
fn answer_html(id: &str, answer: &Answer) -> String {
    let escaped = escape(&answer.text);
    let mut out = escaped.clone();
    for c in &answer.citations {
        let marker = format!("[{}]", c.n);
        out = out.replace(&marker, &format!("<sup><a href=\"#fn-{id}-{n}\">[{n}]</a></sup>", n = c.n));
        let attributed = format!("[{}{ATTRIBUTED_MARK}]", c.n);
        out = out.replace(
            &attributed,
            &format!(
                "<sup class=\"attributed\" title=\"Matched by Footnote, not cited by the model\"><a href=\"#fn-{id}-{n}\">[{n}{ATTRIBUTED_MARK}]</a></sup>",
                n = c.n
            ),
        );
    }
    out.replace(NOT_FOUND_TAG, "<mark class=\"not-found\">not found in the sources</mark>")
}

fn final_fragment(state: &AppState, id: &str, question: &str, event: AskEvent) -> String {
    let ctx = match event {
        AskEvent::Done(answer) => {
            let citations: Vec<Value> = answer
                .citations
                .iter()
                .map(|c| context! {
                    n => c.n, title => c.title.clone(), locator => c.locator.to_string(), snippet => c.snippet.clone(),
                    remark => footnote_adapter::render::support_remark(c),
                })
                .collect();
            context! {
                id, question,
                text_html => Value::from_safe_string(answer_html(id, &answer)),
                notice => answer.notice.map(|n| n.user_message()),
                notes => footnote_adapter::render::answer_notes(&answer),
                cut_short => answer.cut_short,
                citations,
            }
        }
        AskEvent::Failed(e) => context! { id, question, error => e.user_message() },
        _ => context! { id, question, error => "The answer ended early. Ask again." },
    };
    render(state, "answer.html", ctx).0
}

/// Streams one answer as server-sent events for the htmx SSE extension: `status`, `token`,
/// then `done` (the whole answer fragment) and `end`.
#[utoipa::path(get, path = "/ui/ask/{id}/stream", tag = "web", params(("id" = String, Path, description = "Id from the fragment of /ui/ask")),
    responses((status = 200, description = "Server-sent events: status, token, done, end", content_type = "text/event-stream", body = String)))]
pub async fn ask_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let question = state.0.pending.take(&id);
    let text = question.as_ref().map(|q| q.text.clone()).unwrap_or_default();
    let events = match question {
        Some(q) => state.core().ask_stream(&scope(&state), &state.actor(), q).await,
        None => futures::stream::once(async {
            AskEvent::Failed(footnote_adapter::AskError::Invalid("this question expired; ask it again".into()))
        })
        .boxed(),
    };
    let mut started = false;
    let stream = events.flat_map(move |event| {
        let mut out = Vec::new();
        match event {
            AskEvent::Queued { position } => out.push(
                Event::default()
                    .event("status")
                    .data(format!("Waiting for the model: position {position} in the queue…")),
            ),
            AskEvent::LoadingModel => out.push(Event::default().event("status").data("Loading the model…")),
            AskEvent::Token(piece) => {
                if !started {
                    started = true;
                    out.push(Event::default().event("status").data(""));
                }
                out.push(Event::default().event("token").data(escape(&piece)));
            }
            done => {
                out.push(Event::default().event("done").data(final_fragment(&state, &id, &text, done)));
                out.push(Event::default().event("end").data(""));
            }
        }
        futures::stream::iter(out.into_iter().map(Ok))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Uploads a file and returns its receipt; the document list refreshes itself.
#[utoipa::path(post, path = "/ui/upload", tag = "web", request_body(content = upload::UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Receipt fragment", content_type = "text/html", body = String)))]
pub async fn upload(State(state): State<AppState>, mut multipart: Multipart) -> Response {
    let ctx = match read_upload(&mut multipart).await {
        Ok((_, upload)) => match state.core().ingest(&scope(&state), &state.actor(), upload).await {
            Ok(receipt) => context! { summary => receipt.summary() },
            Err(e) => context! { error => e.user_message() },
        },
        Err(e) => context! { error => e.message() },
    };
    ([("HX-Trigger", "documents-changed")], render(&state, "receipt.html", ctx)).into_response()
}

async fn document_list(state: &AppState, error: Option<String>) -> Html<String> {
    match state.core().documents(&scope(state), &state.actor()).await {
        Ok(documents) => render(
            state,
            "documents.html",
            context! { documents => Value::from(minijinja::value::Serde(&documents)), error },
        ),
        Err(e) => render(state, "documents.html", context! { error => e.user_message() }),
    }
}

/// The document list fragment.
#[utoipa::path(get, path = "/ui/documents", tag = "web", responses((status = 200, description = "Document list fragment", content_type = "text/html", body = String)))]
pub async fn documents(State(state): State<AppState>) -> Html<String> {
    document_list(&state, None).await
}

/// Forgets a document and returns the new list.
#[utoipa::path(delete, path = "/ui/documents/{id}", tag = "web", params(("id" = String, Path, description = "Document id")),
    responses((status = 200, description = "Document list fragment", content_type = "text/html", body = String)))]
pub async fn forget(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let error = state.core().forget(&scope(&state), &state.actor(), &id).await.err().map(|e| e.user_message());
    let forgotten = error.is_none();
    let list = document_list(&state, error).await;
    // The status line counts documents: tell the page to refresh it.
    if forgotten { ([("HX-Trigger", "document-forgotten")], list).into_response() } else { list.into_response() }
}

/// The status line: are the models warm?
#[utoipa::path(get, path = "/ui/status", tag = "web", responses((status = 200, description = "Status line fragment", content_type = "text/html", body = String)))]
pub async fn status(State(state): State<AppState>) -> Html<String> {
    let (dot, line) = match state.core().status(&scope(&state), &state.actor()).await {
        Ok(s) if !s.ollama_reachable => {
            ("down", "The model server is not reachable: answers show sources only.".to_owned())
        }
        Ok(s) => {
            let warm = s.chat_model.loaded && s.embed_model.loaded;
            let word = if warm { "warm" } else { "cold (the first answer loads them)" };
            let state = if warm { "warm" } else { "cold" };
            let documents =
                if s.documents == 1 { "1 document".to_owned() } else { format!("{} documents", s.documents) };
            (state, format!("Models {word} · {} · {documents}", s.chat_model.name))
        }
        Err(e) => ("down", e.user_message()),
    };
    let adapters: Vec<String> = state
        .board()
        .report()
        .await
        .into_iter()
        .map(|a| match (a.here, a.holder) {
            (true, _) => format!("{} here", a.adapter),
            (false, Some(holder)) => format!("{} on {holder}", a.adapter),
            (false, None) => format!("{} being taken over", a.adapter),
        })
        .collect();
    let line = if adapters.is_empty() {
        line
    } else {
        format!("{line} · {} · adapters: {}", state.board().instance(), adapters.join(", "))
    };
    render(&state, "status.html", context! { state => dot, line })
}
