//! The adapter's own small persistent state, a JSON file at `state_path` written atomically
//! (temporary file, fsync, rename, fsync of the folder), or, when several Footnote instances
//! share a database and take turns holding the mailbox, the same JSON kept in the gateway's
//! [`Ledger`] so that the instance taking the mailbox over carries on from the same point.
//!
//! The adapter cannot reach the core's database through the `footnote-adapter` boundary, and the
//! facts kept here only matter to the mailbox it reads: which UIDs of which UIDVALIDITY are done,
//! which Message-IDs were already answered or ingested (the guard against duplicate replies when
//! a crash comes between replying and flagging, or after a UIDVALIDITY change), the mail being
//! worked on (so that a mail that took the process down is not read again, see
//! [`InProgress`]), the turns of each conversation so that a follow-up carries the thread's
//! history, and the key that makes the bot's reply Message-IDs unguessable.
//!
//! A conversation belongs to its owner (the collection and the sender): only that sender's mail
//! finds it again, whatever Message-IDs another sender puts in `References:`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use footnote_adapter::{Ledger, Role, Turn};
use serde::{Deserialize, Serialize};

use crate::error::EmailError;

/// Most Message-IDs remembered as done; the oldest are forgotten first.
const MAX_DONE: usize = 20_000;
/// Most conversations remembered; the least recently used are forgotten first.
const MAX_THREADS: usize = 1_000;
/// Most turns kept per conversation (the newest).
const MAX_TURNS: usize = 20;
/// The ledger key of the state.
const LEDGER_KEY: &str = "state";

/// One conversation: its root Message-ID and its turns.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Thread {
    root: String,
    turns: Vec<Turn>,
    last_used: u64,
}

/// The mail whose work had started and not yet come back: recorded (and fsynced) before the
/// mail is read, cleared once the core has answered. Found on start, it means the process died
/// while working on that mail: once may be anything (a restart, a failover to another instance,
/// the machine), so the mail is tried again; twice, the mail is taken to be the cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    /// The mailbox's UIDVALIDITY when the work started.
    pub uid_validity: u32,
    /// The mail's UID.
    pub uid: u32,
    /// True once the refusal for a mail that took the process down is being sent: found set on
    /// start, the refusal itself went wrong, and the mail is only moved aside.
    #[serde(default)]
    pub refusing: bool,
    /// How many times work on this mail started (0 in state files older than the count).
    #[serde(default)]
    pub attempts: u32,
}

/// Starts of work on one mail after which it is set aside rather than tried again.
pub const MAX_ATTEMPTS: u32 = 2;

/// Everything the state file holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Data {
    /// The mailbox's UIDVALIDITY the UIDs below belong to.
    uid_validity: Option<u32>,
    /// Every UID up to this one is done (or was there before the first start).
    floor_uid: u32,
    /// Done UIDs above `floor_uid`.
    handled: BTreeSet<u32>,
    /// The mail being worked on, if any.
    #[serde(default)]
    in_progress: Option<InProgress>,
    /// Message-IDs whose work committed (reply sent), with the time in Unix seconds.
    done: BTreeMap<String, u64>,
    /// Conversations by owner and root Message-ID ([`key`]). (Files of older versions keyed them
    /// by root alone, as `threads`; those are dropped, since their owner is unknown.)
    #[serde(default)]
    conversations: BTreeMap<String, Thread>,
    /// Any Message-ID of a conversation (questions and the bot's replies), by owner ([`key`]) →
    /// the conversation's key.
    #[serde(default)]
    conversation_members: BTreeMap<String, String>,
    /// 32 random bytes (hex) that key the bot's reply Message-IDs; made on first start.
    #[serde(default)]
    reply_key: String,
}

impl Data {
    /// Makes the reply key on first start (or when the stored one is unreadable).
    fn ensure_reply_key(&mut self) {
        if blake3::Hash::from_hex(&self.reply_key).is_err() {
            let mut key = [0u8; 32];
            rand::fill(&mut key);
            self.reply_key = key.iter().map(|b| format!("{b:02x}")).collect();
        }
    }
}

/// The key of an owner's conversation or Message-ID in the maps above.
fn key(owner: &str, id: &str) -> String {
    format!("{owner}\u{1f}{id}")
}

/// What opening the mailbox meant for the recorded progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxChange {
    /// First start: mail already there is left alone, only newer mail is handled.
    FirstStart,
    /// Same UIDVALIDITY as recorded: carry on.
    Same,
    /// UIDVALIDITY changed: UIDs mean nothing any more; unseen mail is re-scanned and the
    /// Message-ID record keeps it from being answered twice.
    Reset {
        /// The UIDVALIDITY recorded before.
        previous: u32,
    },
}

