//! `footnote migrate`: applies the database migrations (they also run on every start) and says
//! which database is in use, without its password.

use std::process::ExitCode;

use anyhow::{Context, Result};
use footnote::config::Config;
use secrecy::ExposeSecret;

/// The database URL with its password replaced, for messages.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "the configured database".to_owned(),
    }
}

/// `footnote migrate`
pub async fn migrate(config: Config) -> Result<ExitCode> {
    let url = config.database.url.expose_secret().to_owned();
    let target = if url.is_empty() { config.sqlite_path().display().to_string() } else { shown(&url) };
    // Opening a store applies every pending migration (and installs pgvector on PostgreSQL).
    footnote::store::open(&config).await.with_context(|| format!("cannot migrate {target}"))?;
    println!("The database {target} is up to date.");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_password_is_not_shown() {
        assert_eq!(super::shown("postgres://me:hunter2@db:5432/footnote"), "postgres://me:***@db:5432/footnote");
        assert_eq!(super::shown("postgres://db/footnote"), "postgres://db/footnote");
    }
}
