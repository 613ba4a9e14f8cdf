//! Tests of the pure rendering: answer → plain and HTML bodies, limits, and the event contents
//! (thread relation with reply fallback, `m.replace` edits) in the spec's shapes.

use std::collections::BTreeSet;

use footnote_adapter::progress::Progress;
use footnote_adapter::{Answer, Citation, Locator, Notice, Timings};
use matrix_sdk::ruma::events::room::message::OriginalSyncRoomMessageEvent;
use serde_json::{Value, json};

use super::*;
use crate::stream::{in_thread, notice, replacement};

fn citation(n: u32, title: &str, locator: Locator, snippet: &str) -> Citation {
    Citation {
        n,
        document_id: format!("doc-{n}"),
        title: title.into(),
        locator,
        snippet: snippet.into(),
        score: 0.5,
        support: footnote_adapter::Support::Unchecked,
        support_score: None,
        cited_by: footnote_adapter::CitedBy::Model,
    }
}

fn answer(text: &str) -> Answer {
    Answer {
        text: text.into(),
        citations: vec![
            citation(
                1,
                "Router <manual>",
                Locator { page: Some(12), heading_path: vec!["Reset".into()], ..Locator::default() },
                "Press and hold the reset button for 10 seconds.",
            ),
            citation(
                2,
                "notes.md",
                Locator { link: Some("https://matrix.to/#/!r:x/$e:x".into()), ..Locator::default() },
                "The admin PIN is on the sticker.",
            ),
        ],
        notice: None,
        model: "llama3.2".into(),
        timings: Timings::default(),
        sentences: Vec::new(),
        cut_short: false,
    }
}

/// The `[n]` markers in a text.
fn markers(text: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find(']')
            && let Ok(n) = rest[..close].parse()
        {
            out.insert(n);
        }
    }
    out
}

#[test]
fn an_answer_is_text_with_markers_then_numbered_sources_in_both_bodies() {
    let bodies = answer_bodies(&answer("Hold the reset button [1]. The PIN is on the sticker [2]."));
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(
        body.plain,
        "Hold the reset button [1]. The PIN is on the sticker [2].\n\nSources:\n\
         [1] Router <manual> — p. 12 · Reset: “Press and hold the reset button for 10 seconds.”\n\
         [2] notes.md: “The admin PIN is on the sticker.”"
    );
    assert_eq!(
        body.html,
        "<p>Hold the reset button [1]. The PIN is on the sticker [2].</p><p><b>Sources:</b></p>\
         <p>[1] <b>Router &lt;manual&gt;</b> — p. 12 · Reset<br><i>“Press and hold the reset button for 10 seconds.”</i></p>\
         <p>[2] <b>notes.md</b><br><i>“The admin PIN is on the sticker.”</i> \
         <a href=\"https://matrix.to/#/!r:x/$e:x\">original message</a></p>"
    );
    let (text, sources) = body.plain.split_once("Sources:").unwrap();
    assert_eq!(markers(text), markers(sources));
}

#[test]
fn a_notice_comes_first_and_an_empty_answer_says_so() {
    let mut a = answer("");
    a.notice = Some(Notice::Uncited);
    a.citations.truncate(1);
    let body = &answer_bodies(&a)[0];
    assert!(body.plain.starts_with(Notice::Uncited.user_message()), "{}", body.plain);
    assert!(body.html.starts_with("<p><i>"));
    let none = Answer { citations: Vec::new(), ..answer("") };
    assert_eq!(answer_bodies(&none)[0].plain, "I have no answer to that.");
}

#[test]
fn a_long_answer_is_split_under_the_event_limit_without_cutting_markers() {
    let paragraph = format!("{} [1]", "Hold the réset button & wait <patiently>. ".repeat(40));
    let text = vec![paragraph; 40].join("\n\n");
    let bodies = answer_bodies(&answer(&text));
    assert!(bodies.len() > 1, "{} parts", bodies.len());
    for body in &bodies {
        assert!(body.len() <= PART_BUDGET, "{} bytes", body.len());
        // An edit carries the content twice; the whole event must stay under 65,536 bytes.
        let edit = replacement(notice(body), "$x:example.org".try_into().unwrap());
        assert!(serde_json::to_vec(&edit).unwrap().len() < 65_536 - 1_000);
        assert!(!body.plain.contains("[1\n") && !body.plain.ends_with("[1"));
    }
    let last = bodies.last().unwrap();
    assert!(last.plain.contains("Sources:\n[1] Router <manual>"), "the sources close the answer");
    let all: String = bodies.iter().map(|b| b.plain.as_str()).collect();
    assert_eq!(all.matches("[1]").count(), 41, "every marker and the source line survive");
}

