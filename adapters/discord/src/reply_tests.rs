//! Tests of answer rendering within Discord's message and embed limits.

#![allow(clippy::unwrap_used)]

use footnote_adapter::progress::Progress;
use footnote_adapter::{Locator, Notice, Timings};

use super::*;

fn citation(n: u32, snippet: &str) -> Citation {
    Citation {
        n,
        document_id: format!("doc-{n}"),
        title: format!("Manual {n}"),
        locator: Locator { page: Some(n), heading_path: vec!["Setup".into(), "Reset".into()], ..Locator::default() },
        snippet: snippet.to_owned(),
        score: 0.5,
        support: footnote_adapter::Support::Unchecked,
        support_score: None,
        cited_by: footnote_adapter::CitedBy::Model,
    }
}

fn answer(text: &str, citations: Vec<Citation>) -> Answer {
    Answer {
        text: text.to_owned(),
        citations,
        notice: None,
        model: "llama3.2".into(),
        timings: Timings::default(),
        sentences: Vec::new(),
        cut_short: false,
    }
}

#[test]
fn a_short_answer_is_one_message_with_the_sources_embed() {
    let mut chat = citation(2, "Reset   it\nwith the pin.");
    chat.locator = Locator { link: Some("https://discord.com/channels/1/2/3".into()), ..Locator::default() };
    let messages =
        answer_messages(&answer("Hold the button [1]. Or use the pin [2].", vec![citation(1, "Hold 10 s"), chat]));
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content, "Hold the button [1]. Or use the pin [2].");
    let embed = &messages[0].embeds[0];
    assert_eq!(embed.title, "Sources");
    assert_eq!(embed.fields[0], ("[1] Manual 1".to_owned(), "p. 1 · Setup › Reset\n> Hold 10 s".to_owned()));
    assert_eq!(
        embed.fields[1],
        (
            "[2] Manual 2".to_owned(),
            "> Reset it with the pin.\n[Original message](https://discord.com/channels/1/2/3)".to_owned()
        )
    );
}

#[test]
fn a_long_answer_splits_at_2000_without_cutting_markers_and_embeds_go_last() {
    let sentence = "The router keeps its settings in flash memory and restores them on boot [12]. ";
    let text = sentence.repeat(80);
    let messages = answer_messages(&answer(&text, (1..=12).map(|n| citation(n, "x")).collect()));
    assert!(messages.len() >= 3, "{}", messages.len());
    for (i, m) in messages.iter().enumerate() {
        assert!(m.content.chars().count() <= MESSAGE_LIMIT);
        assert!(!m.content.ends_with("[1") && !m.content.starts_with("2]"), "{i}");
        assert_eq!(m.embeds.is_empty(), i + 1 != messages.len(), "embeds only on the last message");
    }
    let markers: usize = messages.iter().map(|m| m.content.matches("[12]").count()).sum();
    assert_eq!(markers, 80, "no marker lost or cut");
}

#[test]
fn notices_come_first_and_empty_answers_still_say_something() {
    let mut a = answer("", vec![citation(1, "passage")]);
    a.notice = Some(Notice::ModelUnreachable);
    let messages = answer_messages(&a);
    assert_eq!(messages[0].content, Notice::ModelUnreachable.user_message());
    assert_eq!(messages[0].embeds[0].fields.len(), 1);
    assert_eq!(answer_messages(&answer(" ", vec![]))[0].content, "I have no answer to that.");
}

