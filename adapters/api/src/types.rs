//! Plain data exchanged across the gateway boundary.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AskError;

/// Where a call comes from. The core maps it to the collections it may read and write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scope {
    /// Platform name: `discord`, `matrix`, `slack`, `email`, `cli`, `http`.
    pub platform: String,
    /// The guild, space, workspace or mail domain the room belongs to, if any.
    pub space: Option<String>,
    /// The channel, room or mailbox; for the CLI and HTTP API, the collection name.
    pub room: String,
    /// The thread inside the room, if any.
    pub thread: Option<String>,
}

impl Scope {
    /// A scope for local surfaces (CLI, HTTP API) that name their collection directly.
    pub fn local(platform: &str, collection: &str) -> Self {
        Scope { platform: platform.to_owned(), space: None, room: collection.to_owned(), thread: None }
    }
}

/// Who makes a call, as the platform reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    /// The platform's stable user id (Discord snowflake, Matrix user id, email address).
    pub user_id: String,
    /// A name to show, if the platform gave one.
    pub display_name: Option<String>,
    /// Roles or power levels the platform reports, used by the permission rules.
    pub roles: Vec<String>,
    /// True when the platform says this user owns the room or space.
    pub is_owner: bool,
}

impl Actor {
    /// The local operator (CLI, or the HTTP API with a valid token).
    pub fn operator() -> Self {
        Actor { user_id: "operator".into(), display_name: None, roles: vec!["admin".into()], is_owner: true }
    }
}

/// Who said an earlier turn of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person asking.
    User,
    /// The bot's answer.
    Assistant,
}

/// One earlier message of the thread a question was asked in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Turn {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub text: String,
}

/// A question with the thread's earlier turns, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Question {
    /// The question as asked.
    pub text: String,
    /// Earlier turns of the thread, oldest first.
    #[serde(default)]
    pub history: Vec<Turn>,
}

impl Question {
    /// A question without earlier turns.
    pub fn new(text: impl Into<String>) -> Self {
        Question { text: text.into(), history: Vec::new() }
    }
}

/// Where an uploaded file came from, kept as the locator of its chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Origin {
    /// A link back to the chat message or mail the file came from.
    pub link: Option<String>,
    /// Who sent it.
    pub sender: Option<String>,
    /// When it was sent (RFC 3339).
    pub sent_at: Option<String>,
}

/// A file to ingest. On the plugin wire its bytes are base64.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Upload {
    /// The file's name as the user gave it; also the source key that a later upload replaces.
    pub file_name: String,
    /// The MIME type the platform reported, if any (a hint: the content is sniffed too).
    #[serde(default)]
    pub mime: Option<String>,
    /// The file's content.
    #[serde(with = "crate::wire::base64_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub bytes: Vec<u8>,
    /// Where the file came from.
    #[serde(default)]
    pub origin: Origin,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("file_name", &self.file_name)
            .field("mime", &self.mime)
            .field("bytes", &self.bytes.len())
            .field("origin", &self.origin)
            .finish()
    }
}

/// Where in a document a cited chunk stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Locator {
    /// 1-based page number (PDF).
    pub page: Option<u32>,
    /// Headings from the top of the document down to the chunk.
    #[serde(default)]
    pub heading_path: Vec<String>,
    /// The attachment inside an email the chunk came from.
    pub attachment: Option<String>,
    /// Email subject, when the document is (or came from) an email.
    pub subject: Option<String>,
    /// Email or chat message date (RFC 3339).
    pub date: Option<String>,
    /// Link to the original chat message.
    pub link: Option<String>,
}

impl Locator {
    /// True when there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.to_string().is_empty()
    }
}

impl fmt::Display for Locator {
    /// A short human form such as `p. 3 · Setup › Network`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(subject) = &self.subject {
            match &self.date {
                Some(date) => parts.push(format!("“{subject}”, {}", date.get(..10).unwrap_or(date))),
                None => parts.push(format!("“{subject}”")),
            }
        }
        if let Some(attachment) = &self.attachment {
            parts.push(attachment.clone());
        }
        if let Some(page) = self.page {
            parts.push(format!("p. {page}"));
        }
        if !self.heading_path.is_empty() {
            parts.push(self.heading_path.join(" › "));
        }
        f.write_str(&parts.join(" · "))
    }
}

/// One numbered source of an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Citation {
    /// The number the answer text uses, `[n]`, counted from 1 in order of first use.
    pub n: u32,
    /// The document the cited chunk belongs to.
    pub document_id: String,
    /// The document's title.
    pub title: String,
    /// Where in the document the chunk stands.
    pub locator: Locator,
    /// A short quote from the cited chunk.
    pub snippet: String,
    /// Fused retrieval score (higher is better); comparable only within one answer.
    pub score: f32,
    /// How well this source backs the sentences that cite it: the weakest of them.
    #[serde(default)]
    pub support: Support,
    /// The support check's probability that this source backs its weakest sentence (0 to 1),
    /// when it was checked.
    #[serde(default)]
    pub support_score: Option<f32>,
    /// Who put this source's markers in the text: the model, Footnote's check, or both.
    #[serde(default)]
    pub cited_by: CitedBy,
}

