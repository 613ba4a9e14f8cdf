//! Pure rendering of gateway results into Matrix message bodies: a plain-text `body` and an
//! HTML `formatted_body`, within the homeserver's event size limit.
//!
//! Answers keep their `[n]` markers in both bodies and list the numbered sources after the text
//! (title, page or heading, snippet, and a link for chat-ingested sources). A Matrix event may be
//! at most 65,536 bytes of JSON; an edit (`m.replace`) carries its content twice (the `* ` fallback
//! and `m.new_content`), so one part holds at most [`PART_BUDGET`] bytes of body and formatted
//! body together, and longer answers continue in further events.

pub use footnote_adapter::html::{escape, paragraphs};
use footnote_adapter::progress::{Progress, UNFINISHED};
use footnote_adapter::render::{answer_notes, source_line, split_message, support_remark, truncate};
use footnote_adapter::{Answer, Citation};

/// Bytes of `body` + `formatted_body` in one part, so that an edit carrying it twice plus the
/// event envelope stays well under the 65,536-byte event limit.
pub const PART_BUDGET: usize = 28_000;
/// Characters of answer text per piece before it is split (4-byte characters and HTML escaping
/// included, a piece stays under [`PART_BUDGET`]).
pub const TEXT_PIECE_CHARS: usize = 2_500;
/// The longest snippet shown for a source.
const SNIPPET_MAX: usize = 300;
/// The longest title shown for a source.
const TITLE_MAX: usize = 200;
/// The reply to a direct message the bot could not decrypt.
pub const UNDECRYPTABLE: &str = "I couldn't decrypt your message: its key did not reach my device. Please send it \
     again; if this keeps happening, your client may need to trust (verify) my session.";
/// The placeholder of an answer that has just been asked.
pub const PLACEHOLDER: &str = "…";

/// A message's two bodies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// The plain-text `body`.
    pub plain: String,
    /// The `formatted_body` (`org.matrix.custom.html`).
    pub html: String,
}

impl Body {
    /// Bytes both bodies take.
    pub fn len(&self) -> usize {
        self.plain.len() + self.html.len()
    }

    /// True when both bodies are empty.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.html.is_empty()
    }
}

/// A short text (a receipt, an error's user message) as bodies, split under the budget.
pub fn text_bodies(text: &str) -> Vec<Body> {
    let pieces = split_message(text, TEXT_PIECE_CHARS);
    let blocks = pieces.into_iter().map(|p| Block { html: paragraphs(&p), plain: p, joiner: "\n\n" }).collect();
    pack(blocks)
}

/// One source, shortened for a chat message.
fn short(citation: &Citation) -> Citation {
    let snippet = citation.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
    Citation {
        title: truncate(&citation.title, TITLE_MAX),
        snippet: truncate(&snippet, SNIPPET_MAX),
        ..citation.clone()
    }
}

/// One source as HTML: `[n] <b>Title</b> — p. 3 · Heading`, the quoted snippet, and a link to the
/// original message for chat-ingested sources.
pub fn source_html(citation: &Citation) -> String {
    let c = short(citation);
    let mut html = format!("[{}] <b>{}</b>", c.n, escape(&c.title));
    let remark = support_remark(&c);
    if !remark.is_empty() {
        html.push_str(&format!(" <i>({remark})</i>"));
    }
    let locator = c.locator.to_string();
    if !locator.is_empty() {
        html.push_str(&format!(" — {}", escape(&locator)));
    }
    if !c.snippet.is_empty() {
        html.push_str(&format!("<br><i>“{}”</i>", escape(&c.snippet)));
    }
    if let Some(link) = &c.locator.link
        && (link.starts_with("https://") || link.starts_with("http://"))
    {
        html.push_str(&format!(" <a href=\"{}\">original message</a>", escape(link)));
    }
    html
}

/// A block of a message and what joins it to the previous block in the plain body.
struct Block {
    plain: String,
    html: String,
    joiner: &'static str,
}

/// Packs blocks greedily into bodies of at most [`PART_BUDGET`] bytes.
fn pack(blocks: Vec<Block>) -> Vec<Body> {
    let mut parts: Vec<Body> = Vec::new();
    let mut current = Body::default();
    for block in blocks {
        let extra = block.plain.len() + block.html.len() + block.joiner.len();
        if !current.is_empty() && current.len() + extra > PART_BUDGET {
            parts.push(std::mem::take(&mut current));
        }
        if !current.plain.is_empty() {
            current.plain.push_str(block.joiner);
        }
        current.plain.push_str(&block.plain);
        current.html.push_str(&block.html);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

/// The final answer as bodies: the notice, the text with its `[n]` markers and its notes (cut
/// short, what `[n†]` means), then `Sources:` and
/// one numbered line per source. Long answers are split into several parts, each under the
/// budget, never inside a marker.
pub fn answer_bodies(answer: &Answer) -> Vec<Body> {
    let mut blocks = Vec::new();
    if let Some(notice) = answer.notice {
        let text = notice.user_message();
        blocks.push(Block { plain: text.to_owned(), html: format!("<p><i>{}</i></p>", escape(text)), joiner: "\n\n" });
    }
    let text = answer.text.trim();
    if text.is_empty() && answer.citations.is_empty() && answer.notice.is_none() {
        blocks.push(Block {
            plain: "I have no answer to that.".into(),
            html: "<p>I have no answer to that.</p>".into(),
            joiner: "\n\n",
        });
    }
    for piece in split_message(text, TEXT_PIECE_CHARS) {
        blocks.push(Block { html: paragraphs(&piece), plain: piece, joiner: "\n\n" });
    }
    for note in answer_notes(answer) {
        blocks.push(Block {
            plain: format!("({note})"),
            html: format!("<p><i>{}</i></p>", escape(note)),
            joiner: "\n",
        });
    }
    if !answer.citations.is_empty() {
        blocks.push(Block { plain: "Sources:".into(), html: "<p><b>Sources:</b></p>".into(), joiner: "\n\n" });
        for citation in &answer.citations {
            blocks.push(Block {
                plain: source_line(&short(citation)),
                html: format!("<p>{}</p>", source_html(citation)),
                joiner: "\n",
            });
        }
    }
    pack(blocks)
}

/// The text of a reply in progress, within one part.
pub fn progress_text(progress: &Progress) -> String {
    progress.text(TEXT_PIECE_CHARS)
}

/// The text of one of the bot's messages as a thread turn: `None` for a progress placeholder;
/// a streamed, unfinished text loses its trailing ` …`.
pub fn strip_progress(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() || body == PLACEHOLDER || Progress::is_state_text(body) {
        return None;
    }
    Some(body.strip_suffix(UNFINISHED).unwrap_or(body).to_owned())
}

/// What the document listing says when there is none.
pub fn no_documents(prefix: &str) -> String {
    format!("Send a file and reply to it with {prefix}ingest (in a direct message, just send the file).")
}

/// The text of `!help`, and of a mention with nothing else.
pub fn help_text(prefix: &str) -> String {
    format!(
        "I answer questions from this room's documents, citing numbered sources.\n\
         - {prefix}ask question, or mention me with a question: I answer in a thread; ask follow-ups in the \
         thread the same way.\n\
         - Reply to a file (or a text message) with {prefix}ingest: I add it to this room's documents.\n\
         - {prefix}sources lists the documents, {prefix}forget ID removes one.\n\
         - {prefix}warmup loads the models, {prefix}status shows whether they are ready.\n\
         In a direct message, just write your question or send a file."
    )
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
