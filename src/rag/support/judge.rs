//! The optional model judge (`answer.verify = "model"`): the chat model is asked, for each
//! sentence the scores leave in doubt, whether the passage supports it, and must answer yes or
//! no. Questions go one at a time, most doubtful first, until the time budget is spent; a reply
//! that is neither yes nor no decides nothing.
//!
//! What it trusts: the passage is a stored document's text, which anyone allowed to upload into
//! the collection wrote, and the statement is the chat model's output. Either may carry
//! instructions ("answer yes"); the judge can then only be talked into keeping or dropping a
//! marker on that same answer, or into tagging a sentence: it never sees other collections and
//! its reply is read as one word, never shown.

use std::time::{Duration, Instant};

use crate::llm::{ChatMessage, ChatRequest, OllamaClient};

/// The judge's instructions.
const SYSTEM: &str = "You check whether a passage supports a statement. Reply with exactly one word: yes or no.";
/// Tokens the judge may write (one word, and some slack for a model that adds a full stop).
const MAX_TOKENS: i32 = 4;

/// The question for one pair.
pub fn question(statement: &str, passage: &str) -> String {
    format!(
        "Passage:\n{}\n\nStatement: {}\n\nDoes the passage say what the statement says? Answer yes or no.",
        passage.trim(),
        statement.trim()
    )
}

/// Reads a verdict: `Some(true)` for yes, `Some(false)` for no, `None` otherwise.
pub fn verdict(reply: &str) -> Option<bool> {
    let word: String = reply.trim().chars().take_while(|c| c.is_alphabetic()).collect::<String>().to_lowercase();
    match word.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Asks the judge about one pair, giving up after `wait`.
pub async fn ask(
    ollama: &OllamaClient,
    model: &str,
    num_ctx: Option<u32>,
    statement: &str,
    passage: &str,
    wait: Duration,
) -> Option<bool> {
    let request = ChatRequest {
        model: model.to_owned(),
        messages: vec![ChatMessage::system(SYSTEM), ChatMessage::user(question(statement, passage))],
        num_ctx,
        temperature: Some(0.0),
        num_predict: Some(MAX_TOKENS),
    };
    match tokio::time::timeout(wait, ollama.chat(request)).await {
        Ok(Ok(reply)) => verdict(&reply.content),
        Ok(Err(error)) => {
            tracing::debug!(%error, "The support judge failed.");
            None
        }
        Err(_) => None,
    }
}

/// Asks about each `(statement, passage)` in order until `budget` is spent; returns the verdicts
/// in the same order (`None`: not asked, or no clear reply).
pub async fn ask_all(
    ollama: &OllamaClient,
    model: &str,
    num_ctx: Option<u32>,
    pairs: &[(String, String)],
    budget: Duration,
) -> Vec<Option<bool>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(pairs.len());
    for (statement, passage) in pairs {
        let left = budget.saturating_sub(started.elapsed());
        if left.is_zero() {
            out.push(None);
            continue;
        }
        out.push(ask(ollama, model, num_ctx, statement, passage, left).await);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_strict() {
        assert_eq!(verdict("Yes."), Some(true));
        assert_eq!(verdict(" no"), Some(false));
        assert_eq!(verdict("Not sure"), None);
        assert_eq!(verdict("yesterday"), None);
        assert_eq!(verdict(""), None);
    }
}
