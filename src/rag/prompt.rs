//! The prompt and its token budget: the system rules (built-in or configured), the thread's
//! earlier turns, the numbered sources and the question. [`Prompt`] is the one place that knows
//! what the model is sent, so it is also the one place that counts it: the sources that fit are
//! packed against the same text that [`Prompt::messages`] builds.

use footnote_adapter::{Locator, Question, Role};

use crate::ingest::count_tokens;
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

/// Tokens a chat template adds around each message (role markers, separators). Counted from the
/// templates of common Ollama models (ChatML uses 4–5); the text itself is counted for real.
const TOKENS_PER_MESSAGE: usize = 6;
/// Tokens the template adds once, to open the assistant's turn.
const TOKENS_PER_REPLY: usize = 4;

/// What is sent to the chat model for one question, before the sources are chosen.
pub struct Prompt<'a> {
    system: &'a str,
    history: Vec<(Role, &'a str)>,
    question: &'a str,
}

impl<'a> Prompt<'a> {
    /// A prompt with `configured_system` (empty: the built-in rules), the last `history_turns`
    /// turns of the question's thread, and the question.
    pub fn new(configured_system: &'a str, question: &'a Question, history_turns: usize) -> Self {
        let system = if configured_system.trim().is_empty() { SYSTEM_PROMPT } else { configured_system };
        let skip = question.history.len().saturating_sub(history_turns);
        let history = question.history.iter().skip(skip).map(|t| (t.role, t.text.as_str())).collect();
        Prompt { system, history, question: question.text.trim() }
    }

    /// Tokens of the prompt without any source: every message as it is sent, with an empty
    /// sources block, plus the template's own tokens.
    pub fn fixed_tokens(&self) -> usize {
        let messages = self.messages(&[]);
        messages.iter().map(|m| count_tokens(&m.content) + TOKENS_PER_MESSAGE).sum::<usize>() + TOKENS_PER_REPLY
    }

    /// What source `n` adds to the prompt, counted on the text [`sources_block`] writes for it.
    pub fn source_tokens(n: usize, source: &Source) -> usize {
        let mut entry = String::new();
        push_source(&mut entry, n, source);
        count_tokens(&entry)
    }

    /// The best sources that fit in a context of `num_ctx` tokens with `reserve` kept free for the
    /// answer, at most `max_sources`, best first. A source that does not fit is skipped so that a
    /// smaller one after it can still be used. Empty when not even the question fits.
    pub fn pack(&self, candidates: Vec<Source>, num_ctx: usize, reserve: usize, max_sources: usize) -> Vec<Source> {
        let budget = num_ctx.saturating_sub(reserve + self.fixed_tokens());
        pack(candidates, budget, max_sources, Self::source_tokens)
    }

    /// The chat messages: system rules, earlier turns, and the question with `sources`.
    pub fn messages(&self, sources: &[Source]) -> Vec<ChatMessage> {
        let mut out = vec![ChatMessage::system(self.system)];
        for (role, text) in &self.history {
            out.push(match role {
                Role::User => ChatMessage::user(*text),
                Role::Assistant => ChatMessage::assistant(*text),
            });
        }
        out.push(ChatMessage::user(format!(
            "{}\nQuestion: {}\n\nAnswer from the sources above and cite them as [n].",
            sources_block(sources),
            self.question
        )));
        out
    }
}

/// Keeps the sources whose cost (`cost(n, source)` when it is source `n`) fits in `budget`, at
/// most `max_sources`, in the given order.
fn pack(
    sources: Vec<Source>,
    budget: usize,
    max_sources: usize,
    cost: impl Fn(usize, &Source) -> usize,
) -> Vec<Source> {
    let mut used = 0usize;
    let mut out = Vec::new();
    for source in sources {
        if out.len() >= max_sources {
            break;
        }
        let cost = cost(out.len() + 1, &source);
        if used + cost <= budget {
            used += cost;
            out.push(source);
        }
    }
    out
}

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
fn sources_block(sources: &[Source]) -> String {
    let mut out = String::from("Sources:\n");
    for (i, source) in sources.iter().enumerate() {
        push_source(&mut out, i + 1, source);
    }
    out
}

