//! The prompt: numbered sources, the rule to answer only from them and cite `[n]`, the thread's
//! earlier turns, then the question.

use footnote_adapter::{Locator, Question, Role};

use crate::llm::ChatMessage;
use crate::retrieval::Source;
use crate::store::ChunkRow;

/// The built-in system prompt (`answer.system_prompt` replaces it).
pub const SYSTEM_PROMPT: &str =
    "You are Footnote, an assistant that answers questions using ONLY the numbered sources \
provided with the question. Rules:
- Base every statement on the sources; do not use outside knowledge.
- After each statement, cite the source it comes from by its number in square brackets, like [1] or [2][3].
- If the sources do not contain the answer, say that the documents do not say, and do not guess.
- Be concise. Answer in the language of the question.";

/// A chunk's locator as shown: a top heading that only repeats the title is left out.
pub fn shown_locator(chunk: &ChunkRow) -> Locator {
    let mut locator = chunk.locator.clone();
    if locator.heading_path.first().is_some_and(|h| h.trim() == chunk.title.trim()) {
        locator.heading_path.remove(0);
    }
    locator
}

/// The header line of source `n`: `[n] Title — locator`.
pub fn source_header(n: usize, source: &Source) -> String {
    let locator = shown_locator(&source.chunk).to_string();
    if locator.is_empty() {
        format!("[{n}] {}", source.chunk.title)
    } else {
        format!("[{n}] {} — {locator}", source.chunk.title)
    }
}

/// The sources block, numbered from 1 in the given order.
pub fn sources_block(sources: &[Source]) -> String {
    let mut out = String::from("Sources:\n");
    for (i, source) in sources.iter().enumerate() {
        out.push('\n');
        out.push_str(&source_header(i + 1, source));
        out.push('\n');
        out.push_str(source.chunk.text.trim());
        out.push('\n');
    }
    out
}

/// The chat messages for a question: system rules, up to `history_turns` earlier turns, and the
/// question with its sources.
pub fn messages(system: &str, sources: &[Source], question: &Question, history_turns: usize) -> Vec<ChatMessage> {
    let mut out = vec![ChatMessage::system(if system.trim().is_empty() { SYSTEM_PROMPT } else { system })];
    let skip = question.history.len().saturating_sub(history_turns);
    for turn in question.history.iter().skip(skip) {
        out.push(match turn.role {
            Role::User => ChatMessage::user(&turn.text),
            Role::Assistant => ChatMessage::assistant(&turn.text),
        });
    }
    out.push(ChatMessage::user(format!(
        "{}\nQuestion: {}\n\nAnswer from the sources above and cite them as [n].",
        sources_block(sources),
        question.text.trim()
    )));
    out
}

/// The text searched for a question: a follow-up also carries the previous question, since "and
/// the second one?" means nothing alone.
pub fn search_text(question: &Question) -> String {
    let previous = question.history.iter().rev().find(|t| t.role == Role::User);
    match previous {
        Some(turn) => format!("{}\n{}", question.text, turn.text),
        None => question.text.clone(),
    }
}