#[test]
fn progress_texts_and_their_removal_from_history() {
    assert_eq!(progress_text(&Progress::Queued(2)), "Waiting for the model: position 2");
    assert_eq!(progress_text(&Progress::Loading), "Loading the model…");
    assert_eq!(progress_text(&Progress::Writing("  ".into())), "Writing…");
    assert_eq!(progress_text(&Progress::Writing("Hold the [1]".into())), "Hold the [1] …");
    let long = progress_text(&Progress::Writing("x".repeat(TEXT_PIECE_CHARS * 2)));
    assert!(long.chars().count() <= TEXT_PIECE_CHARS + 3 && long.starts_with('…'));
    for placeholder in [PLACEHOLDER, "Waiting for the model: position 3", "Loading the model…", "Writing…"] {
        assert_eq!(strip_progress(placeholder), None, "{placeholder}");
    }
    assert_eq!(strip_progress("Hold the [1] …").as_deref(), Some("Hold the [1]"));
    assert_eq!(strip_progress("Done [1].").as_deref(), Some("Done [1]."));
}

fn asking_event(relates_to: Option<Value>) -> OriginalSyncRoomMessageEvent {
    let mut content = json!({"body": "!ask How do I reset the router?", "msgtype": "m.text"});
    if let Some(r) = relates_to {
        content["m.relates_to"] = r;
    }
    serde_json::from_value(json!({
        "content": content,
        "event_id": "$ask:example.org",
        "origin_server_ts": 1_432_735_824_653u64,
        "sender": "@example:example.org",
        "type": "m.room.message"
    }))
    .unwrap()
}

#[test]
fn a_reply_starts_a_thread_on_the_asking_message_with_the_reply_fallback() {
    let body = Body { plain: "Hold [1].".into(), html: "<p>Hold [1].</p>".into() };
    let content = serde_json::to_value(in_thread(notice(&body), &asking_event(None))).unwrap();
    assert_eq!(content["msgtype"], "m.notice");
    assert_eq!(content["body"], "Hold [1].");
    assert_eq!(content["format"], "org.matrix.custom.html");
    assert_eq!(content["formatted_body"], "<p>Hold [1].</p>");
    assert_eq!(
        content["m.relates_to"],
        json!({"rel_type": "m.thread", "event_id": "$ask:example.org", "is_falling_back": true,
               "m.in_reply_to": {"event_id": "$ask:example.org"}})
    );
}

#[test]
fn a_reply_inside_a_thread_continues_that_thread() {
    let in_thread_already = asking_event(Some(json!({
        "rel_type": "m.thread", "event_id": "$root:example.org", "is_falling_back": true,
        "m.in_reply_to": {"event_id": "$answer:example.org"}
    })));
    let content = serde_json::to_value(in_thread(notice(&Body::default()), &in_thread_already)).unwrap();
    assert_eq!(content["m.relates_to"]["event_id"], "$root:example.org");
    assert_eq!(content["m.relates_to"]["m.in_reply_to"]["event_id"], "$ask:example.org");
}

#[test]
fn an_edit_replaces_the_whole_content_with_a_fallback() {
    let body = Body { plain: "Final [1].".into(), html: "<p>Final [1].</p>".into() };
    let content = serde_json::to_value(replacement(notice(&body), "$answer:example.org".try_into().unwrap())).unwrap();
    assert_eq!(content["m.relates_to"], json!({"rel_type": "m.replace", "event_id": "$answer:example.org"}));
    assert_eq!(content["body"], "* Final [1].");
    assert_eq!(content["m.new_content"]["body"], "Final [1].");
    assert_eq!(content["m.new_content"]["formatted_body"], "<p>Final [1].</p>");
    assert_eq!(content["m.new_content"]["msgtype"], "m.notice");
}

#[test]
fn short_texts_are_escaped_paragraphs() {
    let bodies = text_bodies("Added “a<b>.pdf” (3 chunks).\nSecond line\n\nNext");
    assert_eq!(bodies[0].html, "<p>Added “a&lt;b&gt;.pdf” (3 chunks).<br>Second line</p><p>Next</p>");
    assert!(help_text("?").contains("?ask") && help_text("?").contains("?ingest"));
}

#[test]
fn the_notice_of_an_answer_without_the_model_is_shown_once() {
    for (answer, notice) in footnote_adapter::testing::answers_without_the_model() {
        let bodies = answer_bodies(&answer);
        let plain: String = bodies.iter().map(|b| b.plain.as_str()).collect();
        let html: String = bodies.iter().map(|b| b.html.as_str()).collect();
        assert_eq!(plain.matches(notice.user_message()).count(), 1, "{plain}");
        assert_eq!(html.matches(&escape(notice.user_message())).count(), 1, "{html}");
    }
}
