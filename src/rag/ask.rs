//! Answering: retrieve within the asker's collections, prompt the chat model with numbered
//! sources, stream its tokens through the citation rewriter, and finish with a checked
//! [`Answer`] whose citations carry title, locator and snippet.

use std::time::{Duration, Instant};

use footnote_adapter::{Answer, Citation, CitedBy, Notice, Question, Support, Timings};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::citations::{self, CitationRewriter};
use super::prompt::{self, Prompt};
use super::queue::QueueFull;
use super::{Rag, RagError};
use crate::llm::{ChatRequest, ChatStats, OllamaError};
use crate::retrieval::{self, Source, rerank};

/// Longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;
/// Candidates loaded from the store before packing into the context.
const CANDIDATES: usize = 24;

/// What the engine reports while it answers; the gateway turns it into the adapters' events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for a turn of the chat model; `position` 1 means next.
    Queued { position: usize },
    /// The chat model is being loaded into memory.
    LoadingModel,
    /// A piece of answer text as the model writes it (markers renumbered, not yet checked).
    Token(String),
}

/// Who asks, for the model queue: the key it takes turns by, and whether the per-user cap on
/// waiting questions applies (not to the local operator).
#[derive(Clone, Copy, Debug)]
pub struct Asker<'a> {
    pub key: &'a str,
    pub capped: bool,
}

impl Rag {
    /// Answers `question` from `collections`: retrieves, packs the prompt, waits for a turn of the
    /// model, streams its tokens through the citation rewriter to `progress`, and checks the
    /// citations. A closed `progress` receiver stops the work ([`RagError::Abandoned`]).
    pub async fn answer(
        &self,
        collections: &[String],
        asker: Asker<'_>,
        question: Question,
        progress: &mpsc::Sender<Progress>,
    ) -> Result<Answer, RagError> {
        let started = Instant::now();
        let text = question.text.trim();
        if text.is_empty() {
            return Err(RagError::Invalid("the question is empty".into()));
        }
        if text.chars().count() > MAX_QUESTION_CHARS {
            return Err(RagError::Invalid(format!("questions are limited to {MAX_QUESTION_CHARS} characters")));
        }
        let search = prompt::search_text(&question);

        // The query embedding; without it BM25 still finds sources.
        let (query_vector, model_down) = match self.embed_query(&search).await {
            Ok(v) => (Some(v), false),
            Err(RagError::Ollama(e)) => {
                super::error::count_ollama_error(&e);
                tracing::warn!(error = %e, "query embedding failed; keyword search only");
                (None, e.is_unreachable())
            }
            Err(e) => return Err(e),
        };
        let retrieval_started = Instant::now();
        let candidates = retrieval::retrieve(
            &self.indexes,
            self.store.as_ref(),
            &self.cfg.retrieval,
            collections,
            &search,
            query_vector.as_deref(),
            CANDIDATES,
        )
        .await?;
        let retrieval_time = retrieval_started.elapsed();

        let mut timings = Timings { retrieval: retrieval_time, first_token: None, total: Duration::ZERO };
        if candidates.is_empty() {
            timings.total = started.elapsed();
            return Ok(Answer::nothing_found(timings));
        }

        let num_ctx = self.num_ctx().await;
        let prompt = Prompt::new(&self.cfg.answer.system_prompt, &question, self.cfg.answer.history_turns);
        let (reserve, max_sources) = (self.cfg.answer.reserve_tokens as usize, self.cfg.retrieval.max_sources);
        let sources = prompt.pack(candidates.clone(), num_ctx as usize, reserve, max_sources);
        if sources.is_empty() {
            return Err(RagError::Invalid("the question is too long for the model's context window".into()));
        }

        if model_down {
            timings.total = started.elapsed();
            return Ok(Answer::model_unreachable(self.listed(&sources, &search), timings));
        }

        // Wait for a turn of the chat model; the slot is held until the answer is complete.
        let mut slot = self.queue.enter(asker.key, asker.capped).map_err(|full| match full {
            QueueFull::Everyone => RagError::Busy,
            QueueFull::User => RagError::UserBusy,
        })?;
        slot.admitted(|position| {
            let progress = progress.clone();
            async move {
                let _ = progress.send(Progress::Queued { position }).await;
            }
        })
        .await;
        // The reranker grades with the chat model, so it waits for the model's turn too.
        let sources = match self.reranker() {
            Some(reranker) => {
                let (ranked, _) = rerank::rerank(reranker, &self.cfg.retrieval.rerank, &search, candidates).await;
                prompt.pack(ranked, num_ctx as usize, reserve, max_sources)
            }
            None => sources,
        };

        let model = self.cfg.ollama.chat_model.clone();
        if !self.is_loaded(&model).await {
            let _ = progress.send(Progress::LoadingModel).await;
        }
        let request = ChatRequest {
            model: model.clone(),
            messages: prompt.messages(&sources),
            num_ctx: Some(num_ctx),
            temperature: Some(self.cfg.ollama.temperature),
            num_predict: Some(self.cfg.answer.reserve_tokens as i32),
        };
        let mut stream = self.ollama.chat_stream(request).await?;
        let mut rewriter = CitationRewriter::new(sources.len());
        let mut raw = String::new();
        let mut shown = String::new();
        let mut stats: Option<ChatStats> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if !chunk.content.is_empty() {
                timings.first_token.get_or_insert_with(|| started.elapsed());
                raw.push_str(&chunk.content);
                let piece = rewriter.push(&chunk.content);
                if !piece.is_empty() {
                    shown.push_str(&piece);
                    if progress.send(Progress::Token(piece)).await.is_err() {
                        return Err(RagError::Abandoned);
                    }
                }
            }
            if chunk.done {
                stats = chunk.stats;
                break;
            }
        }
        shown.push_str(&rewriter.finish());
        let text = citations::tidy(&shown).trim().to_owned();
        tracing::debug!(raw = %raw, "model answer");
        if text.is_empty() {
            return Err(RagError::Ollama(OllamaError::StreamCut));
        }
        let cut_short = stats.as_ref().is_some_and(|s| was_cut_short(s, num_ctx));
        let query = format!("{search} {text}");

