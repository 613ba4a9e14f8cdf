//! Lexical evidence that a passage backs a sentence: shared content words (stemmed, stop words
//! dropped, as the BM25 index analyses text), shared word pairs, the best two-sentence window of
//! the passage, named entities, and numbers.
//!
//! Numbers are a veto rather than a weight: a sentence that states a number the passage does not
//! contain ("12 percent" against a passage saying "21 percent") is never counted as supported by
//! it, however many other words they share.

use std::cell::RefCell;
use std::collections::HashSet;

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer, TokenStream,
};

/// Consecutive passage sentences that form one window.
const WINDOW_SENTENCES: usize = 2;

thread_local! {
    static ANALYZER: RefCell<TextAnalyzer> = RefCell::new(analyzer());
}

fn analyzer() -> TextAnalyzer {
    let builder =
        TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder.filter(stop).filter(Stemmer::new(Language::English)).build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

/// The content words of `text` in order: lower-cased, stemmed, without stop words and without
/// bare numbers (numbers are compared on their own).
pub fn content_words(text: &str) -> Vec<String> {
    ANALYZER.with(|a| {
        let mut analyzer = a.borrow_mut();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let word = &stream.token().text;
            if word.chars().count() >= 2 && !word.chars().all(|c| c.is_ascii_digit()) {
                out.push(word.clone());
            }
        }
        out
    })
}

/// The numbers stated in `text`: whitespace-separated tokens (punctuation and `%` trimmed) made
/// of digits with inner `.` or `,`; a range `76-85` gives both ends. Digits inside names
/// (`CTLA-4`, `3T3`, `H2A`) are not numbers.
pub fn numbers(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for token in text.split_whitespace() {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric());
        let parts: Vec<&str> = token.split(['-', '–']).map(|p| p.trim_matches([',', '.', '%'])).collect();
        let numeric = |p: &&str| {
            p.chars().next().is_some_and(|c| c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        };
        if parts.iter().all(numeric) {
            out.extend(parts.iter().map(|p| normalise_number(p)));
        }
    }
    out
}

/// `1,000` and `1000` are the same number; `2.50` and `2.5` too.
fn normalise_number(n: &str) -> String {
    let plain: String = n.chars().filter(|c| *c != ',').collect();
    if plain.contains('.') { plain.trim_end_matches('0').trim_end_matches('.').to_owned() } else { plain }
}

/// Named-entity-like tokens of `text`, lower-cased: letters mixed with digits (`BRCA1`), two or
/// more capitals (`UK`, `PrP`), or a capitalised word that does not open the sentence.
pub fn entities(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (i, token) in text.split_whitespace().enumerate() {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric());
        if token.chars().count() < 2 {
            continue;
        }
        let letters = token.chars().filter(|c| c.is_alphabetic()).count();
        let digits = token.chars().filter(char::is_ascii_digit).count();
        let capitals = token.chars().filter(|c| c.is_uppercase()).count();
        let capitalised = token.chars().next().is_some_and(char::is_uppercase);
        if (letters > 0 && digits > 0) || capitals >= 2 || (i > 0 && capitalised) {
            out.insert(token.to_lowercase());
        }
    }
    out
}

/// A passage analysed once, to be compared with many sentences.
#[derive(Clone, Debug, Default)]
pub struct Passage {
    words: HashSet<String>,
    pairs: HashSet<(String, String)>,
    windows: Vec<HashSet<String>>,
    numbers: HashSet<String>,
    lower: String,
}

impl Passage {
    pub fn new(text: &str) -> Passage {
        let words = content_words(text);
        let sentences: Vec<HashSet<String>> =
            split_sentences(text).iter().map(|s| content_words(s).into_iter().collect()).collect();
        let windows = if sentences.len() <= WINDOW_SENTENCES {
            vec![sentences.iter().flatten().cloned().collect()]
        } else {
            sentences.windows(WINDOW_SENTENCES).map(|w| w.iter().flatten().cloned().collect()).collect()
        };
        Passage {
            pairs: pairs(&words),
            words: words.into_iter().collect(),
            windows,
            numbers: numbers(text),
            lower: text.to_lowercase(),
        }
    }
}

/// A sentence analysed once.
#[derive(Clone, Debug, Default)]
pub struct Claim {
    words: HashSet<String>,
    pairs: HashSet<(String, String)>,
    numbers: HashSet<String>,
    entities: HashSet<String>,
}