/// How well the sources back a sentence, or a source the sentences citing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// The check found the source saying what the sentence says.
    Supported,
    /// The source shares some of the sentence's content, but the check is not sure it says it.
    Partial,
    /// No source says it: the sentence is marked "not found in the sources".
    NotFound,
    /// Not checked: no claim to check (a greeting, "See also"), the check is off, or the answer
    /// was not written by the model.
    #[default]
    Unchecked,
    /// A source listed without being cited (the answer cites nothing, or the model was down).
    NotCited,
}

/// Who placed a citation's markers in the answer text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CitedBy {
    /// The model wrote every marker of this source (`[n]`), and the check kept them.
    #[default]
    Model,
    /// Footnote placed them (`[n†]`): the model cited another source or none for the sentence.
    Footnote,
    /// Some markers are the model's, some Footnote's.
    Both,
    /// No marker: the source is listed without being cited.
    None,
}

/// The marker suffix of a citation placed by Footnote rather than the model: `[2†]`.
pub const ATTRIBUTED_MARK: char = '†';
/// The tag after a sentence that no source supports.
pub const NOT_FOUND_TAG: &str = "[not found in the sources]";

/// One sentence of an answer as the support check saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentenceCheck {
    /// The sentence without its markers.
    pub text: String,
    /// The citations (`n`) it carries after the check.
    pub sources: Vec<u32>,
    /// How well the sentence is backed.
    pub support: Support,
    /// The check's probability that its best source backs it (0 to 1), when it was checked.
    pub score: Option<f32>,
}

/// Why an answer looks the way it does, when it is not a plain cited answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// Nothing in the scope's documents matched: no answer was invented.
    NothingFound,
    /// The model cited none of its sources: they are all shown.
    Uncited,
    /// The model could not be reached: the best-matching sources are shown instead of an answer.
    ModelUnreachable,
}

impl Notice {
    /// A sentence to show above or below the answer.
    pub fn user_message(self) -> &'static str {
        match self {
            Notice::NothingFound => "I found nothing about this in your documents.",
            Notice::Uncited => "The answer did not cite its sources; these are the passages it was given.",
            Notice::ModelUnreachable => {
                "The language model is unreachable right now, so here are the best-matching passages instead of an answer."
            }
        }
    }
}

/// How long the parts of an answer took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    /// Milliseconds spent searching.
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub retrieval: Duration,
    /// Milliseconds from the question to the first answer token.
    #[serde(with = "millis_opt")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub first_token: Option<Duration>,
    /// Milliseconds from the question to the checked answer.
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub total: Duration,
}

/// A complete, checked answer.
///
/// Markers in `text`: `[n]` was written by the model and kept by the check, `[n†]` was placed by
/// Footnote's check (see [`ATTRIBUTED_MARK`]); a sentence that no source supports is followed by
/// [`NOT_FOUND_TAG`].
///
/// The sentence that explains an answer (nothing found, model unreachable, sources uncited) lives
/// in `notice` alone: `text` is only what the model wrote, empty when no model answered. A
/// renderer shows the notice's [`user_message`](Notice::user_message), then the text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    /// What the model wrote; every `[n]` or `[n†]` in it refers to `citations[n-1]`. Empty when
    /// no model answered (then `notice` says why).
    pub text: String,
    /// The numbered sources, `citations[n-1]` for `[n]`.
    pub citations: Vec<Citation>,
    /// Why the answer looks as it does, when it is not a plain cited answer.
    pub notice: Option<Notice>,
    /// The chat model that wrote it (empty when no model was used).
    pub model: String,
    /// How long the parts of the answer took.
    pub timings: Timings,
    /// Each sentence with its support after the check (empty when there was nothing to check).
    #[serde(default)]
    pub sentences: Vec<SentenceCheck>,
    /// True when the model stopped before it finished (its length limit or the context window
    /// ran out): the answer is incomplete.
    #[serde(default)]
    pub cut_short: bool,
}

impl Answer {
    /// The answer when nothing in the scope's documents matched: no text, no sources, and the
    /// [`Notice::NothingFound`] sentence.
    pub fn nothing_found(timings: Timings) -> Self {
        Answer::without_model(Notice::NothingFound, Vec::new(), timings)
    }

    /// The answer when the model could not be reached: the best-matching sources, listed without
    /// being cited, under the [`Notice::ModelUnreachable`] sentence.
    pub fn model_unreachable(citations: Vec<Citation>, timings: Timings) -> Self {
        Answer::without_model(Notice::ModelUnreachable, citations, timings)
    }

