//! Pure rendering of the bot's replies as MIME messages: an answer with numbered sources, ingest
//! receipts, or a polite refusal, each as `multipart/alternative` (plain text + escaped HTML),
//! threaded under the mail it answers and marked `Auto-Submitted: auto-replied` (RFC 3834) so
//! that other robots do not answer it back.

use footnote_adapter::html::{escape as html_escape, paragraphs};
use footnote_adapter::{Answer, Citation, IngestError, IngestReceipt, render};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::convert::Inbound;
use crate::error::EmailError;

/// What a reply says.
#[derive(Debug)]
pub enum ReplyBody<'a> {
    /// An answer to a question.
    Answer(&'a Answer),
    /// The outcome of each file of an ingest, in order.
    Receipts(&'a [Result<IngestReceipt, IngestError>]),
    /// A short sentence (a refusal or an error's `user_message()`).
    Notice(String),
}

impl ReplyBody<'_> {
    /// The plain-text part.
    pub fn plain(&self) -> String {
        match self {
            ReplyBody::Answer(answer) => render::answer_plain(answer),
            ReplyBody::Receipts(outcomes) => outcomes.iter().map(outcome_line).collect::<Vec<_>>().join("\n"),
            ReplyBody::Notice(text) => text.clone(),
        }
    }

    /// The HTML part; every piece of text in it is escaped.
    pub fn html(&self) -> String {
        let inner = match self {
            ReplyBody::Answer(answer) => answer_html(answer),
            ReplyBody::Receipts(outcomes) => {
                let items: String =
                    outcomes.iter().map(|o| format!("<li>{}</li>", html_escape(&outcome_line(o)))).collect();
                format!("<ul>{items}</ul>")
            }
            ReplyBody::Notice(text) => paragraphs(text),
        };
        format!("<!DOCTYPE html><html><body>{inner}</body></html>")
    }

    fn kind(&self) -> &'static str {
        match self {
            ReplyBody::Answer(_) => "answer",
            ReplyBody::Receipts(_) => "receipt",
            ReplyBody::Notice(_) => "notice",
        }
    }
}

fn outcome_line(outcome: &Result<IngestReceipt, IngestError>) -> String {
    match outcome {
        Ok(receipt) => receipt.summary(),
        Err(error) => error.user_message(),
    }
}

fn answer_html(answer: &Answer) -> String {
    let mut out = String::new();
    if let Some(notice) = answer.notice {
        out.push_str(&format!("<p><em>{}</em></p>", html_escape(notice.user_message())));
    }
    out.push_str(&paragraphs(answer.text.trim()));
    for note in render::answer_notes(answer) {
        out.push_str(&format!("<p><em>{}</em></p>", html_escape(note)));
    }
    if !answer.citations.is_empty() {
        out.push_str("<p><strong>Sources</strong></p><ol>");
        for citation in &answer.citations {
            out.push_str(&source_html(citation));
        }
        out.push_str("</ol>");
    }
    out
}

fn source_html(citation: &Citation) -> String {
    let mut item = format!("<li value=\"{}\"><strong>{}</strong>", citation.n, html_escape(&citation.title));
    let remark = render::support_remark(citation);
    if !remark.is_empty() {
        item.push_str(&format!(" <em>({remark})</em>"));
    }
    let locator = citation.locator.to_string();
    if !locator.is_empty() {
        item.push_str(&format!(" — {}", html_escape(&locator)));
    }
    if !citation.snippet.is_empty() {
        item.push_str(&format!("<br><q>{}</q>", html_escape(&citation.snippet)));
    }
    item.push_str("</li>");
    item
}

/// The reply's Message-ID: a keyed hash of the mail it answers, so that a reply sent twice
/// (after a crash at the wrong moment) carries the same id and mail clients show it once, while
/// nobody without `key` (drawn at random by each installation) can work it out from the
/// question's Message-ID.
pub fn reply_message_id(inbound: &Inbound, kind: &str, from: &str, key: &[u8; 32]) -> String {
    let domain = crate::convert::split_address(from).map_or("footnote.invalid", |(_, d)| d);
    let hash = blake3::keyed_hash(key, format!("{kind}\n{}", inbound.message_id).as_bytes());
    let hex: String = hash.as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("footnote.{kind}.{hex}@{domain}")
}

/// `Re: <subject>` unless it already starts with `Re:`.
pub fn reply_subject(subject: &str) -> String {
    let subject = subject.trim();
    if subject.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        subject.to_owned()
    } else if subject.is_empty() {
        "Re: your message".into()
    } else {
        format!("Re: {subject}")
    }
}

