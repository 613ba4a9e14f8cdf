//! The MCP server driven by a client this project did not write: the official Python MCP SDK
//! (installed by `scripts/peers/mcp-client.sh`), through `tests/mcp/client.py`, over stdio (the
//! real `footnote mcp`, spawned by the client) and over Streamable HTTP (a running `footnote
//! serve`), with the Ollama double. Every tool is listed and called; then the scopes: a caller
//! bound to one collection never sees another one's text through any tool, and a read-only
//! caller cannot add text; refusals are tool errors a model can read.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::TestEnv;
use common::process::Serve;
use common::served;
use serde_json::{Value, json};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
const OPERATOR: &str = "operator-token-0123456789";
const READER: &str = "reader-token-handbook-only";
const WRITER: &str = "writer-token-handbook-only";
/// Text only collection `payroll` holds: it must never reach a caller bound to `handbook`.
const SECRET: &str = "zebra-4417";

/// The Python of the MCP client's venv; the test fails naming the script when there is none.
fn python() -> String {
    let from_env = std::env::var("FOOTNOTE_TEST_MCP_PYTHON").ok().filter(|p| !p.is_empty());
    let opt = std::env::var("FOOTNOTE_PEERS_OPT").unwrap_or_else(|_| "/opt/footnote-peers".into());
    let python = from_env.unwrap_or_else(|| format!("{opt}/mcp-client-venv/bin/python"));
    let works = Command::new(&python)
        .args(["-c", "import mcp.client.stdio, mcp.client.streamable_http"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "no MCP client at {python}: run `scripts/peers/mcp-client.sh start` (it installs the official Python MCP SDK) \
         and set FOOTNOTE_TEST_MCP_PYTHON to the path it prints"
    );
    python
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({ "tool": tool, "arguments": arguments })
}

/// Runs the Python client with `args` and `env`, making `calls`; returns what it printed.
async fn client(args: Vec<String>, env: Vec<(String, String)>, calls: Vec<Value>) -> Value {
    let python = python();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .arg(CLIENT)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the MCP client");
        child.stdin.take().unwrap().write_all(Value::Array(calls).to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().expect("the MCP client ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the MCP client failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("client output is not JSON ({e}): {stdout}"))
    })
    .await
    .expect("client thread")
}

/// A session with `footnote mcp` (plus `flags`) on the test's data directory.
async fn stdio(env: &TestEnv, flags: &[&str], calls: Vec<Value>) -> Value {
    stdio_with(env, flags, &[], calls).await
}

/// [`stdio`] with more settings (`FOOTNOTE_…` variables).
async fn stdio_with(env: &TestEnv, flags: &[&str], extra: &[(&str, &str)], calls: Vec<Value>) -> Value {
    let mut args = vec!["stdio".to_owned(), env!("CARGO_BIN_EXE_footnote").to_owned(), "mcp".to_owned()];
    args.extend(flags.iter().map(|f| f.to_string()));
    let settings = vec![
        ("HOME".to_owned(), env.dir.path().display().to_string()),
        ("FOOTNOTE_DATA_DIR".to_owned(), env.config.data_dir.display().to_string()),
        ("FOOTNOTE_OLLAMA__URL".to_owned(), env.double.url.clone()),
        ("NO_COLOR".to_owned(), "1".to_owned()),
    ];
    let settings = settings.into_iter().chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string()))).collect();
    client(args, settings, calls).await
}

/// A session with `/mcp` of a running server, with `token`.
async fn http(server: &Serve, token: &str, calls: Vec<Value>) -> Value {
    let args = vec!["http".to_owned(), server.url("/mcp"), token.to_owned()];
    client(args, vec![("HOME".to_owned(), std::env::temp_dir().display().to_string())], calls).await
}

