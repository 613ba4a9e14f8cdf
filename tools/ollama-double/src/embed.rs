//! Deterministic embeddings that carry meaning: a hashed bag of words.
//!
//! Each text is lowercased and split into alphanumeric words; common English stop words are
//! dropped and words are crudely stemmed (`-ing`, `-ed`, `-es`, `-s`, as long as three letters
//! remain). Every word adds ±1 at a position picked by its FNV-1a hash, and each of its character
//! trigrams adds a smaller ±[`TRIGRAM_WEIGHT`], so that near-words (`index`/`indexes`/`indexing`)
//! still land close. The vector is L2-normalised; a text without words gets a small uniform
//! vector, so cosine similarity stays defined.

/// Task prefixes some embedding models expect; the double ignores them.
const PREFIXES: &[&str] = &["search_query:", "search_document:"];

/// Weight of one character trigram next to a whole word's 1.0.
pub const TRIGRAM_WEIGHT: f32 = 0.25;

const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "she", "so", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what",
    "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Removes a leading task prefix such as `search_query: `.
pub fn strip_prefix(text: &str) -> &str {
    let trimmed = text.trim_start();
    for prefix in PREFIXES {
        if let Some(rest) = trimmed.strip_prefix(prefix) {
            return rest.trim_start();
        }
    }
    text
}

/// Crude English stemming: strips one of `ing`, `ed`, `es`, `s` when at least three letters stay.
pub fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(stem) = word.strip_suffix(suffix) {
            if suffix == "s" && stem.ends_with('s') {
                continue; // "class", "process"
            }
            if stem.chars().count() >= 3 {
                return stem.to_owned();
            }
        }
    }
    word.to_owned()
}

/// The content words of a text: lowercased, stop words dropped, stemmed.
pub fn content_words(text: &str) -> Vec<String> {
    strip_prefix(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// Tokens as the double counts them against a context window: whitespace-separated words.
pub fn token_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Keeps the first `max` whitespace-separated words.
pub fn truncate_tokens(text: &str, max: usize) -> String {
    text.split_whitespace().take(max).collect::<Vec<_>>().join(" ")
}

fn add_feature(vector: &mut [f32], key: &[u8], weight: f32) {
    let hash = fnv1a64(key);
    let index = (hash % vector.len() as u64) as usize;
    let sign = if (hash >> 40) & 1 == 1 { -1.0 } else { 1.0 };
    vector[index] += sign * weight;
}

/// The embedding of `text` with `dims` dimensions.
pub fn embed_text(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.max(1);
    let mut vector = vec![0f32; dims];
    for word in content_words(text) {
        add_feature(&mut vector, word.as_bytes(), 1.0);
        let padded: Vec<char> = format!("#{word}#").chars().collect();
        for window in padded.windows(3) {
            let trigram: String = window.iter().collect();
            add_feature(&mut vector, format!("3:{trigram}").as_bytes(), TRIGRAM_WEIGHT);
        }
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    } else {
        let uniform = 1.0 / (dims as f32).sqrt();
        vector.iter_mut().for_each(|x| *x = uniform);
    }
    vector
}

/// Cosine similarity of two vectors of the same length (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_normalised() {
        let a = embed_text("The cat sat on the mat", 768);
        assert_eq!(a, embed_text("The cat sat on the mat", 768));
        assert_eq!(a.len(), 768);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let q = embed_text("search_query: how do I reset my password?", 768);
        let near = embed_text("search_document: To reset a password, open Settings.", 768);
        let far = embed_text("search_document: The quarterly revenue grew by ten percent.", 768);
        assert!(cosine(&q, &near) > cosine(&q, &far) + 0.2, "{} vs {}", cosine(&q, &near), cosine(&q, &far));
    }

    #[test]
    fn stemming_and_prefixes() {
        assert_eq!(content_words("search_query: Indexing the indexes"), vec!["index", "index"]);
        assert_eq!(stem("classes"), "class");
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("is"), "is");
        assert_eq!(stem("walked"), "walk");
    }

    #[test]
    fn empty_text_has_a_defined_cosine() {
        let e = embed_text("", 384);
        assert!(e.iter().all(|x| *x > 0.0));
        assert!(cosine(&e, &embed_text("the of and", 384)) > 0.99);
    }
}
