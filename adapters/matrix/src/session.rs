//! Logging in and keeping the login: the session (user id, device id, access token) is saved as
//! JSON with mode 0600 next to the SQLite state and crypto store in the store directory, so a
//! restart restores the same device and keeps decrypting, instead of creating a new device.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use footnote_adapter::AdapterError;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The saved login, as stored in `session.json`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Saved {
    pub homeserver: String,
    pub user_id: String,
    pub device_id: String,
    pub access_token: String,
}

impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saved")
            .field("homeserver", &self.homeserver)
            .field("user_id", &self.user_id)
            .field("device_id", &self.device_id)
            .field("access_token", &"[redacted]")
            .finish()
    }
}

/// The file the session is saved in.
pub fn session_path(store_dir: &Path) -> PathBuf {
    store_dir.join("session.json")
}

/// Reads the saved session; `None` when there is none or it belongs to another account or server.
pub fn load(store_dir: &Path, config: &Config) -> Option<Saved> {
    let text = std::fs::read_to_string(session_path(store_dir)).ok()?;
    let saved: Saved = match serde_json::from_str(&text) {
        Ok(saved) => saved,
        Err(error) => {
            tracing::warn!(error = %error, "The saved Matrix session is unreadable; logging in again.");
            return None;
        }
    };
    (saved.user_id == config.user_id && saved.homeserver == config.homeserver).then_some(saved)
}

