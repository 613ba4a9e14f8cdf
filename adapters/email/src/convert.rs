//! Pure mapping from a received mail to what the bot should do with it: ignore it (and why),
//! refuse it politely (over a limit), ingest it, or answer it. No I/O here, so every rule is
//! unit-tested on hand-written RFC 5322 samples.
//!
//! The order of the checks matters: loops and strangers are ruled out before anything else, so a
//! bounce or an out-of-office from an allowed domain is never answered, and nothing about a
//! stranger's mail (not even its size) gets a reply.

use footnote_adapter::{Origin, Upload};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::config::Config;
use crate::rules::{authenticated, automatic_signal, same_mailbox};
pub use crate::rules::{is_allowed, matches_address, split_address};
use crate::text;

/// Most `message/rfc822` parts (forwarded messages, nested ones included) a mail may hold. Past
/// it the mail is refused with only its header read: a deep nest of forwarded messages is cheap
/// to send and costly to take apart.
pub const MAX_MESSAGE_PARTS: usize = 64;

/// What the bot does with one mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Leave it alone (unanswered, not marked), and log why.
    Ignore(IgnoreReason),
    /// Answer with a polite refusal and do nothing else.
    Refuse(Refusal),
    /// Store these files (whole `.eml` messages) in the sender's collection.
    Ingest(Vec<Upload>),
    /// Answer a question in the mail's thread.
    Ask {
        /// The question, without quoted text, signature or subject prefix.
        question: String,
        /// True when the mail answers one of the bot's replies (a follow-up).
        follow_up: bool,
    },
}

/// Why a mail is left alone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    /// The bytes are not a mail, or it has no usable `From:` address.
    #[error("no usable From address")]
    NoSender,
    /// The bot sent it itself.
    #[error("sent by the bot itself")]
    OwnMail,
    /// An automatic message (auto-reply, bounce, list mail); the text names the signal.
    #[error("automatic mail ({0})")]
    Automatic(String),
    /// The sender is not in `allowed_senders`.
    #[error("sender not allowed")]
    NotAllowed,
    /// `require_dkim_or_spf` is on and the operator's server found no DMARC, DKIM or SPF pass
    /// aligned with `From:`.
    #[error("no DMARC, DKIM or SPF pass for the From: domain from our own mail server")]
    NotAuthenticated,
    /// Not addressed to the ask or ingest address, no prefix, not a forward nor a follow-up.
    #[error("not a question, forward or follow-up")]
    NothingToDo,
}

/// Why a mail is refused with a polite reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The whole message is larger than `max_message_bytes`.
    MessageTooLarge { bytes: u64, limit: u64 },
    /// It has more attachments than `max_attachments`.
    TooManyAttachments { count: usize, limit: usize },
    /// One attachment is larger than `max_attachment_bytes`.
    AttachmentTooLarge { name: String, bytes: u64, limit: u64 },
    /// A question with no text in it.
    EmptyQuestion,
    /// It holds more forwarded messages than [`MAX_MESSAGE_PARTS`].
    TooManyForwards { limit: usize },
    /// Working on it took the bot down (found on the next start); it was moved aside.
    Damaged,
}

impl Refusal {
    /// The sentence sent back to the sender.
    pub fn user_message(&self) -> String {
        match self {
            Refusal::MessageTooLarge { bytes, limit } => format!(
                "Your message is {}, which is more than the {} I accept, so I did not read it. \
                 Nothing was added. Please send smaller files, or fewer at a time.",
                footnote_adapter::render::human_bytes(*bytes),
                footnote_adapter::render::human_bytes(*limit)
            ),
            Refusal::TooManyAttachments { count, limit } => format!(
                "Your message has {count} attachments; I accept at most {limit} per message, so nothing was added. \
                 Please send them in several messages."
            ),
            Refusal::AttachmentTooLarge { name, bytes, limit } => format!(
                "The attachment “{name}” is {}, which is more than the {} I accept per file, so nothing was added.",
                footnote_adapter::render::human_bytes(*bytes),
                footnote_adapter::render::human_bytes(*limit)
            ),
            Refusal::EmptyQuestion => {
                "I found no question in your message. Write it in the body or the subject.".into()
            }
            Refusal::TooManyForwards { limit } => format!(
                "Your message holds more than {limit} forwarded messages (nested ones included), so I did not read it. \
                 Nothing was added."
            ),
            Refusal::Damaged => {
                "I couldn't read your message: it looks damaged or too complex. Nothing was added.".into()
            }
        }
    }
}

/// The facts about a mail that a reply and the bookkeeping need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// Its Message-ID without angle brackets (a stable made-up one when it has none).
    pub message_id: String,
    /// Sender address, lower-cased.
    pub sender: String,
    /// Sender display name.
    pub sender_name: Option<String>,
    /// Subject as written (may be empty).
    pub subject: String,
    /// Date header as RFC 3339.
    pub date: Option<String>,
    /// The chain for a reply's `References:`: the mail's own References (or In-Reply-To),
    /// oldest first, without its own id.
    pub references: Vec<String>,
    /// The Message-ID that starts the conversation: the thread key.
    pub thread_root: String,
}