/// The state and where it is kept.
pub struct StateStore {
    path: PathBuf,
    /// Set when the state lives in the shared ledger instead of the file.
    ledger: Option<Arc<dyn Ledger>>,
    data: Data,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").field("path", &self.path).field("shared", &self.ledger.is_some()).finish()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl StateStore {
    /// Reads the state at `path`, or starts empty when there is none.
    pub fn load(path: &Path) -> Result<Self, EmailError> {
        let data = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| EmailError::State { path: path.display().to_string(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(e.into()),
        };
        let mut data: Data = data;
        data.ensure_reply_key();
        Ok(StateStore { path: path.to_owned(), ledger: None, data })
    }

    /// Reads the state from `ledger` when there is one (the first time, from the file at `path`
    /// if this instance has one, so that moving to a shared database keeps the progress), else
    /// from the file.
    pub async fn open(path: &Path, ledger: Option<Arc<dyn Ledger>>) -> Result<Self, EmailError> {
        let Some(ledger) = ledger else { return Self::load(path) };
        let data = match ledger.load(LEDGER_KEY).await? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|source| EmailError::State { path: "the shared adapter state".into(), source })?,
            None => Self::load(path)?.data,
        };
        let mut data: Data = data;
        data.ensure_reply_key();
        Ok(StateStore { path: path.to_owned(), ledger: Some(ledger), data })
    }

    /// Writes the state: into the ledger, or into the file (temp file, fsync, rename over the
    /// old one, fsync of the folder).
    pub async fn save(&self) -> Result<(), EmailError> {
        let json = serde_json::to_vec(&self.data)
            .map_err(|source| EmailError::State { path: self.path.display().to_string(), source })?;
        if let Some(ledger) = &self.ledger {
            return Ok(ledger.save(LEDGER_KEY, &String::from_utf8_lossy(&json)).await?);
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// Records the mailbox's UIDVALIDITY on opening it and says what changed.
    pub fn open_mailbox(&mut self, uid_validity: u32, uid_next: u32) -> MailboxChange {
        match self.data.uid_validity {
            Some(v) if v == uid_validity => MailboxChange::Same,
            None => {
                self.data.uid_validity = Some(uid_validity);
                self.data.floor_uid = uid_next.saturating_sub(1);
                self.data.handled.clear();
                MailboxChange::FirstStart
            }
            Some(previous) => {
                self.data.uid_validity = Some(uid_validity);
                self.data.floor_uid = 0;
                self.data.handled.clear();
                MailboxChange::Reset { previous }
            }
        }
    }

    /// The lowest UID that may still need work.
    pub fn next_uid(&self) -> u32 {
        self.data.floor_uid.saturating_add(1)
    }

    /// Whether the UID's work is done (or it predates the first start).
    pub fn is_handled(&self, uid: u32) -> bool {
        uid <= self.data.floor_uid || self.data.handled.contains(&uid)
    }

    /// Records a UID as done and advances the floor over a contiguous run.
    pub fn mark_handled(&mut self, uid: u32) {
        if uid > self.data.floor_uid {
            self.data.handled.insert(uid);
        }
        while self.data.handled.remove(&(self.data.floor_uid + 1)) {
            self.data.floor_uid += 1;
        }
    }

    /// Records that work on a mail starts (save before reading the mail), counting the starts
    /// on the same mail.
    pub fn begin(&mut self, uid: u32) {
        let uid_validity = self.data.uid_validity.unwrap_or(0);
        let before = self.data.in_progress.filter(|p| p.uid_validity == uid_validity && p.uid == uid);
        let attempts = before.map_or(0, |p| p.attempts.max(1)) + 1;
        self.data.in_progress = Some(InProgress { uid_validity, uid, refusing: false, attempts });
    }

    /// The mail whose work was interrupted, if any.
    pub fn in_progress(&self) -> Option<InProgress> {
        self.data.in_progress
    }

    /// Records that the interrupted mail's refusal is being sent.
    pub fn refusing(&mut self) {
        if let Some(mail) = self.data.in_progress.as_mut() {
            mail.refusing = true;
        }
    }

    /// Records that the core came back from the mail's work (or that it was dealt with).
    pub fn end(&mut self) {
        self.data.in_progress = None;
    }

    /// Whether this Message-ID's work (reply included) has committed.
    pub fn is_done(&self, message_id: &str) -> bool {
        self.data.done.contains_key(message_id)
    }

    /// Records a Message-ID's work as committed.
    pub fn record_done(&mut self, message_id: &str) {
        self.data.done.insert(message_id.to_owned(), now());
        if self.data.done.len() > MAX_DONE
            && let Some(oldest) = self.data.done.iter().min_by_key(|(_, t)| **t).map(|(id, _)| id.clone())
        {
            self.data.done.remove(&oldest);
        }
    }

    /// The key of the bot's reply Message-IDs (see `reply::reply_message_id`).
    pub fn reply_key(&self) -> [u8; 32] {
        blake3::Hash::from_hex(&self.data.reply_key).map(|h| *h.as_bytes()).unwrap_or_default()
    }

    /// The root of `owner`'s conversation a Message-ID belongs to, if the bot took part in it.
    pub fn thread_of(&self, owner: &str, message_id: &str) -> Option<String> {
        let thread = self.data.conversation_members.get(&key(owner, message_id))?;
        self.data.conversations.get(thread).map(|t| t.root.clone())
    }

    /// The earlier turns of `owner`'s conversation, oldest first.
    pub fn history(&self, owner: &str, root: &str) -> Vec<Turn> {
        self.data.conversations.get(&key(owner, root)).map(|t| t.turns.clone()).unwrap_or_default()
    }

    /// Adds a question and its answer to `owner`'s conversation, and remembers both Message-IDs
    /// as members of it.
    pub fn record_exchange(&mut self, owner: &str, root: &str, ids: [&str; 2], question: &str, answer: &str) {
        let thread_key = key(owner, root);
        let thread = self.data.conversations.entry(thread_key.clone()).or_default();
        thread.root = root.to_owned();
        thread.turns.push(Turn { role: Role::User, text: question.to_owned() });
        thread.turns.push(Turn { role: Role::Assistant, text: answer.to_owned() });
        let excess = thread.turns.len().saturating_sub(MAX_TURNS);
        thread.turns.drain(..excess);
        thread.last_used = now();
        for id in ids.into_iter().chain([root]) {
            self.data.conversation_members.insert(key(owner, id), thread_key.clone());
        }
        if self.data.conversations.len() > MAX_THREADS
            && let Some(stale) = self.data.conversations.iter().min_by_key(|(_, t)| t.last_used).map(|(k, _)| k.clone())
        {
            self.data.conversations.remove(&stale);
            self.data.conversation_members.retain(|_, k| *k != stale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tracks_uids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut state = StateStore::load(&path).unwrap();
        assert_eq!(state.open_mailbox(7, 11), MailboxChange::FirstStart);
        assert!(state.is_handled(10) && !state.is_handled(11));
        state.mark_handled(12);
        assert_eq!(state.next_uid(), 11);
        state.mark_handled(11);
        assert_eq!(state.next_uid(), 13);
        state.record_done("a@x");
        state.record_exchange("ann", "root@x", ["q@x", "r@x"], "Q?", "A [1]");
        let key = state.reply_key();
        assert_ne!(key, [0u8; 32]);
        state.begin(12);
        futures::executor::block_on(state.save()).unwrap();

        let mut again = StateStore::load(&path).unwrap();
        assert_eq!(again.open_mailbox(7, 40), MailboxChange::Same);
        assert_eq!(again.next_uid(), 13);
        assert!(again.is_done("a@x"));
        assert_eq!(again.thread_of("ann", "r@x").as_deref(), Some("root@x"));
        assert_eq!(again.history("ann", "root@x").len(), 2);
        assert_eq!(again.reply_key(), key, "the reply key survives a restart");
        assert_eq!(again.in_progress(), Some(InProgress { uid_validity: 7, uid: 12, refusing: false, attempts: 1 }));
        again.begin(12);
        assert_eq!(again.in_progress().unwrap().attempts, 2, "a second start on the same mail is counted");
        again.refusing();
        assert!(again.in_progress().unwrap().refusing);
        again.end();
        assert_eq!(again.in_progress(), None);
        assert_eq!(again.open_mailbox(8, 5), MailboxChange::Reset { previous: 7 });
        assert_eq!(again.next_uid(), 1);
        assert!(again.is_done("a@x"), "Message-IDs survive a UIDVALIDITY change");
    }

    #[test]
    fn a_conversation_is_found_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = StateStore::load(&dir.path().join("state.json")).unwrap();
        state.record_exchange("ann", "q1@x", ["q1@x", "a1@bot"], "My salary?", "It is 5000 [1].");
        assert_eq!(state.thread_of("ann", "a1@bot").as_deref(), Some("q1@x"));
        assert_eq!(state.thread_of("eve", "a1@bot"), None, "eve saw the id in a CC");
        assert!(state.history("eve", "q1@x").is_empty());
        state.record_exchange("eve", "q1@x", ["e1@x", "a2@bot"], "And mine?", "I found nothing.");
        assert_eq!(state.history("ann", "q1@x").len(), 2, "eve's turns do not join ann's conversation");
        assert_eq!(state.history("eve", "q1@x").len(), 2);
        let other = StateStore::load(&dir.path().join("other.json")).unwrap();
        assert_ne!(other.reply_key(), state.reply_key(), "each installation draws its own key");
    }

    #[test]
    fn a_file_of_an_older_version_loads_without_its_ownerless_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let old = r#"{"uid_validity":7,"floor_uid":12,"handled":[],"done":{"a@x":1},
            "threads":{"root@x":{"turns":[{"role":"user","text":"Q?"}],"last_used":1}},
            "members":{"r@x":"root@x"}}"#;
        fs::write(&path, old).unwrap();
        let mut state = StateStore::load(&path).unwrap();
        assert_eq!(state.open_mailbox(7, 40), MailboxChange::Same);
        assert!(state.is_done("a@x"));
        assert_eq!(state.thread_of("ann", "r@x"), None);
        futures::executor::block_on(state.save()).unwrap();
        assert!(!fs::read_to_string(&path).unwrap().contains("Q?"), "the old threads are gone");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(StateStore::load(&path), Err(EmailError::State { .. })));
    }
}
