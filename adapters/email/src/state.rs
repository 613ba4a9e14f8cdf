//! The adapter's own small persistent state, a JSON file at `state_path` written atomically
//! (temporary file, fsync, rename, fsync of the folder).
//!
//! The adapter cannot reach the core's database through the `footnote-adapter` boundary, and the
//! facts kept here only matter to the mailbox it reads: which UIDs of which UIDVALIDITY are done,
//! which Message-IDs were already answered or ingested (the guard against duplicate replies when
//! a crash comes between replying and flagging, or after a UIDVALIDITY change), the mail being
//! worked on (so that a mail that took the process down is not read again, see
//! [`InProgress`]), and the turns of each conversation so that a follow-up carries the thread's
//! history.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use footnote_adapter::{Role, Turn};
use serde::{Deserialize, Serialize};

use crate::error::EmailError;

/// Most Message-IDs remembered as done; the oldest are forgotten first.
const MAX_DONE: usize = 20_000;
/// Most conversations remembered; the least recently used are forgotten first.
const MAX_THREADS: usize = 1_000;
/// Most turns kept per conversation (the newest).
const MAX_TURNS: usize = 20;

/// One conversation: its turns and the Message-IDs that belong to it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Thread {
    turns: Vec<Turn>,
    last_used: u64,
}

/// The mail whose work had started and not yet come back: recorded (and fsynced) before the
/// mail is read, cleared once the core has answered. Found on start, it means the process died
/// while working on that mail.
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
}

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
    /// Conversations by root Message-ID.
    threads: BTreeMap<String, Thread>,
    /// Any Message-ID of a conversation (questions and the bot's replies) → its root.
    members: BTreeMap<String, String>,
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

/// The state file and its contents.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    data: Data,
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
        Ok(StateStore { path: path.to_owned(), data })
    }

    /// Writes the state: temp file, fsync, rename over the old one, fsync of the folder.
    pub fn save(&self) -> Result<(), EmailError> {
        let json = serde_json::to_vec(&self.data)
            .map_err(|source| EmailError::State { path: self.path.display().to_string(), source })?;
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

    /// Records that work on a mail starts (save before reading the mail).
    pub fn begin(&mut self, uid: u32) {
        let uid_validity = self.data.uid_validity.unwrap_or(0);
        self.data.in_progress = Some(InProgress { uid_validity, uid, refusing: false });
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

    /// The root of the conversation a Message-ID belongs to, if the bot took part in it.
    pub fn thread_of(&self, message_id: &str) -> Option<String> {
        self.data.members.get(message_id).cloned()
    }

    /// The earlier turns of a conversation, oldest first.
    pub fn history(&self, root: &str) -> Vec<Turn> {
        self.data.threads.get(root).map(|t| t.turns.clone()).unwrap_or_default()
    }

    /// Adds a question and its answer to a conversation, and remembers both Message-IDs as
    /// members of it.
    pub fn record_exchange(&mut self, root: &str, ids: [&str; 2], question: &str, answer: &str) {
        let thread = self.data.threads.entry(root.to_owned()).or_default();
        thread.turns.push(Turn { role: Role::User, text: question.to_owned() });
        thread.turns.push(Turn { role: Role::Assistant, text: answer.to_owned() });
        let excess = thread.turns.len().saturating_sub(MAX_TURNS);
        thread.turns.drain(..excess);
        thread.last_used = now();
        for id in ids.into_iter().chain([root]) {
            self.data.members.insert(id.to_owned(), root.to_owned());
        }
        if self.data.threads.len() > MAX_THREADS
            && let Some(stale) = self.data.threads.iter().min_by_key(|(_, t)| t.last_used).map(|(r, _)| r.clone())
        {
            self.data.threads.remove(&stale);
            self.data.members.retain(|_, r| *r != stale);
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
        state.record_exchange("root@x", ["q@x", "r@x"], "Q?", "A [1]");
        state.begin(12);
        state.save().unwrap();

        let mut again = StateStore::load(&path).unwrap();
        assert_eq!(again.open_mailbox(7, 40), MailboxChange::Same);
        assert_eq!(again.next_uid(), 13);
        assert!(again.is_done("a@x"));
        assert_eq!(again.thread_of("r@x").as_deref(), Some("root@x"));
        assert_eq!(again.history("root@x").len(), 2);
        assert_eq!(again.in_progress(), Some(InProgress { uid_validity: 7, uid: 12, refusing: false }));
        again.refusing();
        assert!(again.in_progress().unwrap().refusing);
        again.end();
        assert_eq!(again.in_progress(), None);
        assert_eq!(again.open_mailbox(8, 5), MailboxChange::Reset { previous: 7 });
        assert_eq!(again.next_uid(), 1);
        assert!(again.is_done("a@x"), "Message-IDs survive a UIDVALIDITY change");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(StateStore::load(&path), Err(EmailError::State { .. })));
    }
}
