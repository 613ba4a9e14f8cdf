//! BM25 scored from tantivy's postings, with tunable `k1` and `b` (tantivy's own scorer fixes
//! them at 1.2 / 0.75) and several fields weighted into one, as BM25F / Lucene's
//! `CombinedFieldQuery` do: a term's frequency is the weighted sum of its frequencies in the
//! fields, a chunk's length the weighted sum of its field lengths, and the saturation is applied
//! once to that sum. A title word therefore adds to the body's evidence instead of forming a
//! second BM25 score of its own.
//!
//! For each query term `t` and chunk `d`:
//!
//! ```text
//! tf(t, d) = Σ_f w_f · tf_f(t, d)        dl(d) = Σ_f w_f · len_f(d)      avgdl = Σ_f w_f · avglen_f
//! idf(t)   = ln(1 + (N − df + 0.5) / (df + 0.5))       df = max_f df_f(t)
//! score    = Σ_t idf(t) · tf / (tf + k1 · (1 − b + b · dl / avgdl))
//! ```
//!
//! as Lucene computes it (without the constant `k1 + 1` factor, which changes no ranking). `N`
//! counts every indexed chunk, of every collection, as the statistics of one index do; lengths
//! come from tantivy's one-byte field norms, as lossy as Lucene's. Scoring is term at a time:
//! each term's postings are read once per segment into an accumulator, then the chunks of the
//! asked collections are kept and the best `k` returned.

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Searcher, TERMINATED, Term};

/// The BM25 parameters and the weight of each field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Params {
    /// Term frequency saturation (Lucene and tantivy: 1.2; Anserini: 0.9).
    pub k1: f32,
    /// Length normalisation, 0 (none) to 1 (full) (Lucene and tantivy: 0.75; Anserini: 0.4).
    pub b: f32,
    /// Weight of the document title, relative to the chunk text (1.0). 0 leaves it out.
    pub title_weight: f32,
    /// Weight of the heading path (and email subject or attachment name) above the chunk.
    pub headings_weight: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params::from(&crate::config::RetrievalConfig::default())
    }
}

impl From<&crate::config::RetrievalConfig> for Bm25Params {
    fn from(cfg: &crate::config::RetrievalConfig) -> Self {
        Bm25Params {
            k1: cfg.bm25_k1,
            b: cfg.bm25_b,
            title_weight: cfg.bm25_title_weight,
            headings_weight: cfg.bm25_headings_weight,
        }
    }
}

/// Inverse document frequency of a term found in `df` of `n` chunks.
pub fn idf(df: u64, n: u64) -> f32 {
    let (df, n) = (df as f32, n.max(df) as f32);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// One term's contribution to a chunk's score.
pub fn term_score(idf: f32, tf: f32, dl: f32, avgdl: f32, params: &Bm25Params) -> f32 {
    if tf <= 0.0 {
        return 0.0;
    }
    let norm = if avgdl > 0.0 { 1.0 - params.b + params.b * dl / avgdl } else { 1.0 };
    idf * tf / (tf + params.k1 * norm)
}

/// A text field and its weight in the combined field.
#[derive(Clone, Copy, Debug)]
pub struct Weighted {
    pub field: Field,
    pub weight: f32,
}

/// A scored chunk: segment, tantivy document and score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub segment: u32,
    pub doc: DocId,
    pub score: f32,
}

/// Which of a segment's candidate documents (in increasing order) are kept: a flag per document.
pub type Keep<'a> = dyn FnMut(u32, &[DocId]) -> tantivy::Result<Vec<bool>> + 'a;

