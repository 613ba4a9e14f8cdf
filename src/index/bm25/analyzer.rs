//! The English analyzer BM25 matches on, built to behave like Lucene's `EnglishAnalyzer`:
//! words split at anything that is not a letter or digit (except inside a word: `don't`, `3.5`,
//! `1,000`), the possessive `'s` removed, lower-cased, Lucene's 33 English stop words dropped,
//! then stemmed (Snowball English, the successor of the Porter stemmer Lucene uses).
//!
//! Compared with splitting at every punctuation mark, `patient's` no longer leaves a stray `s`
//! term, `don't` a stray `t`, and `0.05` stays one number instead of `0` and `05`.

use std::iter::Peekable;
use std::str::CharIndices;

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Longest token kept, in bytes (longer ones are noise: hashes, base64, URLs run together).
const LONGEST_TOKEN: usize = 40;

/// The analyzer of every text field.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(WordTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_TOKEN))
        .filter(LowerCaser)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships Lucene's English stop words"))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Splits text into words as described in the module documentation.
#[derive(Clone, Default)]
pub struct WordTokenizer {
    token: Token,
}

/// The token stream of [`WordTokenizer`].
pub struct WordStream<'a> {
    text: &'a str,
    chars: Peekable<CharIndices<'a>>,
    token: &'a mut Token,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream { text, chars: text.char_indices().peekable(), token: &mut self.token }
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

impl WordStream<'_> {
    /// True when `joiner` at byte `at` sits inside a word: an apostrophe between letters, a
    /// decimal point or thousands separator between digits.
    fn joins(&self, previous: char, joiner: char, at: usize) -> bool {
        let Some(next) = self.text[at + joiner.len_utf8()..].chars().next() else {
            return false;
        };
        match joiner {
            c if is_apostrophe(c) => previous.is_alphabetic() && next.is_alphabetic(),
            '.' | ',' => previous.is_ascii_digit() && next.is_ascii_digit(),
            _ => false,
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        let start = loop {
            match self.chars.next() {
                Some((i, c)) if c.is_alphanumeric() => break (i, c),
                Some(_) => {}
                None => return false,
            }
        };
        let (from, first) = start;
        let mut to = from + first.len_utf8();
        let mut previous = first;
        while let Some(&(i, c)) = self.chars.peek() {
            if c.is_alphanumeric() {
                to = i + c.len_utf8();
                previous = c;
                self.chars.next();
            } else if self.joins(previous, c, i) {
                self.chars.next();
            } else {
                break;
            }
        }
        let mut word = &self.text[from..to];
        // The possessive: `patient's` → `patient`.
        if let Some(stem) = word.strip_suffix(['s', 'S']).and_then(|w| w.strip_suffix(is_apostrophe)) {
            word = stem;
        }
        self.token.text.extend(word.chars().filter(|c| !is_apostrophe(*c)));
        self.token.offset_from = from;
        self.token.offset_to = to;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut tokenizer = WordTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    fn analysed(text: &str) -> Vec<String> {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn words_keep_inner_apostrophes_and_numbers_together() {
        assert_eq!(
            words("The patient's IL-6 rose 3.5-fold (p < 0.05)."),
            ["The", "patient", "IL", "6", "rose", "3.5", "fold", "p", "0.05"]
        );
        assert_eq!(words("don't, won’t; 1,000 cells; end. 2"), ["dont", "wont", "1,000", "cells", "end", "2"]);
        assert_eq!(words("contributors' names"), ["contributors", "names"]);
        assert_eq!(words("'quoted' ..."), ["quoted"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn offsets_cover_the_original_word() {
        let mut tokenizer = WordTokenizer::default();
        let mut stream = tokenizer.token_stream("a Rosa's b");
        assert!(stream.advance());
        assert!(stream.advance());
        assert_eq!((stream.token().offset_from, stream.token().offset_to), (2, 8));
        assert_eq!(stream.token().text, "Rosa");
    }

    #[test]
    fn analysis_is_lower_cased_stopped_and_stemmed() {
        assert_eq!(
            analysed("The contributors' names may not be used to endorse products"),
            ["contributor", "name", "may", "use", "endors", "product"]
        );
        let long = "x".repeat(LONGEST_TOKEN + 1);
        assert_eq!(analysed(&format!("kept {long}")), ["kept"]);
    }
}
