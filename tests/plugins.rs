//! Plugins over the wire protocol, against `footnote serve` in process: a token acts for its own
//! platform only, the leak suite and the permission rules hold through the wire exactly as in
//! process, limits answer with a refusal, and an answer finished while its plugin was away is
//! resent when it comes back until it is acknowledged. `/api/status` shows each plugin's
//! connection.

mod common;
mod service;

use std::time::Duration;

use common::wire::{WirePlugin, refusal};
use common::{TestEnv, ZOO, upload};
use footnote::config::{Config, Mapping, NamedCollection, PluginConfig, RoomMatch};
use footnote::serve::Running;
use footnote_adapter::wire::{Ack, Call, IngestRequest};
use footnote_adapter::{Actor, AskError, AskEvent, Gateway, GatewayError, IngestError, Question, Scope};
use futures::StreamExt;
use secrecy::SecretString;
use service::{member, room};

const DISCORD_TOKEN: &str = "discord-plugin-token-0123";
const MATRIX_TOKEN: &str = "matrix-plugin-token-45678";
const IRC_TOKEN: &str = "irc-plugin-token-abcdefgh";
const OPERATOR_TOKEN: &str = "operator-api-token-0123456";

fn plugin(name: &str, platform: &str, token: &str) -> PluginConfig {
    PluginConfig { name: name.into(), platform: platform.into(), token: SecretString::from(token), token_env: None }
}

/// `footnote serve` with three plugins (Discord and Matrix played by plugins, and IRC), with the
/// config changed by `f`; the rate limit is off unless `f` sets it.
async fn serve(env: &TestEnv, f: impl FnOnce(&mut Config)) -> Running {
    let mut cfg = service::config(env);
    cfg.limits.rate_per_minute = 0;
    cfg.plugins = vec![
        plugin("discord-bridge", "discord", DISCORD_TOKEN),
        plugin("matrix-bridge", "matrix", MATRIX_TOKEN),
        plugin("irc", "irc", IRC_TOKEN),
    ];
    f(&mut cfg);
    service::start(cfg, Vec::new()).await
}

fn base(running: &Running) -> String {
    format!("http://{}", running.addr)
}

async fn events(gateway: &dyn Gateway, scope: &Scope, actor: &Actor, text: &str) -> Vec<AskEvent> {
    gateway.ask_stream(scope, actor, Question::new(text)).await.collect().await
}

/// Runs the leak suite with each platform's calls sent by its own plugin.
async fn leak_suite_through_the_wire(f: impl FnOnce(&mut Config)) -> (TestEnv, Running, WirePlugin, WirePlugin) {
    let env = TestEnv::new().await;
    let running = serve(&env, f).await;
    let discord = WirePlugin::connect(&base(&running), DISCORD_TOKEN, true).await;
    let matrix = WirePlugin::connect(&base(&running), MATRIX_TOKEN, true).await;
    common::leaks::assert_no_leaks(|scope| match scope.platform.as_str() {
        "discord" => &discord as &dyn Gateway,
        _ => &matrix as &dyn Gateway,
    })
    .await;
    (env, running, discord, matrix)
}

