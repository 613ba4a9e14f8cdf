//! A sentence's contrary, for telling a source that says the opposite from one that agrees.
//!
//! A claim and its negation share their words and, for a small embedding model, nearly their
//! embedding, so neither the word overlap nor the cosine can tell support from contradiction.
//! What does tell them apart a little: whether the source is closer to the sentence or to the
//! sentence turned around. [`contrary`] turns it around by rule: a negation removed if there is
//! one ("does not affect" → "does affect"), else directional words swapped ("increases" →
//! "decreases"), else "not" put after the first auxiliary verb, else "It is not true that"
//! put in front. The result need not be good English: it is only embedded, never shown.

/// Words whose removal turns a negated sentence around.
const NEGATIONS: [&str; 4] = ["not", "no", "never", "cannot"];

/// Pairs of words of opposite direction, swapped both ways. A word takes the first pair naming it,
/// so each pair must bring a word no earlier pair has.
const OPPOSITES: &[(&str, &str)] = &[
    ("increase", "decrease"),
    ("increases", "decreases"),
    ("increased", "decreased"),
    ("increasing", "decreasing"),
    ("higher", "lower"),
    ("high", "low"),
    ("more", "less"),
    ("greater", "smaller"),
    ("larger", "smaller"),
    ("better", "worse"),
    ("promotes", "inhibits"),
    ("promote", "inhibit"),
    ("promoted", "inhibited"),
    ("enhances", "reduces"),
    ("enhance", "reduce"),
    ("enhanced", "reduced"),
    ("improves", "worsens"),
    ("improve", "worsen"),
    ("improved", "worsened"),
    ("positive", "negative"),
    ("positively", "negatively"),
    ("upregulates", "downregulates"),
    ("upregulated", "downregulated"),
    ("activates", "suppresses"),
    ("activate", "suppress"),
    ("activated", "suppressed"),
    ("raises", "lowers"),
    ("raise", "lower"),
    ("raised", "lowered"),
    ("accelerates", "slows"),
    ("accelerate", "slow"),
    ("induces", "prevents"),
    ("induce", "prevent"),
    ("induced", "prevented"),
    ("protects", "harms"),
    ("protective", "harmful"),
    ("benefit", "harm"),
    ("beneficial", "harmful"),
    ("effective", "ineffective"),
    ("safe", "unsafe"),
    ("required", "dispensable"),
    ("essential", "dispensable"),
    ("sufficient", "insufficient"),
    ("common", "rare"),
    ("stimulates", "inhibits"),
    ("stimulate", "inhibit"),
    ("stimulated", "inhibited"),
    ("impairs", "improves"),
    ("impair", "improve"),
    ("impaired", "improved"),
    ("decline", "rise"),
    ("declines", "rises"),
    ("gain", "loss"),
    ("gains", "losses"),
    ("allowed", "forbidden"),
    ("allows", "forbids"),
    ("always", "never"),
    ("before", "after"),
    ("above", "below"),
    ("true", "false"),
];

/// Auxiliary verbs after which "not" negates the sentence.
const AUXILIARIES: [&str; 17] = [
    "is", "are", "was", "were", "can", "could", "does", "do", "did", "has", "have", "had", "will", "would", "may",
    "might", "should",
];

/// The opposite of a lowercase word, if it has one here (the first pair naming it wins).
fn opposite(word: &str) -> Option<&'static str> {
    OPPOSITES.iter().find_map(|&(a, b)| {
        if a == word {
            Some(b)
        } else if b == word {
            Some(a)
        } else {
            None
        }
    })
}

/// `word` with its first letter as capitalised as `like`'s.
fn cased(word: &str, like: &str) -> String {
    if like.starts_with(char::is_uppercase) {
        let mut c = word.chars();
        c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
    } else {
        word.to_owned()
    }
}

/// Splits a whitespace-separated token into its leading letters (apostrophes included) and the
/// rest ("effect," → ("effect", ",")).
fn split_word(token: &str) -> (&str, &str) {
    let end = token.find(|c: char| !c.is_alphabetic() && c != '\'' && c != '’').unwrap_or(token.len());
    token.split_at(end)
}