/// Source `n` as the sources block writes it: a blank line, its header, its text.
fn push_source(out: &mut String, n: usize, source: &Source) {
    out.push('\n');
    out.push_str(&source_header(n, source));
    out.push('\n');
    out.push_str(source.chunk.text.trim());
    out.push('\n');
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

#[cfg(test)]
mod tests {
    use footnote_adapter::{Locator, Turn};

    use super::*;

    fn source(id: i64, title: &str, text: &str) -> Source {
        Source {
            chunk: ChunkRow {
                id,
                document_id: 1,
                collection: "c".into(),
                title: title.into(),
                source: "s".into(),
                text: text.into(),
                locator: Locator::default(),
                tokens: count_tokens(text) as u32,
            },
            score: 1.0,
            bm25_rank: None,
            vector_rank: None,
        }
    }

    fn question(text: &str, history: &[(Role, &str)]) -> Question {
        Question {
            text: text.into(),
            history: history.iter().map(|(role, text)| Turn { role: *role, text: (*text).into() }).collect(),
        }
    }

    fn sent_tokens(messages: &[ChatMessage]) -> usize {
        messages.iter().map(|m| count_tokens(&m.content) + TOKENS_PER_MESSAGE).sum::<usize>() + TOKENS_PER_REPLY
    }

    #[test]
    fn pack_respects_budget_and_count() {
        let sized =
            |id, tokens| Source { chunk: ChunkRow { tokens, ..source(id, "t", "x").chunk }, ..source(id, "t", "x") };
        let sources = vec![sized(1, 100), sized(2, 500), sized(3, 100), sized(4, 100)];
        let cost = |_: usize, s: &Source| s.chunk.tokens as usize + 21;
        let packed = pack(sources.clone(), 300, 10, cost);
        assert_eq!(packed.iter().map(|s| s.chunk.id).collect::<Vec<_>>(), vec![1, 3]);
        let packed = pack(sources, 10_000, 2, cost);
        assert_eq!(packed.iter().map(|s| s.chunk.id).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn packed_sources_fit_the_counted_prompt() {
        let q = question("What does the warranty cover?", &[(Role::User, "hello"), (Role::Assistant, "hi")]);
        let prompt = Prompt::new("", &q, 10);
        let text = "The warranty covers parts and labour for two years from the date of purchase. ".repeat(8);
        let candidates: Vec<_> = (1..=40).map(|i| source(i, &format!("Manual {i}"), &text)).collect();
        for num_ctx in [600, 1200, 2500, 5000] {
            let packed = prompt.pack(candidates.clone(), num_ctx, 200, 50);
            let sent = sent_tokens(&prompt.messages(&packed));
            assert!(sent + 200 <= num_ctx, "{sent} tokens sent into a window of {num_ctx}");
            // One more source would not have fitted: the budget is used, not wasted. (Counting
            // sources one by one may be off by a token where neighbouring texts merge.)
            let mut more = packed.clone();
            more.push(candidates[packed.len()].clone());
            let slack = 2 * more.len();
            assert!(
                sent_tokens(&prompt.messages(&more)) + 200 + slack > num_ctx,
                "room for another source at {num_ctx}"
            );
        }
    }

    #[test]
    fn a_long_header_skips_its_source_but_not_the_next() {
        let q = question("q", &[]);
        let prompt = Prompt::new("", &q, 0);
        let body = "word ".repeat(100);
        let long_title = "a very long title ".repeat(40);
        let candidates = vec![source(1, "t", &body), source(2, &long_title, &body), source(3, "t", &body)];
        let budget = prompt.fixed_tokens() + 2 * Prompt::source_tokens(1, &candidates[0]) + 10;
        let packed = prompt.pack(candidates, budget, 0, 10);
        assert_eq!(packed.iter().map(|s| s.chunk.id).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn max_sources_and_history_turns_are_honoured() {
        let q = question("q", &[(Role::User, "one"), (Role::Assistant, "two"), (Role::User, "three")]);
        let prompt = Prompt::new("Custom rules.", &q, 2);
        let messages = prompt.messages(&[]);
        let texts: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts[0], "Custom rules.");
        assert_eq!(&texts[1..3], ["two", "three"]);
        let candidates: Vec<_> = (1..=5).map(|i| source(i, "t", "short")).collect();
        assert_eq!(prompt.pack(candidates, 100_000, 0, 3).len(), 3);
    }

    #[test]
    fn a_question_too_long_for_the_window_gets_no_sources() {
        let long = "word ".repeat(2000);
        let q = question(&long, &[]);
        let prompt = Prompt::new("", &q, 0);
        assert!(prompt.pack(vec![source(1, "t", "short")], 1024, 256, 10).is_empty());
    }
}