/// Builds the reply from `from` to the sender of `inbound`; `key` keys its Message-ID.
pub fn build(from: &str, inbound: &Inbound, body: &ReplyBody<'_>, key: &[u8; 32]) -> Result<Message, EmailError> {
    let from: Mailbox = from.parse().map_err(|e| EmailError::Build(format!("from address: {e}")))?;
    let to_address = inbound.sender.parse().map_err(|e| EmailError::Build(format!("sender address: {e}")))?;
    let to = Mailbox::new(inbound.sender_name.clone(), to_address);
    let mut references: Vec<String> = inbound.references.iter().map(|id| format!("<{id}>")).collect();
    references.push(format!("<{}>", inbound.message_id));
    let auto_submitted = HeaderName::new_from_ascii_str("Auto-Submitted");
    let message_id = reply_message_id(inbound, body.kind(), from.email.as_ref(), key);
    Message::builder()
        .from(from)
        .to(to)
        .subject(reply_subject(&inbound.subject))
        .in_reply_to(format!("<{}>", inbound.message_id))
        .references(references.join(" "))
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(auto_submitted, "auto-replied".into()))
        .date_now()
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(body.plain()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(body.html())),
        )
        .map_err(|e| EmailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use footnote_adapter::{Locator, Timings};
    use mail_parser::MessageParser;

    use super::*;

    fn inbound() -> Inbound {
        Inbound {
            message_id: "q2@example.org".into(),
            sender: "ann@example.org".into(),
            sender_name: Some("Ann".into()),
            subject: "Budget?".into(),
            date: None,
            references: vec!["q1@example.org".into(), "a1@bot.example".into()],
            thread_root: "q1@example.org".into(),
        }
    }

    fn answer() -> Answer {
        let citation = |n: u32, title: &str, snippet: &str| Citation {
            n,
            document_id: format!("d{n}"),
            title: title.into(),
            locator: Locator { page: Some(n), ..Locator::default() },
            snippet: snippet.into(),
            score: 1.0,
            support: footnote_adapter::Support::Unchecked,
            support_score: None,
            cited_by: footnote_adapter::CitedBy::Model,
        };
        Answer {
            text: "It is <b>42</b> & rising [1][2].".into(),
            citations: vec![citation(1, "Plan <2024>", "budget \"42\""), citation(2, "Notes", "rising")],
            notice: None,
            model: "m".into(),
            timings: Timings::default(),
            sentences: Vec::new(),
            cut_short: false,
        }
    }

    #[test]
    fn an_answer_is_a_threaded_auto_reply_with_both_parts() {
        let answer = answer();
        let message = build("Bot <bot@bot.example>", &inbound(), &ReplyBody::Answer(&answer), &[7; 32]).unwrap();
        let raw = message.formatted();
        let parsed = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Re: Budget?"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("q2@example.org"));
        let refs: Vec<String> = parsed.references().as_text_list().unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(refs, ["q1@example.org", "a1@bot.example", "q2@example.org"]);
        assert_eq!(parsed.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
        assert_eq!(parsed.to().unwrap().first().unwrap().address(), Some("ann@example.org"));
        let plain = parsed.body_text(0).unwrap();
        assert!(plain.contains("It is <b>42</b> & rising [1][2]."), "{plain}");
        assert!(plain.contains("[1] Plan <2024> — p. 1: “budget \"42\"”"), "{plain}");
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("It is &lt;b&gt;42&lt;/b&gt; &amp; rising [1][2]."), "{html}");
        assert!(html.contains("<li value=\"2\"><strong>Notes</strong> — p. 2<br><q>rising</q></li>"), "{html}");
        assert!(!html.contains("<b>42"), "unescaped answer text in {html}");
        assert!(html.contains("Plan &lt;2024&gt;") && html.contains("budget &quot;42&quot;"));
    }

    #[test]
    fn the_reply_id_is_stable_kind_specific_and_keyed() {
        let a = reply_message_id(&inbound(), "answer", "bot@bot.example", &[7; 32]);
        assert_eq!(a, reply_message_id(&inbound(), "answer", "bot@bot.example", &[7; 32]));
        assert_ne!(a, reply_message_id(&inbound(), "receipt", "bot@bot.example", &[7; 32]));
        assert_ne!(a, reply_message_id(&inbound(), "answer", "bot@bot.example", &[8; 32]), "another installation");
        let unkeyed = format!("{:016x}", crate::text::fnv1a(inbound().message_id.as_bytes()));
        assert!(!a.contains(&unkeyed), "not the guessable hash of the question's id: {a}");
        assert!(a.ends_with("@bot.example"));
    }

    #[test]
    fn receipts_and_errors_are_listed() {
        let receipt = IngestReceipt {
            document_id: "d7".into(),
            title: "Report <Q3>".into(),
            collection: "ann@example.org".into(),
            chunks: 4,
            pages: Some(2),
            outcome: footnote_adapter::IngestOutcome::Added,
            embeddings_pending: false,
        };
        let outcomes = [Ok(receipt), Err(IngestError::Empty)];
        let body = ReplyBody::Receipts(&outcomes);
        assert!(body.plain().contains("Added “Report <Q3>” (4 chunks, 2 pages) as document d7."));
        assert!(body.plain().contains("That file is empty"));
        assert!(body.html().contains("Report &lt;Q3&gt;"));
    }

    #[test]
    fn the_notice_of_an_answer_without_the_model_is_shown_once() {
        for (answer, notice) in footnote_adapter::testing::answers_without_the_model() {
            let body = ReplyBody::Answer(&answer);
            let sentence = notice.user_message();
            assert_eq!(body.plain().matches(sentence).count(), 1, "{}", body.plain());
            assert_eq!(body.html().matches(&html_escape(sentence)).count(), 1, "{}", body.html());
        }
    }

    #[test]
    fn subjects_get_one_re() {
        assert_eq!(reply_subject("RE: x"), "RE: x");
        assert_eq!(reply_subject("x"), "Re: x");
        assert_eq!(reply_subject(""), "Re: your message");
    }
}
