//! The mailbox loop: open the mailbox, handle every new unseen mail in UID order, then wait
//! (IDLE, or a poll when the server has none) and start over.
//!
//! The order for one mail is what makes it lose nothing and answer nothing twice:
//! 1. skip it when its UID is recorded as handled, or its Message-ID as done (then only mark it);
//! 2. fetch it, record it as in progress (state file, fsynced), then parse it and call the core
//!    (ingest, ask), then record that the core came back;
//! 3. send the reply;
//! 4. record the Message-ID as done (state file, fsynced);
//! 5. mark it `\Seen` or move it to the processed folder;
//! 6. record the UID as handled.
//!
//! A crash in 2, while the mail is read or the core works on it, is the one a hostile mail could
//! cause: on the next start the mail found in progress is tried once more (the crash may have
//! been a restart or a failover); found in progress a second time, it is not read again but
//! moved to [`FAILED_FOLDER`] (or flagged `\Flagged` when that fails), and its sender gets one
//! polite refusal. A crash between 2 and 4 repeats the work (the core dedupes an identical ingest; a
//! repeated reply has the same Message-ID); a crash between 4 and 6 only repeats the marking.
//!
//! When several instances share a database, the state lives in the gateway's ledger and only
//! the instance holding the mailbox's lease runs this loop: the instance that takes the mailbox
//! over after a crash reads the same state, so it answers the mail the crashed one had not
//! finished, and only that.

use std::sync::Arc;

use footnote_adapter::{Actor, CancellationToken, Gateway, Question, Scope};
use futures::TryStreamExt;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::Failpoint;
use crate::config::{CollectionMapping, Config};
use crate::convert::{self, Action, Inbound};
use crate::error::EmailError;
use crate::imap::{self, ImapSession};
use crate::reply::{self, ReplyBody};
use crate::state::{self, MailboxChange, StateStore};

/// Platform name in every scope.
pub const PLATFORM: &str = "email";
/// Where a mail that took the process down is moved (its parts joined by the server's
/// hierarchy separator).
pub const FAILED_FOLDER: [&str; 2] = ["Footnote", "Failed"];

/// The room (collection) a sender's mail goes to.
fn room(config: &Config, sender: &str) -> String {
    match &config.collection {
        CollectionMapping::Sender => sender.to_owned(),
        CollectionMapping::Domain => {
            convert::split_address(sender).map_or_else(|| sender.to_owned(), |(_, d)| d.to_owned())
        }
        CollectionMapping::Fixed(name) => name.clone(),
    }
}

/// Who a conversation belongs to: its collection and its sender. Only that sender's mail
/// continues it, whichever Message-IDs another sender copies into `References:`.
fn owner(config: &Config, sender: &str) -> String {
    format!("{}\u{1e}{sender}", room(config, sender))
}

/// One running adapter: configuration, gateway, state and the SMTP transport.
pub struct Worker {
    config: Config,
    gateway: Arc<dyn Gateway>,
    state: StateStore,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    failpoint: Option<Failpoint>,
}

impl Worker {
    /// Loads the state (from the gateway's ledger when several instances share the mailbox)
    /// and prepares SMTP; does not connect yet.
    pub async fn new(
        config: Config,
        gateway: Arc<dyn Gateway>,
        failpoint: Option<Failpoint>,
    ) -> Result<Self, EmailError> {
        let state = StateStore::open(&config.state_path, gateway.ledger()).await?;
        let smtp = imap::smtp(&config)?;
        Ok(Worker { config, gateway, state, smtp, failpoint })
    }

