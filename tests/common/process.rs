//! The real `footnote` binary as separate processes, the one way tests start it: `footnote
//! serve` started with only the settings a test gives (a clean environment: the runner's own
//! `FOOTNOTE_TEST_*` variables are no settings), its log collected, its address read from the
//! "listening" line; and one-shot commands run beside it with the same settings.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings as environment variables, for `serve` and the commands next to it.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub env: Vec<(String, String)>,
    /// A configuration file (`--config`).
    pub config: Option<std::path::PathBuf>,
}

impl Settings {
    /// The data directory, the Ollama (double) URL, and a free loopback port for the server.
    pub fn new(data_dir: &Path, ollama_url: &str) -> Settings {
        let env = vec![
            ("FOOTNOTE_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("FOOTNOTE_OLLAMA__URL".to_owned(), ollama_url.to_owned()),
            ("FOOTNOTE_SERVER__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ];
        Settings { env, config: None }
    }

    /// The settings of a test's [`TestEnv`](super::TestEnv): its data directory and Ollama
    /// double, a free port, its temporary directory as `HOME`, no rate limit; then `extra`
    /// (`FOOTNOTE_…` variables) and `config` (a TOML file) when given.
    pub fn of(env: &super::TestEnv, extra: &[(&str, &str)], config: Option<&Path>) -> Settings {
        let mut settings = Settings::new(&env.config.data_dir, &env.double.url);
        settings.env.push(("HOME".to_owned(), env.dir.path().display().to_string()));
        settings.env.push(("FOOTNOTE_LIMITS__RATE_PER_MINUTE".to_owned(), "0".to_owned()));
        settings.env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        settings.config = config.map(Path::to_owned);
        settings
    }

    /// The settings of a configuration file only.
    pub fn file(config: &Path) -> Settings {
        Settings { env: Vec::new(), config: Some(config.to_owned()) }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_footnote"));
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Runs a one-shot command to its end (on a blocking thread: the Ollama double shares the
    /// test's runtime).
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command(args);
        tokio::task::spawn_blocking(move || command.output().expect("run footnote")).await.expect("command thread")
    }
}

/// Everything a command printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A running `footnote serve`.
pub struct Serve {
    /// `None` once it was stopped or killed.
    child: Option<Child>,
    pid: u32,
    /// Where its HTTP server listens (`127.0.0.1:PORT`).
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread reading its log, done once it exited.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// Starts `footnote serve` and waits until it listens; panics with its log otherwise.
    pub fn start(settings: &Settings) -> Serve {
        let mut child = settings
            .command(&["serve"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start footnote serve");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = log.clone();
        let stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Footnote is listening")
                    && let Some(at) = line.find("127.0.0.1:")
                {
                    let addr: String =
                        line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                    let _ = addr_tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Serve { pid: child.id(), child: Some(child), addr, log, reader: Some(reader) },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("footnote serve did not start listening; its log:\n{}", log.lock().unwrap().join("\n"));
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://ADDR/PATH`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The titles it cites, in order, when `question` is asked through its HTTP API.
    pub async fn cites(&self, question: &str) -> Vec<String> {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(self.url("/api/ask"))
            .json(&serde_json::json!({ "question": question }))
            .send()
            .await
            .expect("ask the server")
            .json()
            .await
            .expect("an answer");
        answer["citations"]
            .as_array()
            .unwrap_or_else(|| panic!("no citations in {answer}"))
            .iter()
            .map(|c| c["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Its log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Its log so far, one line each.
    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }

    /// `GET /api/status` as JSON.
    pub async fn status(&self) -> serde_json::Value {
        reqwest::get(self.url("/api/status")).await.expect("status").json().await.expect("status JSON")
    }

    /// Waits up to `limit` until its `/api/status` satisfies `check`; returns the last status.
    pub async fn wait_status(&self, limit: Duration, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let status = self.status().await;
            if check(&status) {
                return status;
            }
            assert!(started.elapsed() < limit, "waited {limit:?} for the status; it is {status:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills it with SIGKILL (a crash: nothing is cleaned up).
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("still running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Stops it with SIGTERM and returns whether it exited 0.
    pub async fn stop(&mut self) -> bool {
        self.terminate();
        self.exited().await
    }

    /// Sends it SIGTERM (a graceful stop) without waiting.
    pub fn terminate(&self) {
        let pid = self.pid.to_string();
        let sent = Command::new("kill").arg("-TERM").arg(pid).status().expect("kill -TERM");
        assert!(sent.success());
    }

    /// Waits for it to exit (and its log to be read to the end); true when it exited 0.
    pub async fn exited(&mut self) -> bool {
        let mut child = self.child.take().expect("still running");
        let reader = self.reader.take();
        tokio::task::spawn_blocking(move || {
            let status = child.wait().expect("reap");
            if let Some(reader) = reader {
                let _ = reader.join();
            }
            status.success()
        })
        .await
        .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