#[tokio::test]
async fn through_the_wire_each_room_sees_only_its_own_documents() {
    let (_env, running, discord, _matrix) = leak_suite_through_the_wire(|_| {}).await;
    assert_eq!(discord.documents(&room("discord", Some("g1"), "c1"), &member("x")).await.unwrap().len(), 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn through_the_wire_spaces_and_named_collections_share_exactly_as_configured() {
    let (_env, running, discord, _matrix) = leak_suite_through_the_wire(|c| c.scopes.mapping = Mapping::Space).await;
    assert_eq!(discord.documents(&room("discord", Some("g1"), "c9"), &member("x")).await.unwrap().len(), 2);
    assert_eq!(discord.documents(&room("discord", Some("g2"), "c9"), &member("x")).await.unwrap().len(), 1);
    running.stop().await.unwrap();

    let (_env, running, _discord, matrix) = leak_suite_through_the_wire(|c| {
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
    let shared = matrix.documents(&room("matrix", None, "!r:example.org"), &member("x")).await.unwrap();
    assert_eq!(shared.len(), 2, "the Discord channel and the Matrix room share `projects`");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn through_the_wire_permissions_reply_as_in_process() {
    let env = TestEnv::new().await;
    let running = serve(&env, |c| {
        c.scopes.admins = vec!["irc:boss".into()];
        c.scopes.collections.push(NamedCollection {
            name: "hr".into(),
            rooms: vec![RoomMatch { platform: "irc".into(), space: None, room: Some("#hr".into()) }],
            ask: Some(vec!["role:staff".into()]),
            ingest: Some(vec!["user:clerk".into()]),
            forget: None,
        });
    })
    .await;
    let irc = WirePlugin::connect(&base(&running), IRC_TOKEN, true).await;
    let hr = room("irc", None, "#hr");
    let staff = Actor { roles: vec!["staff".into()], ..member("s") };

    let denied = irc.ingest(&hr, &staff, upload("pay.md", "Salaries are paid on the 25th.")).await.unwrap_err();
    assert_eq!(denied, IngestError::Denied);
    let receipt = irc.ingest(&hr, &member("clerk"), upload("pay.md", "Salaries are paid on the 25th.")).await.unwrap();
    let all = events(&irc, &hr, &member("visitor"), "When are salaries paid?").await;
    assert!(matches!(all.as_slice(), [AskEvent::Failed(AskError::Denied)]), "{all:?}");
    let all = events(&irc, &hr, &staff, "When are salaries paid?").await;
    let Some(AskEvent::Done(answer)) = all.last() else { panic!("{all:?}") };
    assert_eq!(answer.citations[0].document_id, receipt.document_id);
    assert_eq!(irc.documents(&hr, &member("visitor")).await.unwrap_err(), GatewayError::Denied);
    assert_eq!(irc.forget(&hr, &staff, &receipt.document_id).await.unwrap_err(), GatewayError::Denied);
    irc.forget(&hr, &member("boss"), &receipt.document_id).await.expect("the configured admin forgets");
    assert!(irc.documents(&hr, &member("boss")).await.unwrap().is_empty());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_token_acts_for_its_own_platform_only() {
    let env = TestEnv::new().await;
    let running = serve(&env, |c| c.server.tokens = vec![SecretString::from(OPERATOR_TOKEN)]).await;
    let irc = WirePlugin::connect(&base(&running), IRC_TOKEN, true).await;
    assert_eq!((irc.hello.protocol, irc.hello.platform.as_str(), irc.hello.plugin.as_str()), (1, "irc", "irc"));
    let discord_room = room("discord", Some("g1"), "c1");

    // Every call naming another platform (or an operator surface) is refused, and nothing is stored.
    let (status, reply) = irc
        .post(
            "ingest",
            &IngestRequest { scope: discord_room.clone(), actor: member("u"), upload: upload("a.md", "Secret plans.") },
        )
        .await;
    assert_eq!((status, refusal(&reply).error.as_str()), (403, "wrong_platform"), "{reply}");
    assert!(refusal(&reply).message.contains("“irc”"), "{reply}");
    for scope in [discord_room.clone(), Scope::local("cli", "default"), Scope::local("http", "default")] {
        let (status, reply) = irc.send_ask("q1", &scope, &member("u"), Question::new("plans?")).await;
        assert_eq!((status, refusal(&reply).error.as_str()), (403, "wrong_platform"), "{reply}");
        let (status, reply) = irc.post("documents", &Call { scope, actor: Actor::operator() }).await;
        assert_eq!((status, refusal(&reply).error.as_str()), (403, "wrong_platform"), "{reply}");
    }
    let discord = WirePlugin::connect(&base(&running), DISCORD_TOKEN, true).await;
    assert!(discord.documents(&discord_room, &member("u")).await.unwrap().is_empty(), "nothing was stored");

    // A wrong token, no token, and a browser (even with the right token) get nothing.
    let http = service::client();
    let events_url = format!("{}/plugin/v1/events", base(&running));
    for request in [
        http.get(&events_url).bearer_auth("not-a-plugin-token-at-all"),
        http.get(&events_url),
        http.get(&events_url).bearer_auth(IRC_TOKEN).header("origin", "https://evil.example"),
    ] {
        let response = request.send().await.unwrap();
        assert!([401, 403].contains(&response.status().as_u16()), "{}", response.status());
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(["unauthorized", "browser"].contains(&body["error"].as_str().unwrap()), "{body}");
    }
    // The API's tokens and the plugin tokens open nothing of each other.
    let api = http.get(format!("{}/api/documents", base(&running))).bearer_auth(IRC_TOKEN).send().await.unwrap();
    assert_eq!(api.status(), 401, "a plugin token is not an API token");
    let plugin = http.get(&events_url).bearer_auth(OPERATOR_TOKEN).send().await.unwrap();
    assert_eq!(plugin.status(), 401, "an API token is not a plugin token");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn limits_answer_with_a_refusal_and_the_rate_limit_in_words() {
    let env = TestEnv::new().await;
    let running = serve(&env, |c| {
        c.ingest.max_file_size = bytesize::ByteSize::kib(4);
        c.limits.rate_per_minute = 1;
        c.limits.rate_burst = 1;
    })
    .await;
    let irc = WirePlugin::connect(&base(&running), IRC_TOKEN, true).await;
    let here = room("irc", None, "#c");
    assert_eq!(irc.hello.max_upload_bytes, 4096);

    let big = footnote_adapter::Upload { file_name: "big.txt".into(), bytes: vec![b'a'; 5000], ..Default::default() };
    let error = irc.ingest(&here, &member("u"), big).await.unwrap_err();
    assert!(matches!(error, IngestError::TooLarge(_)), "{error:?}");
    let huge =
        footnote_adapter::Upload { file_name: "huge.txt".into(), bytes: vec![b'a'; 600_000], ..Default::default() };
    let (status, reply) =
        irc.post("ingest", &IngestRequest { scope: here.clone(), actor: member("u"), upload: huge }).await;
    assert_eq!((status, refusal(&reply).error.as_str()), (413, "too_large"), "{reply}");
    let (status, reply) = irc.send_ask(&"x".repeat(101), &here, &member("u"), Question::new("hi")).await;
    assert_eq!((status, refusal(&reply).error.as_str()), (400, "bad_request"), "{reply}");
    let (status, reply) = irc.post("ask", &serde_json::json!({"id": "q", "scope": here})).await;
    assert_eq!((status, refusal(&reply).error.as_str()), (400, "bad_request"), "{reply}");
    assert!(irc.documents(&here, &member("u")).await.unwrap().is_empty(), "nothing half-stored");

    irc.ingest(&here, &member("u"), upload(ZOO[0].0, ZOO[0].1)).await.unwrap();
    assert!(matches!(events(&irc, &here, &member("u"), "What do penguins eat?").await.last(), Some(AskEvent::Done(_))));
    let all = events(&irc, &here, &member("u"), "What do penguins eat?").await;
    assert!(matches!(all.last(), Some(AskEvent::Failed(AskError::RateLimited(_)))), "{all:?}");
    let finished = irc.finished.lock().unwrap().last().cloned().unwrap();
    assert!(matches!(finished.1, AskEvent::Failed(AskError::RateLimited(_))));
    running.stop().await.unwrap();
}

/// The `plugins` of `/api/status`, by name: (connected, undelivered).
async fn plugin_status(running: &Running, name: &str) -> (bool, u64) {
    let status: serde_json::Value =
        service::client().get(format!("{}/api/status", base(running))).send().await.unwrap().json().await.unwrap();
    let plugin = status["plugins"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap();
    assert!(plugin["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{plugin}");
    (plugin["connected"].as_bool().unwrap(), plugin["undelivered"].as_u64().unwrap())
}

async fn wait_for_status(running: &Running, name: &str, want: (bool, u64)) {
    for _ in 0..400 {
        if plugin_status(running, name).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never reached {want:?}: {:?}", plugin_status(running, name).await);
}

#[tokio::test]
async fn an_answer_finished_while_the_plugin_was_away_is_resent_until_acknowledged() {
    let env = TestEnv::new().await;
    let running = serve(&env, |_| {}).await;
    let here = room("irc", Some("net"), "#c");
    assert_eq!(plugin_status(&running, "irc").await, (false, 0), "never connected");
    {
        let irc = WirePlugin::connect(&base(&running), IRC_TOKEN, true).await;
        wait_for_status(&running, "irc", (true, 0)).await;
        irc.ingest(&here, &member("u"), upload(ZOO[0].0, ZOO[0].1)).await.unwrap();
        env.double.set_token_delay(Duration::from_millis(60));
        let (status, _) =
            irc.send_ask("asked-before-going", &here, &member("alice"), Question::new("What do penguins eat?")).await;
        assert_eq!(status, 202);
        // Sending the same question again (a retry) does not ask twice.
        assert_eq!(
            irc.send_ask("asked-before-going", &here, &member("alice"), Question::new("What do penguins eat?")).await.0,
            202
        );
        irc.disconnect();
    }
    // The answer is finished without the plugin and kept for it.
    wait_for_status(&running, "irc", (false, 1)).await;
    env.double.set_token_delay(Duration::ZERO);

    // Back without acknowledging: the answer comes first, with where and for whom it was asked.
    let again = WirePlugin::connect(&base(&running), IRC_TOKEN, false).await;
    for _ in 0..200 {
        if !again.finished.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let received = again.finished.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "once, though sent twice: {received:?}");
    let (id, AskEvent::Done(answer)) = &received[0] else { panic!("{received:?}") };
    assert_eq!(id, "asked-before-going");
    assert_eq!(answer.citations[0].title, "Penguins");
    wait_for_status(&running, "irc", (true, 1)).await;
    drop(again);

    // Not acknowledged: resent on the next connection; acknowledged: gone.
    let third = WirePlugin::connect(&base(&running), IRC_TOKEN, false).await;
    for _ in 0..200 {
        if !third.finished.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(third.finished.lock().unwrap()[0].0, "asked-before-going");
    assert_eq!(third.post("ack", &Ack { ids: vec!["asked-before-going".into()] }).await.0, 204);
    wait_for_status(&running, "irc", (true, 0)).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_plugin_with_too_many_questions_in_progress_is_told_busy() {
    let env = TestEnv::new().await;
    let running = serve(&env, |c| {
        c.ollama.max_parallel = 1;
        c.limits.queue_max = 200;
    })
    .await;
    let irc = WirePlugin::connect(&base(&running), IRC_TOKEN, true).await;
    let here = room("irc", None, "#c");
    irc.ingest(&here, &member("u"), upload(ZOO[0].0, ZOO[0].1)).await.unwrap();
    env.double.set_token_delay(Duration::from_millis(50));
    let limit = irc.hello.max_in_flight as usize;
    for i in 0..limit {
        let (status, reply) =
            irc.send_ask(&format!("q{i}"), &here, &member(&format!("u{i}")), Question::new("penguins?")).await;
        assert_eq!(status, 202, "{reply}");
    }
    let (status, reply) = irc.send_ask("one-too-many", &here, &member("late"), Question::new("penguins?")).await;
    assert_eq!((status, refusal(&reply).error.as_str()), (429, "busy"), "{reply}");
    // Once answers finish, questions are taken again.
    env.double.set_token_delay(Duration::ZERO);
    for _ in 0..400 {
        if !irc.finished.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, reply) = irc.send_ask("later", &here, &member("late"), Question::new("penguins?")).await;
    assert_eq!(status, 202, "{reply}");
    running.stop().await.unwrap();
}
