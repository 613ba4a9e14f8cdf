//! The IRC plugin (plugins/irc/footnote_irc.py, Python) end to end: `footnote serve` with the
//! Ollama double, a real IRC server (ngIRCd, from `scripts/peers/irc.sh start`), the plugin as its
//! own process, and a person on IRC played by this test over a plain TCP connection.
//!
//! A user adds a text and asks in one channel and gets the answer with its numbered source; a
//! second channel sees none of the first one's documents; the plugin killed while an answer is
//! written and started again posts that answer where it was asked.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestEnv;
use common::process::Serve;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;

const TOKEN: &str = "irc-plugin-token-for-the-test";

/// The IRC server and the Python the peer script named; fails (never skips) without them.
fn peer() -> (String, u16, String) {
    let get = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: start the IRC peer with `scripts/peers/irc.sh start` and export what it prints")
        })
    };
    let port = get("FOOTNOTE_TEST_IRC_PORT").parse().expect("a port");
    (get("FOOTNOTE_TEST_IRC_HOST"), port, get("FOOTNOTE_TEST_IRC_PYTHON"))
}

/// A name no other test run shares on the IRC server.
fn unique(prefix: &str) -> String {
    format!("{prefix}{:06}", rand::random::<u32>() % 1_000_000)
}

/// The plugin as a process; killed when dropped.
struct PluginProcess {
    child: Child,
    log: PathBuf,
}

