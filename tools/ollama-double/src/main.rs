//! `footnote-ollama-double [--port N]`: runs the Ollama double until Ctrl-C, for trying
//! Footnote by hand without Ollama (`FOOTNOTE_OLLAMA__URL=http://127.0.0.1:N`).

use std::process::ExitCode;

use footnote_ollama_double::OllamaDouble;

const USAGE: &str = "usage: footnote-ollama-double [--port N]   (default port 11434; 0 picks a free one)";

fn port_from_args() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 11434;
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--port" | "-p" => args.next().ok_or("--port needs a number")?,
            other if other.starts_with("--port=") => other["--port=".len()..].to_owned(),
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        };
        port = value.parse().map_err(|_| format!("`{value}` is not a port number"))?;
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> ExitCode {
    let port = match port_from_args() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let double = OllamaDouble::start_on(port).await;
    println!("Ollama double listening at {} (Ctrl-C stops it)", double.url);
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    double.stop().await;
    ExitCode::SUCCESS
}
