//! Pure rendering of gateway results into Discord messages within Discord's limits.
//!
//! Answers keep their `[n]` markers in the message text, split with
//! [`split_message`](footnote_adapter::render::split_message) at 2,000 characters; the numbered
//! sources go into embeds that respect the embed limits (title 256, field name 256, field value
//! 1,024, 25 fields, footer 2,048, 6,000 characters in all the embeds of one message, 10 embeds).
//! The plain [`Outgoing`] and [`EmbedSpec`] values are tested here and turned into serenity
//! builders by the handler.

use footnote_adapter::progress::Progress;
pub use footnote_adapter::render::truncate;
use footnote_adapter::render::{answer_notes, split_message, support_remark};
use footnote_adapter::reports::{self, Markup};
use footnote_adapter::{Answer, Citation};
use serenity::all::{CreateEmbed, CreateEmbedFooter};

/// Characters in one message's text.
pub const MESSAGE_LIMIT: usize = 2000;
/// Characters in an embed title.
pub const EMBED_TITLE_LIMIT: usize = 256;
/// Characters in an embed field name.
pub const FIELD_NAME_LIMIT: usize = 256;
/// Characters in an embed field value.
pub const FIELD_VALUE_LIMIT: usize = 1024;
/// Fields in one embed.
pub const FIELDS_PER_EMBED: usize = 25;
/// Characters in an embed footer.
pub const FOOTER_LIMIT: usize = 2048;
/// Characters in all the embeds of one message together.
pub const EMBED_TOTAL_LIMIT: usize = 6000;
/// Embeds in one message.
pub const EMBEDS_PER_MESSAGE: usize = 10;
/// The longest snippet shown for a source before space gets tight.
const SNIPPET_MAX: usize = 300;
/// Embed accent colour (a muted blue).
const SOURCES_COLOUR: u32 = 0x004C_7FBF;

/// One message to send or edit: text and embeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// The message text, at most [`MESSAGE_LIMIT`] characters.
    pub content: String,
    /// Embeds, within the embed limits.
    pub embeds: Vec<EmbedSpec>,
}

/// An embed as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmbedSpec {
    /// Title, at most [`EMBED_TITLE_LIMIT`] characters.
    pub title: String,
    /// `(name, value)` pairs, at most [`FIELDS_PER_EMBED`].
    pub fields: Vec<(String, String)>,
    /// Footer text, if any.
    pub footer: Option<String>,
}

impl EmbedSpec {
    /// The characters Discord counts towards the 6,000 limit.
    pub fn chars(&self) -> usize {
        self.title.chars().count()
            + self.fields.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum::<usize>()
            + self.footer.as_deref().map_or(0, |f| f.chars().count())
    }

    /// The serenity builder for this embed.
    pub fn to_builder(&self) -> CreateEmbed {
        let mut embed = CreateEmbed::new()
            .title(&self.title)
            .colour(SOURCES_COLOUR)
            .fields(self.fields.iter().map(|(n, v)| (n.clone(), v.clone(), false)));
        if let Some(footer) = &self.footer {
            embed = embed.footer(CreateEmbedFooter::new(footer));
        }
        embed
    }
}

/// Splits text into messages of at most 2,000 characters, never inside a `[n]` marker.
pub fn text_messages(text: &str) -> Vec<Outgoing> {
    let mut pieces: Vec<Outgoing> = split_message(text, MESSAGE_LIMIT)
        .into_iter()
        .map(|content| Outgoing { content, embeds: Vec::new() })
        .collect();
    if pieces.is_empty() {
        pieces.push(Outgoing { content: "…".to_owned(), embeds: Vec::new() });
    }
    pieces
}

/// The final answer as messages: the notice, the text (split at the limit) and its notes (cut
/// short, what `[n†]` means), with the sources embeds on the last message.
pub fn answer_messages(answer: &Answer) -> Vec<Outgoing> {
    let mut text = String::new();
    if let Some(notice) = answer.notice {
        text.push_str(notice.user_message());
    }
    if !answer.text.trim().is_empty() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(answer.text.trim());
    }
    for note in answer_notes(answer) {
        text.push_str(&format!("\n_({note})_"));
    }
    if text.is_empty() {
        text.push_str("I have no answer to that.");
    }
    let mut messages = text_messages(&text);
    let embeds = sources_embeds(&answer.citations);
    if let Some(last) = messages.last_mut() {
        last.embeds = embeds;
    }
    messages
}