/// A classified mail: its facts (when it has a sender) and the action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    /// The mail's facts; `None` when it could not be parsed enough to reply to.
    pub inbound: Option<Inbound>,
    /// What to do with it.
    pub action: Action,
}

/// Decides what to do with `raw`. `oversize` is the full size when only the header was fetched
/// because the message is over `max_message_bytes`. `thread_of(sender, id)` maps a Message-ID
/// of one of `sender`'s conversations with the bot (a question it answered or one of its replies)
/// to that conversation's root; another sender's ids mean nothing, even when they are known.
pub fn classify(
    raw: &[u8],
    oversize: Option<u64>,
    config: &Config,
    thread_of: &dyn Fn(&str, &str) -> Option<String>,
) -> Classified {
    let refusal = match oversize {
        Some(bytes) => Some(Refusal::MessageTooLarge { bytes, limit: config.max_message_bytes }),
        None if message_parts(raw) > MAX_MESSAGE_PARTS => Some(Refusal::TooManyForwards { limit: MAX_MESSAGE_PARTS }),
        None => None,
    };
    classify_with(raw, refusal, config, thread_of)
}

/// Classifies a mail whose work took the process down, from its header (`raw` may be the header
/// alone): the same checks on its sender as [`classify`], then [`Refusal::Damaged`].
pub fn classify_interrupted(
    raw: &[u8],
    config: &Config,
    thread_of: &dyn Fn(&str, &str) -> Option<String>,
) -> Classified {
    classify_with(raw, Some(Refusal::Damaged), config, thread_of)
}

/// How many times `message/rfc822` appears in the mail (any case): an upper bound of the
/// forwarded messages it holds, found without parsing it.
fn message_parts(raw: &[u8]) -> usize {
    const NEEDLE: &[u8] = b"message/rfc822";
    raw.windows(NEEDLE.len()).filter(|w| w.eq_ignore_ascii_case(NEEDLE)).count()
}

/// Classifies `raw`; with a `refusal`, only its header is parsed and the refusal is the action
/// once the sender checks pass.
fn classify_with(
    raw: &[u8],
    refusal: Option<Refusal>,
    config: &Config,
    thread_of: &dyn Fn(&str, &str) -> Option<String>,
) -> Classified {
    let parser = MessageParser::default();
    let parsed = if refusal.is_some() { parser.parse_headers(raw) } else { parser.parse(raw) };
    let Some(message) = parsed else {
        return Classified { inbound: None, action: Action::Ignore(IgnoreReason::NoSender) };
    };
    let Some((sender, sender_name)) = sender_of(&message) else {
        return Classified { inbound: None, action: Action::Ignore(IgnoreReason::NoSender) };
    };
    let references = reference_chain(&message);
    let message_id =
        message.message_id().map_or_else(|| format!("{:016x}@footnote.invalid", text::fnv1a(raw)), str::to_owned);
    let known_root = references.iter().rev().find_map(|id| thread_of(&sender, id));
    let thread_root = known_root.clone().or_else(|| references.first().cloned()).unwrap_or_else(|| message_id.clone());
    let inbound = Inbound {
        message_id,
        sender: sender.clone(),
        sender_name,
        subject: message.subject().unwrap_or_default().to_owned(),
        date: message.date().map(mail_parser::DateTime::to_rfc3339),
        references,
        thread_root,
    };
    let action = decide(&message, &inbound, refusal, config, known_root.is_some());
    Classified { inbound: Some(inbound), action }
}

fn decide(
    message: &Message<'_>,
    inbound: &Inbound,
    refusal: Option<Refusal>,
    config: &Config,
    follow_up: bool,
) -> Action {
    let sender = inbound.sender.as_str();
    if same_mailbox(sender, &config.from_address) || same_mailbox(sender, &config.username) {
        return Action::Ignore(IgnoreReason::OwnMail);
    }
    if let Some(signal) = automatic_signal(message, sender) {
        return Action::Ignore(IgnoreReason::Automatic(signal));
    }
    if !is_allowed(sender, &config.allowed_senders) {
        return Action::Ignore(IgnoreReason::NotAllowed);
    }
    if config.require_dkim_or_spf && !authenticated(message, config.authserv_id.as_deref().unwrap_or_default(), sender)
    {
        return Action::Ignore(IgnoreReason::NotAuthenticated);
    }
    if let Some(refusal) = refusal {
        return Action::Refuse(refusal);
    }
    if let Some(refusal) = attachment_limits(message, config) {
        return Action::Refuse(refusal);
    }

    let recipients = recipients(message);
    let to =
        |address: &Option<String>| address.as_ref().is_some_and(|a| recipients.iter().any(|r| matches_address(r, a)));
    let prefixed =
        config.ask_subject_prefix.as_deref().is_some_and(|p| text::strip_prefix(&inbound.subject, p).is_some());
    if to(&config.ingest_address) {
        return Action::Ingest(vec![upload_of(message, inbound)]);
    }
    if follow_up || prefixed {
        return ask(message, inbound, config, follow_up);
    }
    let forwarded = forwarded_messages(message);
    if !forwarded.is_empty() {
        return Action::Ingest(forwarded);
    }
    if text::is_inline_forward(&inbound.subject, message.body_text(0).as_deref().unwrap_or_default()) {
        return Action::Ingest(vec![upload_of(message, inbound)]);
    }
    if to(&config.ask_address) {
        return ask(message, inbound, config, false);
    }
    Action::Ignore(IgnoreReason::NothingToDo)
}