#[test]
fn embeds_respect_every_limit_with_many_long_sources() {
    let mut citations: Vec<Citation> = (1..=40).map(|n| citation(n, &"long snippet text ".repeat(100))).collect();
    citations[0].title = "T".repeat(400);
    let embeds = sources_embeds(&citations);
    let total: usize = embeds.iter().map(EmbedSpec::chars).sum();
    assert!(total <= EMBED_TOTAL_LIMIT, "{total}");
    assert!(embeds.len() <= EMBEDS_PER_MESSAGE);
    for embed in &embeds {
        assert!(embed.fields.len() <= FIELDS_PER_EMBED);
        assert!(embed.title.chars().count() <= EMBED_TITLE_LIMIT);
        for (name, value) in &embed.fields {
            assert!(name.chars().count() <= FIELD_NAME_LIMIT && value.chars().count() <= FIELD_VALUE_LIMIT);
            assert!(!value.is_empty());
        }
    }
    assert_eq!(embeds[0].fields[0].0.chars().count(), FIELD_NAME_LIMIT, "a long title is cut");
    let shown: usize = embeds.iter().map(|e| e.fields.len()).sum();
    let footer = embeds.last().unwrap().footer.clone().unwrap_or_default();
    assert_eq!(shown + footer.split(' ').next().unwrap().parse::<usize>().unwrap_or(0), 40, "{footer}");
}

#[test]
fn snippets_are_truncated_but_kept_when_they_fit() {
    let embeds = sources_embeds(&[citation(1, &"word ".repeat(200))]);
    let value = &embeds[0].fields[0].1;
    assert!(value.ends_with('…'));
    assert!(value.chars().count() < 400);
}

#[test]
fn the_builder_carries_the_fields() {
    let spec =
        EmbedSpec { title: "Sources".into(), fields: vec![("[1] A".into(), "b".into())], footer: Some("f".into()) };
    let json = serde_json::to_value(spec.to_builder()).unwrap();
    assert_eq!(json["title"], "Sources");
    assert_eq!(json["fields"][0]["name"], "[1] A");
    assert_eq!(json["fields"][0]["inline"], false);
    assert_eq!(json["footer"]["text"], "f");
}

#[test]
fn progress_texts() {
    assert_eq!(progress_text(&Progress::Queued(2)), "Waiting for the model: position 2");
    assert_eq!(progress_text(&Progress::Loading), "Loading the model…");
    assert_eq!(progress_text(&Progress::Writing("Hold the".into())), "Hold the …");
    let long = progress_text(&Progress::Writing("a".repeat(5000) + " end"));
    assert!(long.chars().count() <= MESSAGE_LIMIT && long.ends_with("end …"), "the latest text shows");
}

#[test]
fn truncation_counts_characters() {
    assert_eq!(truncate("héllo wörld", 7), "héllo…");
    assert_eq!(truncate("short", 7), "short");
}

#[test]
fn the_support_check_marking_reaches_the_message() {
    let mut matched = citation(2, "Magma rises through the crust.");
    matched.cited_by = footnote_adapter::CitedBy::Footnote;
    matched.support = footnote_adapter::Support::Supported;
    let mut a = answer(
        &format!(
            "Penguins eat krill [1]. A volcano erupts when magma rises [2{}]. Penguins fly {}.",
            footnote_adapter::ATTRIBUTED_MARK,
            footnote_adapter::NOT_FOUND_TAG
        ),
        vec![citation(1, "Penguins eat krill."), matched],
    );
    a.cut_short = true;
    let messages = answer_messages(&a);
    let content = &messages[0].content;
    assert!(content.contains("magma rises [2†]"), "{content}");
    assert!(content.contains("Penguins fly [not found in the sources]."), "{content}");
    assert!(content.contains(footnote_adapter::render::ATTRIBUTED_NOTE), "{content}");
    assert!(content.contains(footnote_adapter::render::CUT_SHORT_NOTE), "{content}");
    let fields = &messages[0].embeds[0].fields;
    assert_eq!(fields[0].0, "[1] Manual 1");
    assert_eq!(fields[1].0, "[2] Manual 2 (matched by Footnote)");
}

#[test]
fn the_notice_of_an_answer_without_the_model_is_shown_once() {
    for (answer, notice) in footnote_adapter::testing::answers_without_the_model() {
        let text: String = answer_messages(&answer).iter().map(|m| m.content.as_str()).collect();
        assert_eq!(text.matches(notice.user_message()).count(), 1, "{text}");
    }
}