/// One field per source: `[n] Title`, then the locator, a quoted snippet and a link to the
/// original chat message for chat-ingested sources.
fn source_field(citation: &Citation, snippet_max: usize) -> (String, String) {
    let remark = support_remark(citation);
    let name = if remark.is_empty() {
        format!("[{}] {}", citation.n, citation.title)
    } else {
        format!("[{}] {} ({remark})", citation.n, citation.title)
    };
    let name = truncate(&name, FIELD_NAME_LIMIT);
    let mut lines = Vec::new();
    let locator = citation.locator.to_string();
    if !locator.is_empty() {
        lines.push(locator);
    }
    let snippet = citation.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
    if snippet_max > 0 && !snippet.is_empty() {
        lines.push(format!("> {}", truncate(&snippet, snippet_max)));
    }
    if let Some(link) = &citation.locator.link {
        lines.push(format!("[Original message]({link})"));
    }
    let value = if lines.is_empty() { "—".to_owned() } else { truncate(&lines.join("\n"), FIELD_VALUE_LIMIT) };
    (name, value)
}

fn layout(fields: Vec<(String, String)>, dropped: usize) -> Vec<EmbedSpec> {
    let count = fields.len().div_ceil(FIELDS_PER_EMBED);
    let mut embeds: Vec<EmbedSpec> = fields
        .chunks(FIELDS_PER_EMBED)
        .enumerate()
        .map(|(i, chunk)| EmbedSpec {
            title: if i == 0 { "Sources".to_owned() } else { format!("Sources ({}/{count})", i + 1) },
            fields: chunk.to_vec(),
            footer: None,
        })
        .collect();
    if dropped > 0
        && let Some(last) = embeds.last_mut()
    {
        let s = if dropped == 1 { "" } else { "s" };
        last.footer = Some(truncate(&format!("{dropped} more source{s} not shown."), FOOTER_LIMIT));
    }
    embeds
}

/// The numbered sources as embeds for one message: snippets shrink, then the last sources are
/// left out (and counted in the footer), until everything fits Discord's embed limits.
pub fn sources_embeds(citations: &[Citation]) -> Vec<EmbedSpec> {
    if citations.is_empty() {
        return Vec::new();
    }
    let total = |embeds: &[EmbedSpec]| embeds.iter().map(EmbedSpec::chars).sum::<usize>();
    let max_fields = FIELDS_PER_EMBED * EMBEDS_PER_MESSAGE;
    let mut snippet_max = SNIPPET_MAX;
    loop {
        let mut shown: Vec<_> = citations.iter().take(max_fields).map(|c| source_field(c, snippet_max)).collect();
        let mut embeds = layout(shown.clone(), citations.len() - shown.len());
        if total(&embeds) <= EMBED_TOTAL_LIMIT {
            return embeds;
        }
        if snippet_max == 0 {
            while total(&embeds) > EMBED_TOTAL_LIMIT && shown.len() > 1 {
                shown.pop();
                embeds = layout(shown.clone(), citations.len() - shown.len());
            }
            return embeds;
        }
        snippet_max = if snippet_max > 40 { snippet_max / 2 } else { 0 };
    }
}

/// The text of a reply in progress, within one message.
pub fn progress_text(progress: &Progress) -> String {
    progress.text(MESSAGE_LIMIT)
}

/// How the reports quote model names and document ids.
pub const MARKUP: Markup = reports::MARKDOWN;

/// What the document listing says when there is none.
pub const NO_DOCUMENTS: &str = "Attach a file to `/ingest`, or mention me with an attachment.";

/// Told, by the instance that took the bot over, to someone whose question an instance that
/// stopped (crashed, or lost its database) was answering.
pub const RESTARTED: &str = "I was restarted before I could finish answering this. Please ask again.";

/// The text of `/help`, and of a mention with nothing else.
pub fn help_text() -> &'static str {
    "I answer questions from this channel's documents, citing numbered sources.\n\
     - `/ask question`, or mention me with a question: I answer in a thread; ask follow-ups there (mention me).\n\
     - `/ingest file`, or mention me with attachments: I add the files to this channel's documents.\n\
     - `/sources` lists the documents, `/forget id` removes one.\n\
     - `/warmup` loads the models, `/status` shows whether they are ready.\n\
     In a direct message, just write your question."
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