fn ask(message: &Message<'_>, inbound: &Inbound, config: &Config, follow_up: bool) -> Action {
    let body = message.body_text(0).map(|b| text::strip_quoted(&b)).unwrap_or_default();
    let question = if body.trim().is_empty() {
        let subject = text::strip_reply_prefixes(&inbound.subject);
        config
            .ask_subject_prefix
            .as_deref()
            .and_then(|p| text::strip_prefix(subject, p))
            .unwrap_or(subject)
            .trim()
            .to_owned()
    } else {
        body.trim().to_owned()
    };
    if question.is_empty() {
        return Action::Refuse(Refusal::EmptyQuestion);
    }
    Action::Ask { question, follow_up }
}

/// The sender's address (lower-cased) and display name.
fn sender_of(message: &Message<'_>) -> Option<(String, Option<String>)> {
    let from = message.from()?.first()?;
    let address = from.address()?.trim().to_ascii_lowercase();
    split_address(&address)?;
    Some((address, from.name().map(str::to_owned)))
}

/// References (or In-Reply-To when there are none), oldest first.
fn reference_chain(message: &Message<'_>) -> Vec<String> {
    let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        match value {
            mail_parser::HeaderValue::Text(id) => vec![id.to_string()],
            mail_parser::HeaderValue::TextList(ids) => ids.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        }
    };
    let references = ids(message.references());
    if references.is_empty() { ids(message.in_reply_to()) } else { references }
}

fn attachment_limits(message: &Message<'_>, config: &Config) -> Option<Refusal> {
    let mut count = 0;
    let mut stack = vec![message];
    while let Some(m) = stack.pop() {
        for part in m.attachments() {
            count += 1;
            match &part.body {
                PartType::Message(inner) => stack.push(inner),
                _ => {
                    let bytes = part.contents().len() as u64;
                    if bytes > config.max_attachment_bytes {
                        let name = part.attachment_name().unwrap_or("unnamed").to_owned();
                        return Some(Refusal::AttachmentTooLarge { name, bytes, limit: config.max_attachment_bytes });
                    }
                }
            }
        }
    }
    (count > config.max_attachments).then_some(Refusal::TooManyAttachments { count, limit: config.max_attachments })
}

/// Every address the mail was delivered to or written to.
fn recipients(message: &Message<'_>) -> Vec<String> {
    let mut out: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(str::to_ascii_lowercase))
        .collect();
    for header in message.headers() {
        if !["Delivered-To", "X-Original-To"].iter().any(|h| header.name().eq_ignore_ascii_case(h)) {
            continue;
        }
        match header.value() {
            mail_parser::HeaderValue::Text(value) => {
                out.push(value.trim().trim_matches(['<', '>']).to_ascii_lowercase());
            }
            mail_parser::HeaderValue::Address(list) => {
                out.extend(list.iter().filter_map(|a| a.address().map(str::to_ascii_lowercase)));
            }
            _ => {}
        }
    }
    out
}

/// Each `message/rfc822` attachment as an `.eml` upload.
fn forwarded_messages(message: &Message<'_>) -> Vec<Upload> {
    message
        .attachments()
        .filter_map(|part| match &part.body {
            PartType::Message(inner) => {
                let fallback = part.attachment_name().unwrap_or("forwarded message");
                Some(eml_upload(inner, inner.raw_message(), fallback))
            }
            _ => None,
        })
        .collect()
}

/// The whole mail as one `.eml` upload.
fn upload_of(message: &Message<'_>, inbound: &Inbound) -> Upload {
    let mut upload = eml_upload(message, message.raw_message(), "message");
    upload.origin.sender.get_or_insert_with(|| inbound.sender.clone());
    upload
}

fn eml_upload(message: &Message<'_>, raw: &[u8], fallback: &str) -> Upload {
    let subject = text::strip_reply_prefixes(message.subject().unwrap_or_default());
    let stem = text::file_stem(if subject.is_empty() { fallback } else { subject });
    let id = message.message_id().map(str::to_owned);
    let key = id.as_deref().map_or_else(|| text::fnv1a(raw), |id| text::fnv1a(id.as_bytes()));
    Upload {
        file_name: format!("{stem} [{:08x}].eml", key & 0xffff_ffff),
        mime: Some("message/rfc822".into()),
        bytes: raw.to_vec(),
        origin: Origin {
            link: id.map(|id| format!("mid:{id}")),
            sender: message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_ascii_lowercase),
            sent_at: message.date().map(mail_parser::DateTime::to_rfc3339),
        },
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