fn tool_names(session: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        session["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

/// The `n`th call's result, which must not be a protocol error.
fn result(session: &Value, n: usize) -> &Value {
    let call = &session["calls"][n];
    assert!(call["error"].is_null(), "call {n} was a protocol error: {call:#}");
    call
}

fn ok(session: &Value, n: usize) -> &Value {
    let call = result(session, n);
    assert_eq!(call["isError"], false, "call {n} failed: {call:#}");
    &call["structured"]
}

/// The text of the `n`th call, which must be a tool error.
fn refused(session: &Value, n: usize) -> String {
    let call = result(session, n);
    assert_eq!(call["isError"], true, "call {n} should have been refused: {call:#}");
    call["text"].as_str().unwrap().to_owned()
}

const HANDBOOK_TEXT: &str =
    "The boiler room key is kept in the blue cabinet next to the stairs. Ask the caretaker for the spare.";
const PAYROLL_TEXT: &str = "The payroll vault code is zebra-4417. The vault opens on Fridays only.";

/// The calls that fill both collections, list, search, and ask, with what to check after.
fn operator_calls() -> Vec<Value> {
    vec![
        call("add_text", json!({ "title": "Handbook", "text": HANDBOOK_TEXT, "collection": "handbook" })),
        call("add_text", json!({ "title": "Payroll", "text": PAYROLL_TEXT, "collection": "payroll" })),
        call("list_documents", json!({ "collection": "handbook" })),
        call("search", json!({ "query": "where is the boiler room key", "collection": "handbook", "k": 3 })),
        call("search", json!({ "query": "vault code", "collection": "payroll" })),
        call("ask", json!({ "question": "Where is the boiler room key kept?", "collection": "handbook" })),
    ]
}

/// Checks a session made of [`operator_calls`]; returns the passage ids found in `handbook` and
/// in `payroll`. `cold`: the chat model was not loaded before the question.
fn check_operator_session(s: &Value, cold: bool) -> (i64, i64) {
    assert_eq!(s["server"]["name"], "footnote");
    assert_eq!(tool_names(s), ["add_text", "ask", "get_passage", "list_documents", "search"]);
    for tool in s["tools"].as_array().unwrap() {
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{tool:#}");
        assert!(schema["properties"].is_object() && tool["description"].as_str().unwrap().len() > 40, "{tool:#}");
    }
    let search = s["tools"].as_array().unwrap().iter().find(|t| t["name"] == "search").unwrap();
    assert_eq!(search["inputSchema"]["required"], json!(["query"]));
    assert_eq!(search["inputSchema"]["properties"]["k"]["maximum"], 20);

    assert_eq!(ok(s, 0)["outcome"]["kind"], "added", "{:#}", s["calls"][0]);
    ok(s, 1);
    let docs = ok(s, 2)["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["title"], "Handbook");
    let hits = ok(s, 3)["passages"].as_array().unwrap();
    assert!(!hits.is_empty(), "{:#}", s["calls"][3]);
    assert_eq!(hits[0]["title"], "Handbook");
    assert!(hits[0]["snippet"].as_str().unwrap().contains("blue cabinet"));
    assert!(hits[0]["score"].as_f64().unwrap() > 0.0 && hits[0]["locator"].is_object());
    let payroll_hits = ok(s, 4)["passages"].as_array().unwrap();
    assert_eq!(payroll_hits[0]["collection"], "payroll");
    let answer = ok(s, 5);
    assert!(answer["text"].as_str().unwrap().contains("[1]"), "{answer:#}");
    assert_eq!(answer["citations"][0]["title"], "Handbook", "{answer:#}");
    let text = s["calls"][5]["text"].as_str().unwrap();
    assert!(text.contains("Sources:") && text.contains("Handbook"), "{text}");
    let progress: Vec<&str> =
        s["calls"][5]["progress"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(progress.contains(&"Writing the answer."), "progress: {progress:?}");
    if cold {
        assert_eq!(progress[0], "Loading the model into memory.", "progress while the model loads: {progress:?}");
    }
    (hits[0]["id"].as_i64().unwrap(), payroll_hits[0]["id"].as_i64().unwrap())
}

/// The calls of a caller bound to `handbook` that try to reach `payroll` by every tool.
fn confined_calls(payroll_id: i64, handbook_id: i64) -> Vec<Value> {
    vec![
        call("search", json!({ "query": "vault code zebra" })),
        call("search", json!({ "query": "vault code zebra", "collection": "payroll" })),
        call("ask", json!({ "question": "What is the vault code?", "collection": "payroll" })),
        call("list_documents", json!({ "collection": "payroll" })),
        call("get_passage", json!({ "id": payroll_id })),
        call("get_passage", json!({ "id": payroll_id, "collection": "payroll" })),
        call("get_passage", json!({ "id": handbook_id, "around": 2 })),
        call("list_documents", json!({})),
    ]
}

/// Checks a session made of [`confined_calls`].
fn check_confined_session(s: &Value) {
    let everything = s.to_string();
    assert!(!everything.contains(SECRET), "the other collection's text leaked: {s:#}");
    assert!(!everything.contains("Payroll"), "the other collection's title leaked: {s:#}");
    let own = ok(s, 0);
    assert_eq!(own["collection"], "handbook");
    assert!(own["passages"].as_array().unwrap().iter().all(|p| p["collection"] == "handbook"));
    for n in [1, 2, 3, 5] {
        let text = refused(s, n);
        assert!(text.contains("may not read collection “payroll”") && text.contains("“handbook”"), "{text}");
    }
    let text = refused(s, 4);
    assert!(text.contains("no passage") && text.contains("“handbook”"), "{text}");
    let passage = ok(s, 6);
    assert!(passage["passage"]["text"].as_str().unwrap().contains("blue cabinet"), "{passage:#}");
    assert_eq!(ok(s, 7)["documents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn stdio_every_tool_with_the_python_sdk_and_narrowed_by_the_command_line() {
    let env = TestEnv::new().await;
    let s = stdio(&env, &[], operator_calls()).await;
    let (handbook_id, payroll_id) = check_operator_session(&s, true);

    // A new process reads what the last one stored; bad calls are errors a model can read, and
    // a text over the upload limit is refused whole.
    let s = stdio_with(
        &env,
        &[],
        &[("FOOTNOTE_INGEST__MAX_FILE_SIZE", "1KB")],
        vec![
            call("get_passage", json!({ "id": handbook_id, "collection": "handbook" })),
            call("get_passage", json!({ "id": 987654321, "collection": "handbook" })),
            call("search", json!({ "query": "key", "k": 50 })),
            call("search", json!({ "q": "key" })),
            call("no_such_tool", json!({})),
            call("add_text", json!({ "title": "Long", "text": "word ".repeat(400), "collection": "handbook" })),
            call("list_documents", json!({ "collection": "handbook" })),
        ],
    )
    .await;
    let text = refused(&s, 5);
    assert!(text.contains("too large") && text.contains("Nothing was added"), "{text}");
    assert_eq!(ok(&s, 6)["documents"].as_array().unwrap().len(), 1, "nothing half-stored");
    assert!(ok(&s, 0)["passage"]["text"].as_str().unwrap().contains("blue cabinet"));
    assert!(refused(&s, 1).contains("no passage 987654321"));
    assert!(refused(&s, 2).contains("k must be between 1 and 20"));
    assert!(refused(&s, 3).contains("unknown field `q`"));
    assert!(s["calls"][4]["error"].as_str().unwrap().contains("no tool named"), "{:#}", s["calls"][4]);

    // `--collection handbook --read-only`: nothing of payroll, and no adding.
    let mut calls = confined_calls(payroll_id, handbook_id);
    calls.push(call("add_text", json!({ "title": "Note", "text": "A new note." })));
    let s = stdio(&env, &["--collection", "handbook", "--read-only"], calls).await;
    assert_eq!(tool_names(&s), ["ask", "get_passage", "list_documents", "search"], "no add_text when read-only");
    check_confined_session(&s);
    assert!(refused(&s, 8).contains("read-only"));
}

/// A configuration with an operator token and two tokens bound to `handbook`.
fn tokens_config(env: &TestEnv) -> std::path::PathBuf {
    let path = env.dir.path().join("footnote.toml");
    let toml = format!(
        "[server]\ntokens = [\"{OPERATOR}\"]\n\n\
         [[server.scoped_tokens]]\nname = \"reader\"\ntoken = \"{READER}\"\nread = [\"handbook\"]\n\n\
         [[server.scoped_tokens]]\nname = \"writer\"\ntoken = \"{WRITER}\"\nread = [\"handbook\"]\nwrite = [\"handbook\"]\n"
    );
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test]
async fn http_every_tool_with_the_python_sdk_and_scoped_tokens() {
    let env = TestEnv::new().await;
    let config = tokens_config(&env);
    let server = served::start(&env, &[], Some(&config));

    // The server warms the models up when it starts: the answer may not wait for a load.
    let s = http(&server, OPERATOR, operator_calls()).await;
    let (handbook_id, payroll_id) = check_operator_session(&s, false);

    // A token bound to handbook, read-only.
    let mut calls = confined_calls(payroll_id, handbook_id);
    calls.push(call("add_text", json!({ "title": "Note", "text": "A new note.", "collection": "handbook" })));
    let s = http(&server, READER, calls).await;
    assert_eq!(tool_names(&s), ["ask", "get_passage", "list_documents", "search"]);
    check_confined_session(&s);
    assert!(refused(&s, 8).contains("read-only"));

    // A token that may write to handbook only.
    let s = http(
        &server,
        WRITER,
        vec![
            call("add_text", json!({ "title": "Note", "text": "The spare key hangs in the porch." })),
            call("add_text", json!({ "title": "Note", "text": "Overwrite.", "collection": "payroll" })),
            call("search", json!({ "query": "spare key porch" })),
        ],
    )
    .await;
    assert_eq!(tool_names(&s).len(), 5);
    assert_eq!(ok(&s, 0)["outcome"]["kind"], "added", "{:#}", s["calls"][0]);
    assert!(refused(&s, 1).contains("may not add to or forget from collection “payroll”"));
    assert!(ok(&s, 2)["passages"].as_array().unwrap().iter().any(|p| p["title"] == "Note"));
    assert!(!s.to_string().contains(SECRET));

    // Without a valid token the endpoint answers 401 before any MCP.
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for auth in [None, Some("Bearer not-a-configured-token")] {
        let mut request =
            http.post(server.url("/mcp")).json(&init).header("accept", "application/json, text/event-stream");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{auth:?}");
    }
    // The scoped tokens are for the API and /mcp only.
    for path in ["/metrics", "/ui/documents"] {
        let status = http.get(server.url(path)).bearer_auth(READER).send().await.unwrap().status();
        assert_eq!(status, 403, "{path}");
    }
}

#[tokio::test]
async fn api_search_and_the_other_api_routes_follow_the_token_scopes() {
    let env = TestEnv::new().await;
    let config = tokens_config(&env);
    let server = served::start(&env, &[], Some(&config));
    let http = reqwest::Client::new();
    for (collection, name, text) in
        [("handbook", "handbook.txt", HANDBOOK_TEXT), ("payroll", "payroll.txt", PAYROLL_TEXT)]
    {
        let form = reqwest::multipart::Form::new()
            .text("collection", collection)
            .part("file", reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name));
        let r = http.post(server.url("/api/documents")).bearer_auth(OPERATOR).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let search = |token: &'static str, body: Value| {
        let request = http.post(server.url("/api/search")).bearer_auth(token).json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = search(OPERATOR, json!({ "query": "vault code", "collection": "payroll" })).await;
    assert_eq!(status, 200);
    assert!(body["passages"][0]["snippet"].as_str().unwrap().contains(SECRET), "{body:#}");
    let (status, body) = search(READER, json!({ "query": "boiler room key" })).await;
    assert_eq!((status, body["collection"].as_str()), (200, Some("handbook")), "{body:#}");
    assert_eq!(body["passages"][0]["title"], "handbook");
    let (status, body) = search(READER, json!({ "query": "vault code", "collection": "payroll" })).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "out_of_scope");
    assert!(!body.to_string().contains(SECRET));
    let (status, _) = search(READER, json!({ "query": "x", "k": 0 })).await;
    assert_eq!(status, 400);

    // The rest of the API: reading payroll, writing anywhere, refused the same way.
    let get = |path: &str| http.get(server.url(path)).bearer_auth(READER).send();
    assert_eq!(get("/api/documents?collection=payroll").await.unwrap().status(), 403);
    assert_eq!(get("/api/documents").await.unwrap().status(), 200);
    assert_eq!(get("/api/status?collection=payroll").await.unwrap().status(), 403);
    let ask = json!({ "question": "What is the vault code?", "collection": "payroll" });
    for path in ["/api/ask", "/api/ask/stream"] {
        let r = http.post(server.url(path)).bearer_auth(READER).json(&ask).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert!(!r.text().await.unwrap().contains(SECRET));
    }
    let form = reqwest::multipart::Form::new()
        .text("collection", "handbook")
        .part("file", reqwest::multipart::Part::bytes(b"more text".to_vec()).file_name("more.txt"));
    let r = http.post(server.url("/api/documents")).bearer_auth(READER).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 403, "a read-only token cannot upload");
    let r = http.delete(server.url("/api/documents/1?collection=handbook")).bearer_auth(READER).send().await.unwrap();
    assert_eq!(r.status(), 403, "a read-only token cannot forget");
}