/// The sentence turned around (see the module documentation).
pub fn contrary(sentence: &str) -> String {
    let sentence = sentence.trim();
    let tokens: Vec<&str> = sentence.split_whitespace().collect();
    // 1. A negation removed.
    for (i, token) in tokens.iter().enumerate() {
        let (word, rest) = split_word(token);
        let lower = word.to_lowercase();
        let kept = if NEGATIONS.contains(&lower.as_str()) {
            (lower == "cannot").then(|| format!("{}{rest}", cased("can", word)))
        } else if let Some(stem) = lower.strip_suffix("n't").or_else(|| lower.strip_suffix("n’t")) {
            let stem = match stem {
                "wo" => "will",
                "ca" => "can",
                "sha" => "shall",
                s => s,
            };
            Some(format!("{}{rest}", cased(stem, word)))
        } else {
            continue;
        };
        let mut out: Vec<String> = tokens.iter().map(|t| (*t).to_owned()).collect();
        match kept {
            Some(replacement) => out[i] = replacement,
            None if rest.is_empty() => {
                out.remove(i);
            }
            None => out[i] = rest.to_owned(),
        }
        return out.join(" ");
    }
    // 2. Directional words swapped.
    let mut swapped = false;
    let out: Vec<String> = tokens
        .iter()
        .map(|token| {
            let (word, rest) = split_word(token);
            match opposite(&word.to_lowercase()) {
                Some(other) => {
                    swapped = true;
                    format!("{}{rest}", cased(other, word))
                }
                None => (*token).to_owned(),
            }
        })
        .collect();
    if swapped {
        return out.join(" ");
    }
    // 3. "not" after the first auxiliary.
    if let Some(i) = tokens.iter().position(|t| AUXILIARIES.contains(&t.to_lowercase().as_str())) {
        let mut out = tokens.clone();
        out.insert(i + 1, "not");
        return out.join(" ");
    }
    // 4. A negating preamble; the first word loses its capital unless it is an acronym.
    let mut chars = sentence.chars();
    let lowered: String = match (chars.next(), sentence.chars().nth(1)) {
        (Some(first), Some(second)) if second.is_lowercase() => first.to_lowercase().chain(chars).collect(),
        _ => sentence.to_owned(),
    };
    format!("It is not true that {lowered}")
}

#[cfg(test)]
mod tests {
    use super::contrary;

    #[test]
    fn a_negation_is_removed() {
        assert_eq!(contrary("Folic acid does not affect kidney disease."), "Folic acid does affect kidney disease.");
        assert_eq!(contrary("ART has no effect on infectiveness."), "ART has effect on infectiveness.");
        assert_eq!(contrary("The drug doesn't work."), "The drug does work.");
        assert_eq!(contrary("Isn’t it?"), "Is it?");
        assert_eq!(contrary("Cells cannot divide."), "Cells can divide.");
        assert_eq!(contrary("It won't rain."), "It will rain.");
    }

    #[test]
    fn directions_are_swapped_keeping_case_and_punctuation() {
        assert_eq!(contrary("Activation of PPM1D enhances p53 function."), "Activation of PPM1D reduces p53 function.");
        assert_eq!(contrary("Aged patients are less susceptible."), "Aged patients are more susceptible.");
        assert_eq!(contrary("Increased dosage, lower risk."), "Decreased dosage, higher risk.");
    }

    #[test]
    fn every_pair_brings_a_word_of_its_own() {
        let mut seen = std::collections::HashSet::new();
        for (a, b) in super::OPPOSITES {
            assert!(seen.insert(*a) | seen.insert(*b), "({a}, {b}) is never used: both words name an earlier pair");
        }
    }

    #[test]
    fn not_follows_the_first_auxiliary() {
        assert_eq!(contrary("ATF4 is a stress marker."), "ATF4 is not a stress marker.");
        assert_eq!(contrary("Macrophages are seeded in the yolk sac."), "Macrophages are not seeded in the yolk sac.");
    }

    #[test]
    fn otherwise_a_preamble() {
        assert_eq!(contrary("Caspase-11 kills cells."), "It is not true that caspase-11 kills cells.");
        assert_eq!(contrary("BRCA1 repairs DNA."), "It is not true that BRCA1 repairs DNA.");
        assert_eq!(contrary(""), "It is not true that ");
    }
}
