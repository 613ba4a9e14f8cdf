//! Running the `footnote` binary as a user would: a clean environment with only the settings a
//! test gives (the runner's own `FOOTNOTE_TEST_*` variables are no settings), a data directory of
//! its own, and Ollama played by the double at `url`.

use std::process::Output;

pub struct Cli {
    pub data: tempfile::TempDir,
    pub url: String,
}

impl Cli {
    /// A fresh data directory talking to the Ollama (double) at `url`.
    pub fn new(url: &str) -> Cli {
        Cli { data: tempfile::tempdir().expect("temp dir"), url: url.to_owned() }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs with these settings (`FOOTNOTE_…` variables) added.
    pub fn run_with(&self, args: &[&str], settings: &[(&str, &str)]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_footnote"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.data.path())
            .env("FOOTNOTE_DATA_DIR", self.data.path().join("data"))
            .env("FOOTNOTE_OLLAMA__URL", &self.url)
            .envs(settings.iter().copied())
            .current_dir(self.data.path())
            .output()
            .expect("run footnote")
    }
}

/// Everything the command printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