        let Some(checked) = self.check_support(&raw, &sources, cut_short, num_ctx).await else {
            // The check is off: markers were only renumbered.
            let used = rewriter.used().to_vec();
            let (citations, notice) = if used.is_empty() {
                (self.listed(&sources, &query), Some(Notice::Uncited))
            } else {
                (self.citations(&sources, &used, &query), None)
            };
            timings.total = started.elapsed();
            return Ok(Answer { text, citations, notice, model, timings, sentences: Vec::new(), cut_short });
        };
        let (citations, notice) = if checked.order.is_empty() {
            (self.listed(&sources, &query), Some(Notice::Uncited))
        } else {
            let order: Vec<usize> = checked.order.iter().map(|i| i + 1).collect();
            let mut citations = self.citations(&sources, &order, &query);
            for (citation, &(support, score, cited_by)) in citations.iter_mut().zip(&checked.citations) {
                citation.support = support;
                citation.support_score = score;
                citation.cited_by = cited_by;
            }
            (citations, None)
        };
        timings.total = started.elapsed();
        Ok(Answer { text: checked.text, citations, notice, model, timings, sentences: checked.sentences, cut_short })
    }

    /// Every packed source, listed without being cited (the answer cites none of them).
    fn listed(&self, sources: &[Source], query: &str) -> Vec<Citation> {
        let order: Vec<usize> = (1..=sources.len()).collect();
        let mut citations = self.citations(sources, &order, query);
        for citation in &mut citations {
            citation.support = Support::NotCited;
            citation.cited_by = CitedBy::None;
        }
        citations
    }

    /// Citations for the sources in `order` (1-based indexes into `sources`), numbered from 1.
    fn citations(&self, sources: &[Source], order: &[usize], query: &str) -> Vec<Citation> {
        order
            .iter()
            .enumerate()
            .filter_map(|(i, &n)| {
                let source = sources.get(n - 1)?;
                Some(Citation {
                    n: i as u32 + 1,
                    document_id: source.chunk.document_id.to_string(),
                    title: source.chunk.title.clone(),
                    locator: prompt::shown_locator(&source.chunk),
                    snippet: citations::snippet(&source.chunk.text, query, self.cfg.answer.snippet_chars),
                    score: source.score,
                    support: Support::Unchecked,
                    support_score: None,
                    cited_by: CitedBy::Model,
                })
            })
            .collect()
    }

    /// True when Ollama reports the model loaded (or cannot say).
    async fn is_loaded(&self, model: &str) -> bool {
        match self.ollama.ps().await {
            Ok(running) => running.iter().any(|m| same_model(&m.name, model) || same_model(&m.model, model)),
            Err(_) => true,
        }
    }
}

/// True when the model stopped before finishing: its length limit (`done_reason` "length"), or
/// the prompt and the answer filled the context window.
fn was_cut_short(stats: &ChatStats, num_ctx: u32) -> bool {
    let filled = num_ctx > 0 && stats.prompt_eval_count + stats.eval_count >= u64::from(num_ctx);
    stats.done_reason.as_deref() == Some("length") || filled
}

/// Model names match with or without the implicit `:latest` tag.
pub(crate) fn same_model(a: &str, b: &str) -> bool {
    let norm = |s: &str| if s.contains(':') { s.to_owned() } else { format!("{s}:latest") };
    norm(a) == norm(b)
}
