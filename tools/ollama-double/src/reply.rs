//! The default chat answer: a stand-in for a model that answers from numbered sources.
//!
//! Sources are blocks in any message that start with a line `[n] …` (n = 1, 2, 3…). A block
//! runs until the next such line, a line starting with `Question`, `Q:`, `Answer`, or made of
//! `---`/`===`, or the end of its message. The header line's rest is the source's title (or its
//! text when no lines follow). The question is the last user message without any source blocks
//! in it. The source sharing the most content words with the question is cited:
//! `According to the documents, <its first sentence> [n].`, plus ` See also [m].` when a second
//! source shares words too. With no sources, or none sharing a word: `I don't know.`

use std::collections::HashSet;

use serde_json::Value;

use crate::embed::content_words;

/// One numbered source found in the prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub number: u32,
    pub header: String,
    pub body: String,
}

/// The answer text for these chat messages.
pub fn default_reply(messages: &[Value]) -> String {
    let mut sources = Vec::new();
    for message in messages {
        sources.extend(parse_blocks(content(message)).0);
    }
    let question = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| question_text(content(m)))
        .unwrap_or_default();
    let asked: HashSet<String> = content_words(&question).into_iter().collect();

    let mut ranked: Vec<(usize, &Source)> = sources
        .iter()
        .map(|s| {
            let words: HashSet<String> = content_words(&format!("{}\n{}", s.header, s.body)).into_iter().collect();
            (words.intersection(&asked).count(), s)
        })
        .filter(|(overlap, _)| *overlap > 0)
        .collect();
    // Most overlap first; ties go to the lower number (listed first by the retriever).
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.number.cmp(&b.1.number)));

    let Some((_, best)) = ranked.first() else {
        return "I don't know.".to_owned();
    };
    let text = if best.body.trim().is_empty() { &best.header } else { &best.body };
    let mut answer = format!("According to the documents, {} [{}].", first_sentence(text), best.number);
    if let Some((_, second)) = ranked.iter().find(|(_, s)| s.number != best.number) {
        answer.push_str(&format!(" See also [{}].", second.number));
    }
    answer
}

fn content(message: &Value) -> &str {
    message.get("content").and_then(Value::as_str).unwrap_or_default()
}

/// `Some(n, rest)` when the line opens a source block: `[n] rest`.
fn header(line: &str) -> Option<(u32, &str)> {
    let rest = line.trim_start().strip_prefix('[')?;
    let close = rest.find(']')?;
    let number: u32 = rest[..close].trim().parse().ok()?;
    Some((number, rest[close + 1..].trim()))
}

fn ends_block(line: &str) -> bool {
    let t = line.trim();
    let lower = t.to_lowercase();
    lower.starts_with("question")
        || lower.starts_with("q:")
        || lower.starts_with("answer")
        || (t.len() >= 3 && (t.chars().all(|c| c == '-') || t.chars().all(|c| c == '=')))
}

/// Splits a message into its source blocks and the lines outside them.
fn parse_blocks(text: &str) -> (Vec<Source>, Vec<&str>) {
    let mut sources: Vec<Source> = Vec::new();
    let mut outside = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if let Some((number, rest)) = header(line) {
            sources.push(Source { number, header: rest.to_owned(), body: String::new() });
            open = true;
        } else if open && !ends_block(line) {
            if let Some(current) = sources.last_mut() {
                current.body.push_str(line);
                current.body.push('\n');
            }
        } else {
            open = false;
            outside.push(line);
        }
    }
    (sources, outside)
}

/// The user's question: the message without its source blocks (or its last line, if nothing
/// else is left).
fn question_text(text: &str) -> String {
    let (_, outside) = parse_blocks(text);
    let rest = outside.join("\n");
    if rest.trim().is_empty() {
        text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned()
    } else {
        rest
    }
}

/// The first sentence, without its closing punctuation.
fn first_sentence(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = flat.len();
    for (i, c) in flat.char_indices() {
        if matches!(c, '.' | '!' | '?') {
            let next = flat[i + c.len_utf8()..].chars().next();
            if next.is_none_or(char::is_whitespace) {
                end = i;
                break;
            }
        }
    }
    flat[..end].trim().to_owned()
}

/// Splits an answer into stream chunks of a few words each (spaces kept, so the chunks
/// concatenate to the answer).
pub fn chunks(text: &str, words_per_chunk: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut words = 0;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            current.push(' ');
        }
        current.push_str(word);
        words += 1;
        if words == words_per_chunk {
            out.push(std::mem::take(&mut current));
            words = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt(user: &str) -> Vec<Value> {
        vec![
            json!({"role": "system", "content": "Answer from the sources and cite them as [n]."}),
            json!({"role": "user", "content": user}),
        ]
    }

    #[test]
    fn cites_the_source_that_matches_the_question() {
        let user = "Sources:\n[1] geography.md\nParis is the capital of France. It is large.\n\n\
                    [2] cooking.md\nBread needs flour, water and yeast.\n\n\
                    Question: What is the capital of France?";
        assert_eq!(default_reply(&prompt(user)), "According to the documents, Paris is the capital of France [1].");
    }

    #[test]
    fn adds_a_second_source_and_reads_sources_from_the_system_message() {
        let messages = vec![
            json!({"role": "system", "content": "[1] a.txt\nBread needs flour and yeast.\n[2] b.txt\nYeast makes bread rise!\n[3] c.txt\nCats sleep a lot."}),
            json!({"role": "user", "content": "How does yeast work in bread?"}),
        ];
        assert_eq!(
            default_reply(&messages),
            "According to the documents, Bread needs flour and yeast [1]. See also [2]."
        );
    }

    #[test]
    fn no_sources_or_no_overlap_means_i_dont_know() {
        assert_eq!(default_reply(&prompt("What is the capital of France?")), "I don't know.");
        let user = "[1] x.md\nBread needs flour.\n---\nWho won the football match?";
        assert_eq!(default_reply(&prompt(user)), "I don't know.");
    }

    #[test]
    fn chunks_concatenate_to_the_text() {
        let text = "According to the documents, Paris is the capital [1].";
        let parts = chunks(text, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), text);
    }
}