    /// Serves the mailbox until `shutdown` is cancelled or an error ends the connection.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), EmailError> {
        let mut session = imap::connect(&self.config).await?;
        let idle = session.capabilities().await?.has_str("IDLE");
        tracing::info!(host = %self.config.imap_host, mailbox = %self.config.mailbox, idle, "Email adapter connected.");
        if let Some(folder) = &self.config.processed_folder {
            // Fails harmlessly (NO) when the folder exists already.
            if let Err(error) = session.create(folder).await {
                tracing::debug!(%folder, %error, "Processed folder not created.");
            }
        }
        while !shutdown.is_cancelled() {
            self.scan(&mut session, &shutdown).await?;
            session = self.wait(session, idle, &shutdown).await?;
        }
        session.logout().await.ok();
        Ok(())
    }

    async fn wait(
        &self,
        mut session: ImapSession,
        idle: bool,
        shutdown: &CancellationToken,
    ) -> Result<ImapSession, EmailError> {
        let interval = self.config.poll_interval();
        if !idle {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => {}
            }
            return Ok(session);
        }
        let mut handle = session.idle();
        handle.init().await?;
        {
            let (event, _stop) = handle.wait_with_timeout(interval);
            tokio::select! {
                result = tokio::time::timeout(interval, event) => { if let Ok(r) = result { r?; } }
                () = shutdown.cancelled() => {}
            }
        }
        session = handle.done().await?;
        while session.unsolicited_responses.try_recv().is_ok() {}
        Ok(session)
    }

    /// Opens the mailbox and handles every unseen mail above the recorded floor.
    async fn scan(&mut self, session: &mut ImapSession, shutdown: &CancellationToken) -> Result<(), EmailError> {
        let mailbox = session.select(&self.config.mailbox).await?;
        let validity = mailbox.uid_validity.ok_or_else(|| EmailError::NoUidValidity(self.config.mailbox.clone()))?;
        let change = self.state.open_mailbox(validity, mailbox.uid_next.unwrap_or(1));
        match change {
            MailboxChange::Same => {}
            MailboxChange::FirstStart => {
                tracing::info!(uid_validity = validity, "First start: mail already in the mailbox is left alone.");
            }
            MailboxChange::Reset { previous } => tracing::warn!(
                previous,
                uid_validity = validity,
                "UIDVALIDITY changed: re-scanning unseen mail; answered Message-IDs are skipped."
            ),
        }
        if change != MailboxChange::Same {
            self.state.save().await?;
        }
        if let Some(mail) = self.state.in_progress() {
            let interrupted = mail.uid_validity == validity && !self.state.is_handled(mail.uid);
            if interrupted && (mail.refusing || mail.attempts >= state::MAX_ATTEMPTS) {
                self.set_aside(session, mail.uid, mail.refusing).await?;
            } else if interrupted {
                // Once is no proof against the mail (a restart, a failover): it is tried again,
                // and set aside if the process dies on it a second time.
                tracing::warn!(
                    uid = mail.uid,
                    "A mail was being worked on when the process stopped; trying it once more."
                );
            } else {
                self.state.end();
                self.state.save().await?;
            }
        }
        let query = format!("UID {}:* UNSEEN NOT DELETED", self.state.next_uid());
        let mut uids: Vec<u32> =
            session.uid_search(query).await?.into_iter().filter(|u| !self.state.is_handled(*u)).collect();
        uids.sort_unstable();
        for uid in uids {
            if shutdown.is_cancelled() {
                break;
            }
            self.handle(session, uid).await?;
        }
        Ok(())
    }

    async fn fetch(
        session: &mut ImapSession,
        uid: u32,
        query: &str,
    ) -> Result<Option<async_imap::types::Fetch>, EmailError> {
        let fetches: Vec<_> = session.uid_fetch(uid.to_string(), query).await?.try_collect().await?;
        Ok(fetches.into_iter().find(|f| f.uid == Some(uid)))
    }

    /// Handles one mail, from fetching it to recording its UID.
    async fn handle(&mut self, session: &mut ImapSession, uid: u32) -> Result<(), EmailError> {
        let Some(meta) = Self::fetch(session, uid, "(UID RFC822.SIZE)").await? else {
            self.state.mark_handled(uid);
            return self.state.save().await;
        };
        let size = u64::from(meta.size.unwrap_or(0));
        let oversize = (size > self.config.max_message_bytes).then_some(size);
        let query = if oversize.is_some() { "(UID BODY.PEEK[HEADER])" } else { "(UID BODY.PEEK[])" };
        let raw = match Self::fetch(session, uid, query).await? {
            Some(f) => f.body().or_else(|| f.header()).map(<[u8]>::to_vec).unwrap_or_default(),
            None => Vec::new(),
        };
        // From here until the core has come back, only the process dying stops the work: found
        // in progress on the next start, this mail took the process down.
        self.state.begin(uid);
        self.state.save().await?;
        self.trip(Failpoint::WhileReading)?;
        let (state, config) = (&self.state, &self.config);
        let classified =
            convert::classify(&raw, oversize, config, &|sender, id| state.thread_of(&owner(config, sender), id));
        let (Some(inbound), action) = (classified.inbound, classified.action) else {
            tracing::info!(uid, "Ignoring a mail without a usable sender.");
            self.state.end();
            self.state.mark_handled(uid);
            return self.state.save().await;
        };
        if let Action::Ignore(reason) = &action {
            tracing::info!(uid, sender = %inbound.sender, message_id = %inbound.message_id, %reason, "Leaving mail alone.");
            self.state.end();
            self.state.mark_handled(uid);
            return self.state.save().await;
        }
        if self.state.is_done(&inbound.message_id) {
            tracing::info!(uid, message_id = %inbound.message_id, "Mail already handled; only marking it.");
            self.state.end();
        } else {
            self.work(&inbound, action).await?;
            self.state.record_done(&inbound.message_id);
            self.state.save().await?;
        }
        self.trip(Failpoint::BeforeMark)?;
        self.mark_processed(session, uid).await?;
        self.state.mark_handled(uid);
        self.state.save().await
    }

    async fn work(&mut self, inbound: &Inbound, action: Action) -> Result<(), EmailError> {
        let scope = self.scope(inbound);
        let actor = Actor {
            user_id: inbound.sender.clone(),
            display_name: inbound.sender_name.clone(),
            roles: Vec::new(),
            is_owner: false,
        };
        match action {
            Action::Ignore(_) => self.came_back().await,
            Action::Refuse(refusal) => {
                self.came_back().await?;
                tracing::info!(sender = %inbound.sender, ?refusal, "Refusing mail.");
                self.send(inbound, &ReplyBody::Notice(refusal.user_message())).await
            }
            Action::Ingest(uploads) => {
                let mut outcomes = Vec::with_capacity(uploads.len());
                for upload in uploads {
                    let name = upload.file_name.clone();
                    let outcome = self.gateway.ingest(&scope, &actor, upload).await;
                    if let Err(error) = &outcome {
                        tracing::warn!(sender = %inbound.sender, file = %name, %error, "Ingest failed.");
                    }
                    outcomes.push(outcome);
                }
                self.came_back().await?;
                self.trip(Failpoint::AfterGateway)?;
                self.send(inbound, &ReplyBody::Receipts(&outcomes)).await
            }
            Action::Ask { question, follow_up } => {
                let owner = owner(&self.config, &inbound.sender);
                let history = if follow_up { self.state.history(&owner, &inbound.thread_root) } else { Vec::new() };
                let asked = Question { text: question.clone(), history };
                let answered = self.gateway.ask(&scope, &actor, asked).await;
                self.came_back().await?;
                match answered {
                    Ok(answer) => {
                        self.trip(Failpoint::AfterGateway)?;
                        self.send(inbound, &ReplyBody::Answer(&answer)).await?;
                        let key = self.state.reply_key();
                        let reply_id = reply::reply_message_id(inbound, "answer", &self.config.from_address, &key);
                        self.state.record_exchange(
                            &owner,
                            &inbound.thread_root,
                            [&inbound.message_id, &reply_id],
                            &question,
                            &answer.text,
                        );
                        Ok(())
                    }
                    Err(error) => {
                        tracing::warn!(sender = %inbound.sender, %error, "Ask failed.");
                        self.send(inbound, &ReplyBody::Notice(error.user_message())).await
                    }
                }
            }
        }
    }

    /// Records that the core came back from the current mail's work.
    async fn came_back(&mut self) -> Result<(), EmailError> {
        self.state.end();
        self.state.save().await
    }

    /// Deals with a mail whose work took the process down: one polite refusal to its sender
    /// (unless that refusal was itself under way when the process died), then the mail is moved
    /// to [`FAILED_FOLDER`], or flagged `\Flagged` when it cannot be moved. Only its header is
    /// read again.
    async fn set_aside(&mut self, session: &mut ImapSession, uid: u32, refused_before: bool) -> Result<(), EmailError> {
        tracing::warn!(uid, "Footnote stopped twice while working on this mail; it is set aside and not read again.");
        if !refused_before {
            self.state.refusing();
            self.state.save().await?;
            let header = match Self::fetch(session, uid, "(UID BODY.PEEK[HEADER])").await? {
                Some(f) => f.header().or_else(|| f.body()).map(<[u8]>::to_vec).unwrap_or_default(),
                None => Vec::new(),
            };
            let (state, config) = (&self.state, &self.config);
            let classified = convert::classify_interrupted(&header, config, &|sender, id| {
                state.thread_of(&owner(config, sender), id)
            });
            if let (Some(inbound), Action::Refuse(refusal)) = (classified.inbound, classified.action)
                && !self.state.is_done(&inbound.message_id)
            {
                self.send(&inbound, &ReplyBody::Notice(refusal.user_message())).await?;
                self.state.record_done(&inbound.message_id);
                self.state.save().await?;
            }
        }
        self.move_to_failed(session, uid).await;
        self.state.end();
        self.state.mark_handled(uid);
        self.state.save().await
    }

    /// Moves a mail to [`FAILED_FOLDER`] (creating it), or flags it when that fails.
    async fn move_to_failed(&self, session: &mut ImapSession, uid: u32) {
        let separator = match session.list(Some(""), Some("")).await {
            Ok(names) => {
                let names: Vec<_> = names.try_collect().await.unwrap_or_default();
                names.first().and_then(|n| n.delimiter().map(str::to_owned)).unwrap_or_else(|| "/".into())
            }
            Err(_) => "/".into(),
        };
        let folder = FAILED_FOLDER.join(&separator);
        if let Err(error) = session.create(&folder).await {
            tracing::debug!(%folder, %error, "Failed folder not created (it may exist).");
        }
        let uid_text = uid.to_string();
        let flagged = match session.uid_store(&uid_text, "+FLAGS.SILENT (\\Seen \\Flagged)").await {
            Ok(updates) => updates.try_collect::<Vec<_>>().await.is_ok(),
            Err(_) => false,
        };
        match session.uid_mv(&uid_text, &folder).await {
            Ok(()) => tracing::info!(uid, %folder, "Mail moved aside."),
            Err(error) => {
                tracing::warn!(uid, %folder, %error, flagged, "Could not move the mail aside; it stays flagged.");
            }
        }
    }

    fn scope(&self, inbound: &Inbound) -> Scope {
        let domain = convert::split_address(&inbound.sender).map(|(_, d)| d.to_owned());
        let room = room(&self.config, &inbound.sender);
        Scope { platform: PLATFORM.into(), space: domain, room, thread: Some(inbound.thread_root.clone()) }
    }

    async fn send(&self, inbound: &Inbound, body: &ReplyBody<'_>) -> Result<(), EmailError> {
        let message = reply::build(&self.config.from_address, inbound, body, &self.state.reply_key())?;
        self.smtp.send(message).await?;
        tracing::info!(to = %inbound.sender, in_reply_to = %inbound.message_id, "Reply sent.");
        Ok(())
    }

    async fn mark_processed(&self, session: &mut ImapSession, uid: u32) -> Result<(), EmailError> {
        let uid = uid.to_string();
        match &self.config.processed_folder {
            Some(folder) => {
                // Flag first: should the move fail half-way, the copy left behind is not re-read.
                session.uid_store(&uid, "+FLAGS.SILENT (\\Seen)").await?.try_collect::<Vec<_>>().await?;
                session.uid_mv(&uid, folder).await?;
            }
            None => {
                session.uid_store(&uid, "+FLAGS.SILENT (\\Seen)").await?.try_collect::<Vec<_>>().await?;
            }
        }
        Ok(())
    }

    fn trip(&self, point: Failpoint) -> Result<(), EmailError> {
        if self.failpoint == Some(point) { Err(EmailError::Failpoint(point)) } else { Ok(()) }
    }
}
