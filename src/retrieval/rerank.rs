//! An optional second stage that re-orders the best fused candidates with a model that reads
//! the question and each passage together (off by default: `retrieval.rerank.enabled`).
//!
//! [`Reranker`] is the one seam: [`ChatReranker`] asks the chat model through Ollama (which has
//! no rerank endpoint) to grade each passage from 0 to 3, a few at a time, until the time budget
//! runs out; an in-process cross-encoder can implement the same trait later. A passage the
//! reranker did not grade in time, or graded with an unreadable reply, keeps its retrieval
//! score. The final order blends both, so a weak grader can only nudge the retrieval order:
//! `(1 − weight) · retrieval + weight · grade`, each scaled to 0..1 over the candidates.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;

use super::Source;
use crate::config::RerankConfig;
use crate::llm::{ChatMessage, ChatRequest, OllamaClient, OllamaError};

/// The highest grade a reranker gives.
pub const MAX_GRADE: f32 = 3.0;
/// Longest passage text shown to the grader, in characters.
const PASSAGE_CHARS: usize = 1500;

const GRADER_PROMPT: &str = "You grade how well a passage answers a question. Reply with a single digit: \
3 = the passage answers the question, 2 = it holds part of the answer, 1 = same topic but no answer, \
0 = unrelated.";

/// One candidate as a reranker sees it.
#[derive(Clone, Copy, Debug)]
pub struct Passage<'a> {
    /// The document's title.
    pub title: &'a str,
    pub text: &'a str,
}

/// Grades passages against a question.
#[async_trait]
pub trait Reranker: Send + Sync {
    /// A short name for logs and reports.
    fn name(&self) -> String;

    /// A grade from 0 to [`MAX_GRADE`] for each passage, in input order; `None` for a passage
    /// not graded before `deadline` or whose grade could not be read. An error means no passage
    /// can be graded (the model is unreachable).
    async fn grade(
        &self,
        question: &str,
        passages: &[Passage<'_>],
        deadline: Instant,
    ) -> Result<Vec<Option<f32>>, OllamaError>;
}

/// The chat model as a pointwise grader: one short chat call per passage, `parallel` at a
/// time.
pub struct ChatReranker {
    ollama: OllamaClient,
    model: String,
    parallel: usize,
}

impl ChatReranker {
    pub fn new(ollama: OllamaClient, model: String, parallel: usize) -> ChatReranker {
        ChatReranker { ollama, model, parallel: parallel.max(1) }
    }

    fn request(&self, question: &str, passage: &Passage<'_>) -> ChatRequest {
        let text: String = passage.text.chars().take(PASSAGE_CHARS).collect();
        let user = format!("Question: {question}\n\nPassage from \"{}\":\n{text}\n\nGrade (0-3):", passage.title);
        ChatRequest {
            model: self.model.clone(),
            messages: vec![ChatMessage::system(GRADER_PROMPT), ChatMessage::user(user)],
            num_ctx: None,
            temperature: Some(0.0),
            num_predict: Some(4),
        }
    }
}

/// The grade in a grader's reply: its first digit from 0 to 3.
pub fn parse_grade(reply: &str) -> Option<f32> {
    let digit = reply.chars().find(char::is_ascii_digit)?.to_digit(10)?;
    (digit <= 3).then_some(digit as f32)
}

#[async_trait]
impl Reranker for ChatReranker {
    fn name(&self) -> String {
        format!("chat model {} (pointwise)", self.model)
    }

    async fn grade(
        &self,
        question: &str,
        passages: &[Passage<'_>],
        deadline: Instant,
    ) -> Result<Vec<Option<f32>>, OllamaError> {
        let requests: Vec<(usize, ChatRequest)> =
            passages.iter().enumerate().map(|(i, p)| (i, self.request(question, p))).collect();
        let ollama = &self.ollama;
        let calls = requests.into_iter().map(|(i, request)| async move {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (i, Ok(None));
            }
            match tokio::time::timeout(left, ollama.chat(request)).await {
                Ok(Ok(reply)) => (i, Ok(parse_grade(&reply.content))),
                Ok(Err(e)) => (i, Err(e)),
                Err(_) => (i, Ok(None)),
            }
        });
        let mut grades = vec![None; passages.len()];
        let mut results = futures::stream::iter(calls).buffer_unordered(self.parallel);
        while let Some((i, result)) = results.next().await {
            match result {
                Ok(grade) => grades[i] = grade,
                Err(e) if e.is_unreachable() => return Err(e),
                Err(e) => tracing::debug!(error = %e, "a rerank call failed; the passage keeps its retrieval score"),
            }
        }
        Ok(grades)
    }
}

/// What a rerank did, for the evaluation's report.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RerankStats {
    pub graded: usize,
    pub candidates: usize,
    pub took: Duration,
}