impl PluginProcess {
    fn start(serve: &Serve, irc: &(String, u16, String), nick: &str, channels: &[&str], log: PathBuf) -> PluginProcess {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/irc/footnote_irc.py");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("plugin log");
        let child = Command::new(&irc.2)
            .arg(script)
            .env("FOOTNOTE_URL", format!("http://{}", serve.addr))
            .env("FOOTNOTE_PLUGIN_TOKEN", TOKEN)
            .env("IRC_HOST", &irc.0)
            .env("IRC_PORT", irc.1.to_string())
            .env("IRC_NICK", nick)
            .env("IRC_CHANNELS", channels.join(","))
            .env("IRC_NETWORK", "testnet")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the IRC plugin");
        PluginProcess { child, log }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("kill -9 the plugin");
        self.child.wait().expect("reap the plugin");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person on IRC: a raw connection that answers PINGs and collects channel messages.
struct Person {
    nick: String,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Person {
    async fn connect(irc: &(String, u16, String), nick: &str) -> Person {
        let stream = TcpStream::connect((irc.0.as_str(), irc.1)).await.expect("connect to the IRC server");
        let (read, writer) = stream.into_split();
        let writer = Arc::new(Mutex::new(writer));
        let register = format!("NICK {nick}\r\nUSER {nick} 0 * :Test person\r\n");
        writer.lock().await.write_all(register.as_bytes()).await.unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let pong = writer.clone();
        tokio::spawn(async move {
            let mut read = BufReader::new(read).lines();
            while let Ok(Some(line)) = read.next_line().await {
                if let Some(token) = line.strip_prefix("PING ") {
                    let _ = pong.lock().await.write_all(format!("PONG {token}\r\n").as_bytes()).await;
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut person = Person { nick: nick.into(), writer, lines };
        person.wait_for(Duration::from_secs(10), |l| l.split(' ').nth(1) == Some("001")).await;
        person
    }

    async fn send(&self, line: &str) {
        self.writer.lock().await.write_all(format!("{line}\r\n").as_bytes()).await.expect("write to IRC");
    }

    async fn say(&self, channel: &str, text: &str) {
        self.send(&format!("PRIVMSG {channel} :{text}")).await;
    }

    /// Reads lines until one satisfies `check`; returns it (panics after `limit`).
    async fn wait_for(&mut self, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.recv()).await {
                Ok(Some(line)) if check(&line) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the IRC server closed the connection"),
                Err(_) => panic!("no matching IRC line within {limit:?}"),
            }
        }
    }

    /// The text of the next message `from` (a nick prefix) sends to `channel` matching `check`.
    async fn message(&mut self, from: &str, channel: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        let head = format!(" PRIVMSG {channel} :");
        let line = self
            .wait_for(limit, |l| {
                l.starts_with(&format!(":{from}")) && l.find(&head).is_some_and(|at| check(&l[at + head.len()..]))
            })
            .await;
        line[line.find(&head).unwrap() + head.len()..].to_owned()
    }

    /// The lines of one answer for this person in `channel`: the first addressed to them, then
    /// the rest until the numbered sources end (`until` says when the answer is complete).
    async fn answer(&mut self, bot: &str, channel: &str, until: impl Fn(&[String]) -> bool) -> Vec<String> {
        let me = format!("{}: ", self.nick);
        let first = self.message(bot, channel, Duration::from_secs(60), |t| t.starts_with(&me)).await;
        let mut lines = vec![first];
        while !until(&lines) {
            lines.push(self.message(bot, channel, Duration::from_secs(30), |_| true).await);
        }
        lines
    }
}

fn config_file(env: &TestEnv) -> PathBuf {
    let path = env.dir.path().join("footnote.toml");
    let text = format!("[[plugins]]\nname = \"irc\"\nplatform = \"irc\"\ntoken = \"{TOKEN}\"\n");
    std::fs::write(&path, text).expect("write the config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_irc_plugin_answers_keeps_channels_apart_and_survives_a_restart() {
    let irc = peer();
    let env = TestEnv::new().await;
    let mut serve = common::served::start(&env, &[], Some(&config_file(&env)));
    let bot = unique("fnbot");
    let (alpha, beta) = (format!("#{}", unique("alpha")), format!("#{}", unique("beta")));
    let log = env.dir.path().join("plugin.log");
    let mut plugin = PluginProcess::start(&serve, &irc, &bot, &[&alpha, &beta], log.clone());

    let me = unique("ann");
    let mut person = Person::connect(&irc, &me).await;
    for channel in [&alpha, &beta] {
        person.send(&format!("JOIN {channel}")).await;
    }
    // The plugin is connected to Footnote and has joined both channels.
    serve.wait_status(Duration::from_secs(30), |s| s["plugins"][0]["connected"] == true).await;
    wait_until_joined(&mut person, &bot, &beta).await;

    // Add a text in #alpha, then ask, with !ask and with a mention.
    person.say(&alpha, "!ingest Emperor penguins eat krill, squid and fish caught while diving.").await;
    let added = person.message(&bot, &alpha, Duration::from_secs(30), |t| t.starts_with(&format!("{me}: "))).await;
    assert!(added.contains("Added") && added.contains("as document"), "{added}\n{}", plugin.log());
    let has_source = |lines: &[String]| lines.iter().any(|l| l.starts_with("[1] "));
    person.say(&alpha, "!ask What do emperor penguins eat?").await;
    let answer = person.answer(&bot, &alpha, has_source).await;
    assert!(answer[0].contains("krill") && answer[0].contains("[1]"), "{answer:?}");
    let source = answer.iter().find(|l| l.starts_with("[1] ")).unwrap();
    assert!(
        source.starts_with("[1] Emperor penguins eat krill") && source.contains(&me),
        "numbered source: {answer:?}"
    );
    person.say(&alpha, &format!("{bot}: what do penguins eat?")).await;
    let mention = person.answer(&bot, &alpha, has_source).await;
    assert!(mention[0].contains("krill"), "{mention:?}");
    person.say(&alpha, "!sources").await;
    let listed = person.answer(&bot, &alpha, |l| l.len() >= 2).await;
    assert!(listed[0].contains("1 document here") && listed[1].contains("Emperor penguins eat krill"), "{listed:?}");

    // #beta is another room: it has no documents and its answers cite nothing of #alpha.
    person.say(&beta, "!sources").await;
    let none = person.message(&bot, &beta, Duration::from_secs(30), |t| t.starts_with(&format!("{me}: "))).await;
    assert!(none.contains("No documents here yet"), "{none}");
    person.say(&beta, "!ask What do emperor penguins eat?").await;
    let nothing = person.message(&bot, &beta, Duration::from_secs(30), |t| t.starts_with(&format!("{me}: "))).await;
    assert!(nothing.contains("I found nothing about this in your documents."), "{nothing}");

    // The plugin is killed while an answer is being written, and started again: the answer
    // arrives where it was asked, and Footnote forgets it once it was posted.
    env.double.set_token_delay(Duration::from_millis(150));
    let chats = |env: &TestEnv| env.double.requests().iter().filter(|r| r.path == "/api/chat").count();
    let before = chats(&env);
    person.say(&alpha, "!ask Which fish do penguins catch while diving?").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while chats(&env) == before {
        assert!(Instant::now() < deadline, "the question never reached the model\n{}", plugin.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plugin.kill9();
    let kept = serve
        .wait_status(Duration::from_secs(60), |s| {
            s["plugins"][0]["connected"] == false && s["plugins"][0]["undelivered"] == 1
        })
        .await;
    assert_eq!(kept["plugins"][0]["name"], "irc");
    env.double.set_token_delay(Duration::ZERO);
    let _plugin = PluginProcess::start(&serve, &irc, &bot, &[&alpha, &beta], log);
    let resent = person.answer(&bot, &alpha, has_source).await;
    assert!(resent[0].contains("[1]"), "{resent:?}");
    serve
        .wait_status(Duration::from_secs(30), |s| {
            s["plugins"][0]["connected"] == true && s["plugins"][0]["undelivered"] == 0
        })
        .await;
    // A connected plugin does not hold up a graceful stop.
    assert!(serve.stop().await, "footnote serve exits 0 on SIGTERM:\n{}", serve.log_text());
    assert!(!serve.log_text().contains("did not close in time"), "{}", serve.log_text());
}

/// Waits until the bot's nick is in `channel`: its JOIN, or the names list of the person's own.
async fn wait_until_joined(person: &mut Person, bot: &str, channel: &str) {
    person.send(&format!("NAMES {channel}")).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(line)) = tokio::time::timeout(left, person.lines.recv()).await else {
            panic!("the plugin never joined {channel}")
        };
        let joined = line.starts_with(&format!(":{bot}")) && line.contains(" JOIN ");
        let named = line.split(' ').nth(1) == Some("353")
            && line.split(' ').any(|w| w.trim_start_matches([':', '@', '+']) == bot);
        if joined || named {
            return;
        }
        if line.split(' ').nth(1) == Some("366") {
            tokio::time::sleep(Duration::from_millis(200)).await;
            person.send(&format!("NAMES {channel}")).await;
        }
    }
}
