//! The replies to the chat commands other than asking: the warm-up, status, document list and
//! forget reports. Every adapter words them the same; a [`Markup`] says how its platform quotes
//! names and ids, starts list items and escapes text.

use crate::types::counted;
use crate::{DocumentInfo, ForgetReceipt, ModelState, Status, WarmupReport};

/// How a platform writes the reports.
#[derive(Clone, Copy, Debug)]
pub struct Markup {
    /// Quotes a model name or document id (`` `x` `` where code spans exist).
    pub code: fn(&str) -> String,
    /// Starts a list item (`- `, `• `).
    pub bullet: &'static str,
    /// Escapes any other text that came from a user, a document or a model.
    pub escape: fn(&str) -> String,
}

/// Text as it is.
pub fn verbatim(text: &str) -> String {
    text.to_owned()
}

/// Text in a Markdown code span.
pub fn backticks(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

/// Plain text: no code spans, `- ` items, nothing escaped.
pub const PLAIN: Markup = Markup { code: verbatim, bullet: "- ", escape: verbatim };
/// Markdown as Discord shows it: names and ids in code spans.
pub const MARKDOWN: Markup = Markup { code: backticks, bullet: "- ", escape: verbatim };

/// The warm-up report: how long each model took to load.
pub fn warmup_text(report: &WarmupReport, markup: Markup) -> String {
    if report.models.is_empty() {
        return "There are no models to warm up.".to_owned();
    }
    let lines: Vec<String> = report
        .models
        .iter()
        .map(|m| {
            let name = (markup.code)(&m.name);
            let (took, load) = (m.took.as_secs_f64(), m.load.as_secs_f64());
            if m.load.is_zero() {
                format!("{}{name} was already loaded (ready in {took:.1} s)", markup.bullet)
            } else {
                format!("{}{name} loaded in {load:.1} s (ready in {took:.1} s)", markup.bullet)
            }
        })
        .collect();
    format!("Models are warm:\n{}", lines.join("\n"))
}

/// The status report: Ollama, both models, what is stored, and the problem if there is one.
pub fn status_text(status: &Status, markup: Markup) -> String {
    let model = |m: &ModelState| {
        let state = match (m.available, m.loaded) {
            (_, true) => "loaded",
            (true, false) => "available, not loaded",
            (false, false) => "not available",
        };
        format!("{}: {state}", (markup.code)(&m.name))
    };
    let mut out = format!(
        "Ollama: {}\nChat model {}\nEmbedding model {}\nDocuments: {}, chunks: {}",
        if status.ollama_reachable { "reachable" } else { "unreachable" },
        model(&status.chat_model),
        model(&status.embed_model),
        status.documents,
        status.chunks
    );
    if status.pending_embeddings > 0 {
        out.push_str(&format!(", waiting for embeddings: {}", status.pending_embeddings));
    }
    if let Some(problem) = &status.problem {
        out.push_str(&format!("\nProblem: {}", (markup.escape)(problem)));
    }
    out
}

/// The document listing, at most `limit` characters (the rest is counted); `empty` tells how to
/// add a first document on this platform.
pub fn documents_text(documents: &[DocumentInfo], markup: Markup, empty: &str, limit: usize) -> String {
    if documents.is_empty() {
        return format!("There are no documents here yet. {empty}");
    }
    let s = if documents.len() == 1 { "" } else { "s" };
    let mut out = format!("{} document{s} here:", documents.len());
    for (i, doc) in documents.iter().enumerate() {
        let line = format!(
            "\n{}{} {} ({}, {})",
            markup.bullet,
            (markup.code)(&doc.id),
            (markup.escape)(&doc.title),
            (markup.escape)(&doc.kind),
            counted(doc.chunks, "chunk")
        );
        if out.chars().count() + line.chars().count() > limit.saturating_sub(40) {
            out.push_str(&format!("\n…and {} more.", documents.len() - i));
            break;
        }
        out.push_str(&line);
    }
    out
}

/// The receipt of a forgotten document.
pub fn forget_text(receipt: &ForgetReceipt, markup: Markup) -> String {
    (markup.escape)(&format!(
        "Forgot “{}” (document {}, {}).",
        receipt.title,
        receipt.document_id,
        counted(receipt.chunks, "chunk")
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ModelWarmup;

    fn document(n: usize) -> DocumentInfo {
        DocumentInfo {
            id: format!("d{n}"),
            title: format!("Manual <{n}>"),
            source: "manual.pdf".into(),
            collection: "c".into(),
            kind: "pdf".into(),
            chunks: 3,
            bytes: 100,
            added_at: "2024-01-01T00:00:00Z".into(),
            pending_embeddings: 0,
        }
    }

    #[test]
    fn warmup_says_how_long_each_model_took_in_each_markup() {
        let model = |name: &str, load, took| ModelWarmup {
            name: name.into(),
            load: Duration::from_millis(load),
            took: Duration::from_millis(took),
        };
        let report = WarmupReport { models: vec![model("llama3.2", 4100, 4300), model("nomic", 0, 100)] };
        assert_eq!(
            warmup_text(&report, MARKDOWN),
            "Models are warm:\n- `llama3.2` loaded in 4.1 s (ready in 4.3 s)\n- `nomic` was already loaded (ready in 0.1 s)"
        );
        assert!(warmup_text(&report, PLAIN).contains("\n- llama3.2 loaded"));
        assert_eq!(warmup_text(&WarmupReport { models: Vec::new() }, PLAIN), "There are no models to warm up.");
    }

    #[test]
    fn a_long_document_list_is_cut_and_counted() {
        let docs: Vec<DocumentInfo> = (0..500).map(document).collect();
        let text = documents_text(&docs, PLAIN, "", 3000);
        assert!(text.chars().count() <= 3000 && text.ends_with("more."), "{text}");
        assert!(text.starts_with("500 documents here:\n- d0 Manual <0> (pdf, 3 chunks)"));
        assert_eq!(documents_text(&[], PLAIN, "Send a file.", 3000), "There are no documents here yet. Send a file.");
    }

    #[test]
    fn escaping_reaches_titles_problems_and_receipts() {
        let shout = Markup { code: backticks, bullet: "• ", escape: |t| t.to_uppercase() };
        assert!(documents_text(&[document(1)], shout, "", usize::MAX).contains("• `d1` MANUAL <1> (PDF, 3 chunks)"));
        let receipt = ForgetReceipt { document_id: "d1".into(), title: "Manual".into(), chunks: 3 };
        assert_eq!(forget_text(&receipt, PLAIN), "Forgot “Manual” (document d1, 3 chunks).");
        assert_eq!(forget_text(&receipt, shout), "FORGOT “MANUAL” (DOCUMENT D1, 3 CHUNKS).");
    }
}