impl Claim {
    pub fn new(text: &str) -> Claim {
        let words = content_words(text);
        Claim {
            pairs: pairs(&words),
            words: words.into_iter().collect(),
            numbers: numbers(text),
            entities: entities(text),
        }
    }

    /// Distinct content words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

fn pairs(words: &[String]) -> HashSet<(String, String)> {
    words.windows(2).map(|w| (w[0].clone(), w[1].clone())).collect()
}

/// What the words of a claim and a passage share.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Share of the claim's content words found in the passage.
    pub recall: f32,
    /// The same within the passage's best window of two sentences.
    pub window: f32,
    /// Share of the claim's consecutive content-word pairs found in the passage (1 with none).
    pub pairs: f32,
    /// Share of the claim's named entities found in the passage (1 with none).
    pub entities: f32,
    /// True when the claim states a number the passage does not contain.
    pub number_missing: bool,
}

/// The lexical evidence for `claim` in `passage`.
pub fn evidence(claim: &Claim, passage: &Passage) -> Evidence {
    let share = |found: usize, of: usize, none: f32| if of == 0 { none } else { found as f32 / of as f32 };
    let found = claim.words.iter().filter(|w| passage.words.contains(*w)).count();
    let window =
        passage.windows.iter().map(|w| claim.words.iter().filter(|x| w.contains(*x)).count()).max().unwrap_or(0);
    let pairs = claim.pairs.iter().filter(|p| passage.pairs.contains(*p)).count();
    let entities = claim.entities.iter().filter(|e| passage.lower.contains(e.as_str())).count();
    Evidence {
        recall: share(found, claim.words.len(), 0.0),
        window: share(window, claim.words.len(), 0.0),
        pairs: share(pairs, claim.pairs.len(), 1.0),
        entities: share(entities, claim.entities.len(), 1.0),
        number_missing: claim.numbers.iter().any(|n| !passage.numbers.contains(n)),
    }
}

/// Splits prose into sentences at `.`, `!` or `?` followed by white space and an upper-case
/// letter, a digit or an opening bracket, and at line breaks.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut current = String::new();
        for (i, &c) in chars.iter().enumerate() {
            current.push(c);
            if matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_some_and(|n| n.is_whitespace()) {
                let next = chars[i + 1..].iter().find(|n| !n.is_whitespace());
                if next.is_some_and(|n| n.is_uppercase() || n.is_ascii_digit() || matches!(*n, '(' | '[' | '"' | '“'))
                {
                    out.push(std::mem::take(&mut current).trim().to_owned());
                }
            }
        }
        if !current.trim().is_empty() {
            out.push(current.trim().to_owned());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_are_stemmed_without_stop_words_or_numbers() {
        assert_eq!(content_words("The penguins are diving for 12 fish"), vec!["penguin", "dive", "fish"]);
    }

    #[test]
    fn numbers_skip_names_and_read_ranges() {
        let n = numbers("In 2001, 32% of 1,000 CTLA-4 and 3T3 cells (76-85%) grew 2.50 fold; 0-dimensional.");
        let mut n: Vec<_> = n.into_iter().collect();
        n.sort();
        assert_eq!(n, vec!["1000", "2.5", "2001", "32", "76", "85"]);
    }

    #[test]
    fn a_different_number_is_missing_evidence() {
        let passage = Passage::new("Sales grew by 21 percent in the last quarter.");
        let e = evidence(&Claim::new("Sales grew by 12 percent in the last quarter."), &passage);
        assert!(e.number_missing);
        assert!(e.recall > 0.99);
        let e = evidence(&Claim::new("Sales grew by 21 percent."), &passage);
        assert!(!e.number_missing);
    }

    #[test]
    fn entities_and_windows() {
        assert!(entities("Mutations in BRCA1 raise the risk in the UK, says Smith").contains("brca1"));
        assert!(entities("Mutations in BRCA1 raise the risk in the UK, says Smith").contains("smith"));
        assert!(!entities("Mutations are common").contains("mutations"));
        let passage = Passage::new("Cats sleep. Dogs bark loudly. Birds sing at dawn. Fish swim.");
        let e = evidence(&Claim::new("Birds sing at dawn and fish swim"), &passage);
        assert!((e.window - 1.0).abs() < 1e-6, "{e:?}");
    }

    #[test]
    fn sentences_split_at_terminal_punctuation_before_capitals() {
        assert_eq!(
            split_sentences("It is 2.5 m long. It weighs 3 kg! Really? e.g. this\nNext line"),
            vec!["It is 2.5 m long.", "It weighs 3 kg!", "Really? e.g. this", "Next line"]
        );
    }
}