/// Re-orders the first `cfg.candidates` of `sources` (best first) by their grades blended with
/// their retrieval scores; the rest follow unchanged. On an error the order is kept.
pub async fn rerank(
    reranker: &dyn Reranker,
    cfg: &RerankConfig,
    question: &str,
    mut sources: Vec<Source>,
) -> (Vec<Source>, RerankStats) {
    let started = Instant::now();
    let n = cfg.candidates.min(sources.len());
    let passages: Vec<Passage<'_>> =
        sources[..n].iter().map(|s| Passage { title: &s.chunk.title, text: &s.chunk.text }).collect();
    let grades = match reranker.grade(question, &passages, started + cfg.budget).await {
        Ok(grades) => grades,
        Err(e) => {
            tracing::warn!(error = %e, "reranking failed; the retrieval order stands");
            return (sources, RerankStats { graded: 0, candidates: n, took: started.elapsed() });
        }
    };
    let retrieval: Vec<f32> = sources[..n].iter().map(|s| s.score).collect();
    let order = blend(&retrieval, &grades, cfg.weight);
    let mut head: Vec<Option<Source>> = sources.drain(..n).map(Some).collect();
    let mut out: Vec<Source> = order.iter().filter_map(|&i| head[i].take()).collect();
    out.append(&mut sources);
    let graded = grades.iter().flatten().count();
    (out, RerankStats { graded, candidates: n, took: started.elapsed() })
}

/// The new order of candidates (indexes, best first) from their retrieval scores and grades:
/// `(1 − weight) · min-max(retrieval) + weight · grade / MAX_GRADE`, where an ungraded
/// candidate's grade is taken as its scaled retrieval score. Ties keep the retrieval order.
pub fn blend(retrieval: &[f32], grades: &[Option<f32>], weight: f32) -> Vec<usize> {
    let max = retrieval.iter().copied().fold(f32::MIN, f32::max);
    let min = retrieval.iter().copied().fold(f32::MAX, f32::min);
    let span = max - min;
    let weight = weight.clamp(0.0, 1.0);
    let blended: Vec<f32> = retrieval
        .iter()
        .zip(grades)
        .map(|(&r, g)| {
            let r = if span > f32::EPSILON { (r - min) / span } else { 1.0 };
            let g = g.map_or(r, |g| g.clamp(0.0, MAX_GRADE) / MAX_GRADE);
            (1.0 - weight) * r + weight * g
        })
        .collect();
    let mut order: Vec<usize> = (0..retrieval.len()).collect();
    order.sort_by(|&a, &b| blended[b].total_cmp(&blended[a]).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_are_the_first_digit_up_to_three() {
        assert_eq!(parse_grade("3"), Some(3.0));
        assert_eq!(parse_grade(" Grade: 2."), Some(2.0));
        assert_eq!(parse_grade("7"), None);
        assert_eq!(parse_grade("relevant"), None);
    }

    #[test]
    fn blend_by_hand() {
        // Retrieval 1.0, 0.5, 0.0 (already 0..1); grades 0, 3, none; weight 0.5:
        // a: 0.5·1 + 0.5·0 = 0.5; b: 0.5·0.5 + 0.5·1 = 0.75; c: ungraded keeps 0.
        assert_eq!(blend(&[1.0, 0.5, 0.0], &[Some(0.0), Some(3.0), None], 0.5), vec![1, 0, 2]);
        // Weight 0: the retrieval order; weight 1: the grades alone (ties in retrieval order).
        assert_eq!(blend(&[1.0, 0.5, 0.0], &[Some(0.0), Some(3.0), Some(3.0)], 0.0), vec![0, 1, 2]);
        assert_eq!(blend(&[1.0, 0.5, 0.0], &[Some(0.0), Some(3.0), Some(3.0)], 1.0), vec![1, 2, 0]);
        // An ungraded candidate competes with its own retrieval score: c (0.9 scaled to 0.8) beats a
        // graded 1 (0.33) at weight 1.
        assert_eq!(blend(&[1.0, 0.5, 0.9], &[Some(1.0), Some(0.0), None], 1.0), vec![2, 0, 1]);
        assert!(blend(&[], &[], 0.5).is_empty());
    }
}