    fn without_model(notice: Notice, citations: Vec<Citation>, timings: Timings) -> Self {
        Answer {
            text: String::new(),
            citations,
            notice: Some(notice),
            model: String::new(),
            timings,
            sentences: Vec::new(),
            cut_short: false,
        }
    }
}

/// What an answer in progress reports. On the wire: `{"type": "token", "data": "text"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum AskEvent {
    /// Waiting for the model; `position` 1 means next.
    Queued {
        /// Place in the queue.
        position: usize,
    },
    /// The model is being loaded into memory.
    LoadingModel,
    /// A piece of answer text, as the model writes it (markers not yet checked).
    Token(String),
    /// The checked answer: its text replaces everything streamed before.
    Done(Answer),
    /// The answer failed; the error's `user_message()` says why.
    Failed(AskError),
}

/// What became of an upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IngestOutcome {
    /// A new document.
    Added,
    /// The same bytes were already stored in this collection.
    Duplicate,
    /// The same source had other content, which this one replaced.
    Replaced {
        /// The id of the document it replaced.
        previous_id: String,
    },
}

/// What became of a stored upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestReceipt {
    /// The stored document's id (to `forget` it).
    pub document_id: String,
    /// The document's title.
    pub title: String,
    /// The collection it was stored in.
    pub collection: String,
    /// How many chunks it was cut into.
    pub chunks: u32,
    /// How many pages it has, for paged formats.
    pub pages: Option<u32>,
    /// Whether it was new, a duplicate or a replacement.
    pub outcome: IngestOutcome,
    /// True when the embedding model was unreachable: the text is searchable by keywords now and
    /// the embeddings will be filled in when the model answers again.
    pub embeddings_pending: bool,
}

impl IngestReceipt {
    /// One line for a chat reply.
    pub fn summary(&self) -> String {
        let what = match &self.outcome {
            IngestOutcome::Added => "Added",
            IngestOutcome::Duplicate => "Already had",
            IngestOutcome::Replaced { .. } => "Updated",
        };
        let mut line = format!("{what} “{}” ({}", self.title, counted(self.chunks, "chunk"));
        if let Some(pages) = self.pages {
            line.push_str(&format!(", {}", counted(pages, "page")));
        }
        line.push_str(&format!(") as document {}", self.document_id));
        if let IngestOutcome::Replaced { previous_id } = &self.outcome {
            line.push_str(&format!(", replacing {previous_id}"));
        }
        line.push('.');
        if self.embeddings_pending {
            line.push_str(
                " The embedding model is unreachable: keyword search works now, meaning search once it is back.",
            );
        }
        line
    }
}

/// `n` and the noun, in the plural unless `n` is 1: "1 chunk", "3 chunks".
pub(crate) fn counted(n: u32, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// One stored document, as listed to a scope that can read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentInfo {
    /// The document's id.
    pub id: String,
    /// The document's title.
    pub title: String,
    /// Where it came from: the file name or source key it was stored under.
    pub source: String,
    /// The collection it is in.
    pub collection: String,
    /// Its format, as extraction named it (such as `pdf`).
    pub kind: String,
    /// How many chunks it was cut into.
    pub chunks: u32,
    /// Its size in bytes as uploaded.
    pub bytes: u64,
    /// RFC 3339.
    pub added_at: String,
    /// Chunks still waiting for their embedding.
    pub pending_embeddings: u32,
}

/// What a `forget` removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForgetReceipt {
    /// The removed document's id.
    pub document_id: String,
    /// Its title.
    pub title: String,
    /// How many chunks went with it.
    pub chunks: u32,
}

/// The state of one model on the Ollama server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelState {
    /// The model's name as Ollama knows it.
    pub name: String,
    /// Pulled on the server.
    pub available: bool,
    /// Loaded in memory now.
    pub loaded: bool,
    /// When Ollama will unload it (RFC 3339), if loaded.
    pub expires_at: Option<String>,
}

/// Whether the models are ready and how much is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// Whether Ollama answered.
    pub ollama_reachable: bool,
    /// The chat model.
    pub chat_model: ModelState,
    /// The embedding model.
    pub embed_model: ModelState,
    /// Documents stored.
    pub documents: u64,
    /// Chunks stored.
    pub chunks: u64,
    /// Chunks still waiting for their embedding.
    pub pending_embeddings: u64,
    /// A problem and its fix, when something is wrong.
    pub problem: Option<String>,
}

/// One model's warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelWarmup {
    /// The model's name.
    pub name: String,
    /// Milliseconds the warm-up call took.
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub took: Duration,
    /// Milliseconds Ollama spent loading it (zero when it was already loaded).
    #[serde(with = "millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub load: Duration,
}

/// What a warm-up did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WarmupReport {
    /// Each model, in the order they were loaded.
    pub models: Vec<ModelWarmup>,
}

impl From<AskError> for AskEvent {
    fn from(error: AskError) -> Self {
        AskEvent::Failed(error)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod millis_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