/// Writes the session with mode 0600 (readable by the service's user only), atomically.
pub fn save(store_dir: &Path, saved: &Saved) -> std::io::Result<()> {
    std::fs::create_dir_all(store_dir)?;
    let path = session_path(store_dir);
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(serde_json::to_string_pretty(saved).map_err(std::io::Error::other)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

fn matrix_session(saved: &Saved) -> Result<MatrixSession, AdapterError> {
    Ok(MatrixSession {
        meta: SessionMeta {
            user_id: saved.user_id.as_str().try_into().map_err(|_| AdapterError::Config("bad user id".into()))?,
            device_id: saved.device_id.as_str().into(),
        },
        tokens: SessionTokens { access_token: saved.access_token.clone(), refresh_token: None },
    })
}

/// Builds the client on the store directory and logs it in: the saved session first, else the
/// configured access token, else the password (reusing the saved device id when there is one).
pub async fn connect(config: &Config, store_dir: &Path) -> Result<Client, AdapterError> {
    std::fs::create_dir_all(store_dir)
        .map_err(|e| AdapterError::Other(format!("cannot create the Matrix store {}: {e}", store_dir.display())))?;
    let passphrase = config.store_passphrase.as_ref().map(|p| p.expose_secret().to_owned());
    let client = Client::builder()
        .homeserver_url(&config.homeserver)
        .sqlite_store(store_dir, passphrase.as_deref())
        .build()
        .await
        .map_err(|e| AdapterError::Other(format!("cannot open the Matrix store {}: {e}", store_dir.display())))?;
    let saved = load(store_dir, config);
    if let Some(saved) = &saved {
        client
            .matrix_auth()
            .restore_session(matrix_session(saved)?, RoomLoadSettings::default())
            .await
            .map_err(|e| AdapterError::Other(format!("cannot restore the Matrix session: {e}")))?;
        match client.whoami().await {
            Ok(me) if me.device_id.as_deref().is_none_or(|d| d.as_str() == saved.device_id) => {
                tracing::info!(user = %saved.user_id, device = %saved.device_id, "Restored the Matrix session.");
                return Ok(client);
            }
            Ok(_) => tracing::warn!("The saved Matrix token belongs to another device; logging in again."),
            Err(e) if e.client_api_error_kind().is_some() => {
                tracing::warn!(error = %e, "The saved Matrix session was refused; logging in again.");
            }
            Err(e) => return Err(AdapterError::Connection(format!("cannot reach the homeserver: {e}"))),
        }
        // The device's keys are in the store: a fresh login must keep the same device, which needs
        // a new client (a client's session is set once).
        drop(client);
        return login_fresh(config, store_dir, Some(saved.device_id.clone())).await;
    }
    drop(client);
    login_fresh(config, store_dir, None).await
}

async fn login_fresh(config: &Config, store_dir: &Path, device: Option<String>) -> Result<Client, AdapterError> {
    let passphrase = config.store_passphrase.as_ref().map(|p| p.expose_secret().to_owned());
    let client = Client::builder()
        .homeserver_url(&config.homeserver)
        .sqlite_store(store_dir, passphrase.as_deref())
        .build()
        .await
        .map_err(|e| AdapterError::Other(format!("cannot open the Matrix store {}: {e}", store_dir.display())))?;
    let saved = if let Some(password) = config.password.as_ref().filter(|p| !p.expose_secret().is_empty()) {
        let mut login = client
            .matrix_auth()
            .login_username(&config.user_id, password.expose_secret())
            .initial_device_display_name(&config.device_name);
        if let Some(device) = &device {
            login = login.device_id(device);
        }
        let response = login.send().await.map_err(|e| match e.client_api_error_kind() {
            Some(kind) => AdapterError::Config(format!("the homeserver refused the bot's password login ({kind:?})")),
            None => AdapterError::Connection(format!("cannot log in to the homeserver: {e}")),
        })?;
        Saved {
            homeserver: config.homeserver.clone(),
            user_id: response.user_id.to_string(),
            device_id: response.device_id.to_string(),
            access_token: response.access_token,
        }
    } else {
        let token = config
            .access_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .ok_or_else(|| AdapterError::Config("no password and no access token".into()))?;
        let device_id = whoami_device(&config.homeserver, &token).await?;
        let saved = Saved {
            homeserver: config.homeserver.clone(),
            user_id: config.user_id.clone(),
            device_id,
            access_token: token,
        };
        client
            .matrix_auth()
            .restore_session(matrix_session(&saved)?, RoomLoadSettings::default())
            .await
            .map_err(|e| AdapterError::Other(format!("cannot use the access token: {e}")))?;
        saved
    };
    if saved.user_id != config.user_id {
        return Err(AdapterError::Config(format!(
            "the homeserver logged in {} but adapters.matrix.user_id is {}",
            saved.user_id, config.user_id
        )));
    }
    save(store_dir, &saved).map_err(|e| AdapterError::Other(format!("cannot save the Matrix session: {e}")))?;
    tracing::info!(user = %saved.user_id, device = %saved.device_id, "Logged in to Matrix.");
    Ok(client)
}

/// The device of an access token (`GET /account/whoami`), asked before the client is built so
/// that the crypto store is opened for the right device.
async fn whoami_device(homeserver: &str, token: &str) -> Result<String, AdapterError> {
    let url = format!("{}/_matrix/client/v3/account/whoami", homeserver.trim_end_matches('/'));
    let response = matrix_sdk::reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| AdapterError::Connection(format!("cannot reach the homeserver: {}", e.without_url())))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| AdapterError::Connection(e.without_url().to_string()))?;
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(AdapterError::Config("the homeserver refused the bot's access token".into()));
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| AdapterError::Connection(format!("whoami answered {status} without JSON")))?;
    body.get("device_id").and_then(|d| d.as_str()).map(str::to_owned).ok_or_else(|| {
        AdapterError::Config("the access token has no device: create it with a login, not an admin API".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_file_is_private_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("footnote-matrix-session-{}", std::process::id()));
        let saved = Saved {
            homeserver: "http://127.0.0.1:1".into(),
            user_id: "@bot:localhost".into(),
            device_id: "ABCDEFGH".into(),
            access_token: "syt_secret".into(),
        };
        save(&dir, &saved).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(session_path(&dir)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let config = Config::with_password("http://127.0.0.1:1", "@bot:localhost", "pw");
        assert_eq!(load(&dir, &config).map(|s| s.device_id), Some("ABCDEFGH".into()));
        let other = Config::with_password("http://127.0.0.1:1", "@other:localhost", "pw");
        assert!(load(&dir, &other).is_none(), "another account's session is not reused");
        assert!(!format!("{saved:?}").contains("syt_secret"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
