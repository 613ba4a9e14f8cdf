//! `footnote serve`: runs the gateway until SIGTERM or SIGINT, then shuts down gracefully
//! (answers in flight finish within `server.shutdown_grace`) and exits 0.

use std::process::ExitCode;

use anyhow::Result;
use footnote::config::Config;

/// `footnote serve`
pub async fn serve(config: Config) -> Result<ExitCode> {
    footnote::serve::run(config, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (service managers, `docker stop`) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "Cannot listen for Ctrl-C.");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received."),
        _ = terminate => tracing::info!("SIGTERM received."),
    }
}