/// Scores every chunk that contains a term of `terms` (analysed, distinct) in one of `fields`,
/// keeping those for which `keep(segment, docs)` says yes (called once per segment with the
/// candidate documents in increasing order; it returns a flag per document). Best first, at most
/// `k`; ties go to the earlier document.
pub fn score(
    searcher: &Searcher,
    fields: &[Weighted],
    terms: &[String],
    params: &Bm25Params,
    k: usize,
    keep: &mut Keep<'_>,
) -> tantivy::Result<Vec<Hit>> {
    let fields: Vec<Weighted> = fields.iter().copied().filter(|f| f.weight > 0.0).collect();
    if fields.is_empty() || terms.is_empty() || k == 0 {
        return Ok(Vec::new());
    }
    let n: u64 = searcher.segment_readers().iter().map(|s| u64::from(s.max_doc())).sum();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut avgdl = 0.0;
    for f in &fields {
        let tokens: u64 = searcher
            .segment_readers()
            .iter()
            .map(|s| s.inverted_index(f.field).map(|i| i.total_num_tokens()))
            .sum::<tantivy::Result<u64>>()?;
        avgdl += f.weight * tokens as f32 / n as f32;
    }
    let mut idfs = Vec::with_capacity(terms.len());
    for term in terms {
        let mut df = 0;
        for f in &fields {
            df = df.max(searcher.doc_freq(&Term::from_field_text(f.field, term))?);
        }
        idfs.push(if df > 0 { Some(idf(df, n)) } else { None });
    }

    let mut hits = Vec::new();
    for (segment, reader) in searcher.segment_readers().iter().enumerate() {
        let segment = segment as u32;
        let norms: Vec<FieldNormReader> =
            fields.iter().map(|f| reader.get_fieldnorms_reader(f.field)).collect::<tantivy::Result<_>>()?;
        let length =
            |doc: DocId| -> f32 { fields.iter().zip(&norms).map(|(f, n)| f.weight * n.fieldnorm(doc) as f32).sum() };
        // Dense accumulators (pages that no posting touches are never written), and the
        // documents touched, so that only those are visited.
        let max_doc = reader.max_doc() as usize;
        let (mut scores, mut scored) = (vec![0.0f32; max_doc], Vec::new());
        let (mut tf, mut seen) = (vec![0.0f32; max_doc], Vec::new());
        for (term, idf) in terms.iter().zip(&idfs) {
            let Some(idf) = *idf else { continue };
            for f in &fields {
                let index = reader.inverted_index(f.field)?;
                let Some(mut postings) =
                    index.read_postings(&Term::from_field_text(f.field, term), IndexRecordOption::WithFreqs)?
                else {
                    continue;
                };
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    let slot = &mut tf[doc as usize];
                    if *slot == 0.0 {
                        seen.push(doc);
                    }
                    *slot += f.weight * postings.term_freq() as f32;
                    doc = postings.advance();
                }
            }
            for doc in seen.drain(..) {
                let freq = std::mem::take(&mut tf[doc as usize]);
                let slot = &mut scores[doc as usize];
                if *slot == 0.0 {
                    scored.push(doc);
                }
                *slot += term_score(idf, freq, length(doc), avgdl, params);
            }
        }
        let alive = reader.alive_bitset();
        scored.retain(|&d| alive.is_none_or(|a| a.is_alive(d)));
        scored.sort_unstable();
        let kept = keep(segment, &scored)?;
        hits.extend(scored.iter().zip(kept).filter(|(_, k)| *k).map(|(&doc, _)| Hit {
            segment,
            doc,
            score: scores[doc as usize],
        }));
    }
    let order = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score).then((a.segment, a.doc).cmp(&(b.segment, b.doc)));
    if hits.len() > k {
        hits.select_nth_unstable_by(k - 1, order);
        hits.truncate(k);
    }
    hits.sort_unstable_by(order);
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k1: f32, b: f32) -> Bm25Params {
        Bm25Params { k1, b, title_weight: 0.0, headings_weight: 0.0 }
    }

    #[test]
    fn idf_by_hand() {
        // ln(1 + (10 - 1 + 0.5) / (1 + 0.5)) = ln(7.333…)
        assert!((idf(1, 10) - 7.333_333_f32.ln()).abs() < 1e-6);
        // A term in every chunk still counts a little: ln(1 + 0.5 / 10.5).
        assert!((idf(10, 10) - (1.0f32 + 0.5 / 10.5).ln()).abs() < 1e-6);
    }

    #[test]
    fn term_score_by_hand() {
        // tf 2, length 10, average 5, k1 1.2, b 0.75: 2 / (2 + 1.2 · (0.25 + 0.75 · 2)) = 2 / 4.1
        let s = term_score(1.0, 2.0, 10.0, 5.0, &params(1.2, 0.75));
        assert!((s - 2.0 / 4.1).abs() < 1e-6, "{s}");
        // Anserini's 0.9 / 0.4: 2 / (2 + 0.9 · (0.6 + 0.4 · 2)) = 2 / 3.26
        let s = term_score(1.0, 2.0, 10.0, 5.0, &params(0.9, 0.4));
        assert!((s - 2.0 / 3.26).abs() < 1e-6, "{s}");
        // b = 0: the length does not matter.
        assert_eq!(
            term_score(1.0, 1.0, 100.0, 5.0, &params(1.2, 0.0)),
            term_score(1.0, 1.0, 1.0, 5.0, &params(1.2, 0.0))
        );
        assert_eq!(term_score(3.0, 0.0, 10.0, 5.0, &params(1.2, 0.75)), 0.0);
    }
}
