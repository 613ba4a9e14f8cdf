//! Unit tests of [`super`]: answers as Block Kit JSON, within Slack's limits.

use footnote_adapter::progress::Progress;
use footnote_adapter::{Locator, Notice, Timings};
use serde_json::{Value, json};

use super::*;

fn citation(n: u32, title: &str, locator: Locator, snippet: &str) -> Citation {
    Citation {
        n,
        document_id: format!("doc{n}"),
        title: title.into(),
        locator,
        snippet: snippet.into(),
        score: 0.5,
        support: footnote_adapter::Support::Unchecked,
        support_score: None,
        cited_by: footnote_adapter::CitedBy::Model,
    }
}

fn answer(text: &str, citations: Vec<Citation>, notice: Option<Notice>) -> Answer {
    Answer {
        text: text.into(),
        citations,
        notice,
        model: "m".into(),
        timings: Timings::default(),
        sentences: Vec::new(),
        cut_short: false,
    }
}

fn json_of(blocks: &[SlackBlock]) -> Value {
    serde_json::to_value(blocks).expect("blocks serialise")
}

#[test]
fn answer_with_two_sources_is_section_divider_and_context_blocks() {
    let a = answer(
        "Use VLAN 10 [1] & reboot <twice> [2].",
        vec![
            citation(
                1,
                "Router manual",
                Locator { page: Some(3), heading_path: vec!["Setup".into(), "VLANs".into()], ..Default::default() },
                "VLAN 10 is the default.",
            ),
            citation(
                2,
                "notes.txt",
                Locator {
                    link: Some("https://acme.slack.com/archives/C1/p1515449522000016".into()),
                    ..Default::default()
                },
                "  reboot   twice ",
            ),
        ],
        None,
    );
    let messages = answer_messages(&a);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        json_of(&messages[0]),
        json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": "Use VLAN 10 [1] &amp; reboot &lt;twice&gt; [2]."}},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": "*[1]* Router manual — p. 3 · Setup › VLANs\n“VLAN 10 is the default.”"}]},
            {"type": "context", "elements": [{"type": "mrkdwn",
                "text": "*[2]* notes.txt · <https://acme.slack.com/archives/C1/p1515449522000016|original message>\n“reboot twice”"}]},
        ])
    );
    assert_eq!(fallback_text(&a), "Use VLAN 10 [1] &amp; reboot &lt;twice&gt; [2].");
}

#[test]
fn notice_comes_first_as_context() {
    let a = answer("", vec![citation(1, "a", Locator::default(), "s")], Some(Notice::ModelUnreachable));
    let blocks = json_of(&answer_messages(&a)[0]);
    assert_eq!(blocks[0]["type"], "context");
    assert!(blocks[0]["elements"][0]["text"].as_str().is_some_and(|t| t.contains("unreachable")));
    assert_eq!(blocks[1]["type"], "divider");
    assert_eq!(fallback_text(&a), Notice::ModelUnreachable.user_message());
}

#[test]
fn long_text_is_split_into_sections_of_at_most_3000_chars_without_cutting_markers() {
    let sentence = "The gateway answers with sources [12] & keeps <markers> whole. ";
    let a = answer(&sentence.repeat(200), vec![], None);
    let messages = answer_messages(&a);
    let sections: Vec<String> = messages
        .iter()
        .flat_map(|m| json_of(m).as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_owned))
        .collect();
    assert!(sections.len() > 4);
    for s in &sections {
        assert!(s.chars().count() <= TEXT_LIMIT, "{}", s.chars().count());
        assert!(!s.ends_with("[1") && !s.starts_with("2]"));
    }
    let joined = sections.join(" ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    assert_eq!(joined.matches("[12]").count(), 200);
}

#[test]
fn more_than_50_blocks_become_several_messages() {
    let citations = (1..=70).map(|n| citation(n, &format!("doc {n}"), Locator::default(), "x")).collect();
    let messages = answer_messages(&answer("Many [1].", citations, None));
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].len(), MAX_BLOCKS);
    assert_eq!(messages.iter().map(Vec::len).sum::<usize>(), 1 + 1 + 70);
}

#[test]
fn long_snippets_and_hostile_links_are_tamed() {
    let c = citation(
        1,
        "t",
        Locator { link: Some("javascript:alert(1)".into()), ..Default::default() },
        &"word ".repeat(400),
    );
    let text = citation_text(&c);
    assert!(!text.contains("javascript"));
    assert!(text.chars().count() < 400);
    assert!(text.ends_with("…”"));
}

#[test]
fn progress_shows_status_then_the_tail_of_the_text() {
    assert_eq!(progress_text(&Progress::Started), "_Looking through your documents…_");
    assert_eq!(progress_text(&Progress::Queued(3)), "_Waiting for the model: position 3_");
    assert!(progress_text(&Progress::Loading).contains("Loading"));
    let long = "a".repeat(5000) + " end";
    let shown = progress_text(&Progress::Writing(long));
    assert!(shown.chars().count() <= TEXT_LIMIT && shown.ends_with("end …") && shown.starts_with('…'));
}

#[test]
fn document_list_fits_one_message() {
    let docs: Vec<DocumentInfo> = (0..500)
        .map(|i| DocumentInfo {
            id: format!("doc{i}"),
            title: format!("Title {i}"),
            source: "s".into(),
            collection: "c".into(),
            kind: "pdf".into(),
            chunks: 3,
            bytes: 10,
            added_at: "2026-01-01T00:00:00Z".into(),
            pending_embeddings: 0,
        })
        .collect();
    let text = documents_text(&docs);
    assert!(text.chars().count() <= TEXT_LIMIT);
    assert!(text.starts_with("500 documents here:") && text.contains("more."), "{text}");
}

#[test]
fn the_notice_of_an_answer_without_the_model_is_shown_once() {
    for (answer, notice) in footnote_adapter::testing::answers_without_the_model() {
        let blocks = serde_json::to_string(&answer_messages(&answer)).unwrap();
        let sentence = escape(notice.user_message());
        assert_eq!(blocks.matches(&sentence).count(), 1, "{blocks}");
        assert_eq!(fallback_text(&answer), sentence);
    }
}
