//! Pure rendering of answers and replies as Slack text and Block Kit blocks.
//!
//! The answer text keeps its `[n]` markers in `section` blocks; each numbered source becomes a
//! `context` block (title, page/heading, snippet, and a permalink for chat-ingested sources).
//! Slack's limits are respected here: 3000 characters per text object and 50 blocks per message,
//! so a long answer becomes several messages.

use footnote_adapter::progress::Progress;
use footnote_adapter::render::{answer_notes, split_message, support_remark, truncate};
use footnote_adapter::reports::{self, Markup};
use footnote_adapter::{Answer, Citation, DocumentInfo};
use slack_morphism::prelude::*;

/// Most characters in one `section` or `context` text object.
pub const TEXT_LIMIT: usize = 3000;
/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest snippet quoted under a source.
const SNIPPET_LIMIT: usize = 280;
/// Longest top-level `text` (the notification fallback) the adapter sends.
const FALLBACK_LIMIT: usize = 3000;

/// Escapes the three characters Slack's `mrkdwn` treats as control characters.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn markdown(text: String) -> SlackBlockMarkDownText {
    SlackBlockMarkDownText::new(text)
}

fn section(text: String) -> SlackBlock {
    SlackSectionBlock::new().with_text(SlackBlockText::MarkDown(markdown(text))).into()
}

fn context(text: String) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(markdown(text))]).into()
}

/// Splits text into escaped pieces that each fit a text object, never cutting a `[n]` marker.
pub fn text_pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut limit = TEXT_LIMIT;
    let mut pending = vec![text.to_owned()];
    while let Some(piece) = pending.pop() {
        let escaped = escape(&piece);
        if escaped.chars().count() <= TEXT_LIMIT {
            out.push(escaped);
            continue;
        }
        // Escaping lengthened the text: split the raw piece again, a little shorter each time.
        limit = (limit * 3 / 4).max(64);
        pending.extend(split_message(&piece, limit).into_iter().rev());
    }
    out
}

/// One source as `context` text: `*[n]* Title — p. 3 · Intro`, the quoted snippet, and a link.
pub fn citation_text(citation: &Citation) -> String {
    let mut out = format!("*[{}]* {}", citation.n, escape(&citation.title));
    let remark = support_remark(citation);
    if !remark.is_empty() {
        out.push_str(&format!(" _({remark})_"));
    }
    let locator = citation.locator.to_string();
    if !locator.is_empty() {
        out.push_str(" — ");
        out.push_str(&escape(&locator));
    }
    if let Some(link) = citation.locator.link.as_deref().filter(|l| l.starts_with("https://")) {
        out.push_str(&format!(" · <{}|original message>", link.replace('|', "%7C").replace('>', "%3E")));
    }
    let snippet = citation.snippet.split_whitespace().collect::<Vec<_>>().join(" ");
    if !snippet.is_empty() {
        out.push_str(&format!("\n“{}”", escape(&truncate(&snippet, SNIPPET_LIMIT))));
    }
    truncate(&out, TEXT_LIMIT)
}

/// The final answer as one or more messages of at most [`MAX_BLOCKS`] blocks each: the notice
/// (if any), the answer text with its `[n]` markers, its notes (cut short, what `[n†]` means), a
/// divider, then one block per source.
pub fn answer_messages(answer: &Answer) -> Vec<Vec<SlackBlock>> {
    let mut blocks = Vec::new();
    if let Some(notice) = answer.notice {
        blocks.push(context(format!("_{}_", escape(notice.user_message()))));
    }
    if !answer.text.trim().is_empty() {
        blocks.extend(text_pieces(answer.text.trim()).into_iter().map(section));
    }
    for note in answer_notes(answer) {
        blocks.push(context(format!("_{}_", escape(note))));
    }
    if !answer.citations.is_empty() {
        blocks.push(SlackDividerBlock::new().into());
        blocks.extend(answer.citations.iter().map(|c| context(citation_text(c))));
    }
    if blocks.is_empty() {
        blocks.push(section(escape("I have no answer to that.")));
    }
    blocks.chunks(MAX_BLOCKS).map(<[SlackBlock]>::to_vec).collect()
}

/// The plain `text` of the answer message, shown in notifications and by clients without blocks.
pub fn fallback_text(answer: &Answer) -> String {
    let text = answer.text.trim();
    let text = if text.is_empty() { answer.notice.map(|n| n.user_message()).unwrap_or("(no answer)") } else { text };
    truncate(&escape(text), FALLBACK_LIMIT)
}

/// The text of the placeholder message while an answer is produced: a state in italics, or the
/// end of the text written so far (the checked answer replaces it).
pub fn progress_text(progress: &Progress) -> String {
    match progress {
        Progress::Writing(_) => escape(&progress.text(TEXT_LIMIT - 200)),
        state => format!("_{}_", escape(&state.text(TEXT_LIMIT))),
    }
}

/// The reply to `/footnote help`.
pub fn help_text() -> String {
    [
        "*Footnote* answers from the documents of this channel, with numbered sources.",
        "• `/ask QUESTION`: ask; the answer appears in a thread.",
        "• Mention me with a question, or send me a direct message; mention me in a thread to keep its context.",
        "• Share a file with a mention (or in a direct message) to add it to this channel's documents.",
        "• `/warmup`: load the models so the next answer is quick.",
        "• `/footnote sources`: list the documents this channel can read.",
        "• `/footnote forget ID`: remove a document.",
        "• `/footnote status`: check the models and the store.",
    ]
    .join("\n")
}

/// How the reports quote model names and document ids and escape the rest.
pub const MARKUP: Markup = Markup { code: code_span, bullet: "• ", escape };

/// What the document listing says when there is none.
pub const NO_DOCUMENTS: &str = "Share a file with a mention to add one.";

fn code_span(text: &str) -> String {
    reports::backticks(&escape(text))
}

/// The reply to `/footnote sources`, cut to fit one message.
pub fn documents_text(documents: &[DocumentInfo]) -> String {
    reports::documents_text(documents, MARKUP, NO_DOCUMENTS, TEXT_LIMIT)
}

#[cfg(test)]
#[path = "blocks_tests.rs"]
mod tests;
