//! Unit tests of `convert`: hand-written RFC 5322 samples → actions.

use std::path::PathBuf;

use secrecy::SecretString;

use super::*;
use crate::config::{CollectionMapping, Security};

fn config() -> Config {
    Config {
        imap_host: "127.0.0.1".into(),
        imap_port: None,
        imap_security: Security::Plain,
        username: "bot@bot.example".into(),
        password: SecretString::from("x"),
        mailbox: "INBOX".into(),
        processed_folder: None,
        smtp_host: "127.0.0.1".into(),
        smtp_port: None,
        smtp_security: Security::Plain,
        smtp_username: None,
        smtp_password: None,
        allow_plaintext: false,
        from_address: "Footnote <bot@bot.example>".into(),
        ask_address: Some("bot@bot.example".into()),
        ask_subject_prefix: Some("[ask]".into()),
        ingest_address: Some("bot+ingest@bot.example".into()),
        allowed_senders: vec!["ann@example.org".into(), "@team.example".into()],
        require_dkim_or_spf: false,
        authserv_id: None,
        collection: CollectionMapping::Sender,
        max_message_bytes: 1_000_000,
        max_attachments: 3,
        max_attachment_bytes: 10_000,
        poll_interval_secs: 5,
        state_path: PathBuf::from("/tmp/unused"),
    }
}

fn no_threads(_: &str, _: &str) -> Option<String> {
    None
}

fn mail(headers: &str, body: &str) -> Vec<u8> {
    format!("{}\r\n\r\n{}", headers.trim().replace('\n', "\r\n"), body.replace('\n', "\r\n")).into_bytes()
}

fn run(raw: &[u8]) -> Classified {
    classify(raw, None, &config(), &no_threads)
}

const PDF_B64: &str =
    "JVBERi0xLjQKJcTl8uXrCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCnRyYWlsZXIKPDwvUm9vdCAxIDAgUj4+CiUlRU9G";

fn rfc822_forward(attachments: usize) -> Vec<u8> {
    let pdfs: String = (0..attachments)
        .map(|i| {
            format!(
                "--inner\nContent-Type: application/pdf; name=\"r{i}.pdf\"\nContent-Disposition: attachment; filename=\"r{i}.pdf\"\nContent-Transfer-Encoding: base64\n\n{PDF_B64}\n"
            )
        })
        .collect();
    let inner = format!(
        "From: Carl <carl@vendor.example>\nTo: ann@example.org\nSubject: Q3 report\nDate: Tue, 1 Oct 2024 09:00:00 +0000\nMessage-ID: <orig-1@vendor.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"inner\"\n\n--inner\nContent-Type: text/plain\n\nThe report is attached.\n{pdfs}--inner--\n"
    );
    mail(
        "From: Ann <ann@example.org>\nTo: bot@bot.example\nSubject: Fwd: Q3 report\nMessage-ID: <fwd-1@example.org>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"outer\"",
        &format!(
            "--outer\nContent-Type: text/plain\n\nFor the archive.\n--outer\nContent-Type: message/rfc822\nContent-Disposition: attachment\n\n{inner}--outer--\n"
        ),
    )
}

#[test]
fn a_message_rfc822_attachment_is_ingested_as_its_own_eml() {
    let classified = run(&rfc822_forward(1));
    let Action::Ingest(uploads) = classified.action else { panic!("{:?}", classified.action) };
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert!(upload.file_name.starts_with("Q3 report [") && upload.file_name.ends_with("].eml"), "{}", upload.file_name);
    assert_eq!(upload.origin.sender.as_deref(), Some("carl@vendor.example"));
    assert_eq!(upload.origin.link.as_deref(), Some("mid:orig-1@vendor.example"));
    assert_eq!(upload.origin.sent_at.as_deref(), Some("2024-10-01T09:00:00Z"));
    let inner = MessageParser::default().parse(&upload.bytes).unwrap();
    assert_eq!(inner.subject(), Some("Q3 report"));
    assert_eq!(inner.attachment(0).and_then(|a| a.attachment_name()), Some("r0.pdf"));
    assert_eq!(classified.inbound.unwrap().sender, "ann@example.org");
}

#[test]
fn an_inline_forward_is_ingested_whole() {
    let raw = mail(
        "From: ann@example.org\nTo: bot@bot.example\nSubject: Fwd: Minutes\nMessage-ID: <inline@example.org>",
        "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@x.example>\nSubject: Minutes\n\nWe agreed on 42.\n",
    );
    let Action::Ingest(uploads) = run(&raw).action else { panic!() };
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, raw);
    assert!(uploads[0].file_name.starts_with("Minutes ["));
}

#[test]
fn plus_addressed_ingest_mail_is_ingested_even_via_delivered_to() {
    let to = mail(
        "From: ann@example.org\nTo: bot+ingest@bot.example\nSubject: Handbook\nMessage-ID: <h@example.org>",
        "text",
    );
    assert!(matches!(run(&to).action, Action::Ingest(u) if u.len() == 1));
    let redirected = mail(
        "Delivered-To: bot+ingest@bot.example\nFrom: ann@example.org\nTo: team@example.org\nSubject: Handbook\nMessage-ID: <h2@example.org>",
        "text",
    );
    assert!(matches!(run(&redirected).action, Action::Ingest(_)));
}

#[test]
fn automatic_mail_is_never_answered() {
    let cases = [
        ("Auto-Submitted: auto-replied", "Auto-Submitted"),
        ("Precedence: bulk", "Precedence"),
        ("List-Id: <team.lists.example>", "List-Id"),
        ("List-Unsubscribe: <mailto:leave@lists.example>", "List-Unsubscribe"),
        ("Return-Path: <>", "Return-Path"),
    ];
    for (header, signal) in cases {
        let raw = mail(
            &format!("{header}\nFrom: ann@example.org\nTo: bot@bot.example\nSubject: Out of office\nMessage-ID: <a@x>"),
            "Away.",
        );
        match run(&raw).action {
            Action::Ignore(IgnoreReason::Automatic(s)) => {
                assert!(s.contains(signal), "{s} for {header}");
            }
            other => panic!("{header}: {other:?}"),
        }
    }
    let daemon = mail("From: MAILER-DAEMON@team.example\nTo: bot@bot.example\nSubject: Undelivered", "bounce");
    assert!(matches!(run(&daemon).action, Action::Ignore(IgnoreReason::Automatic(_))));
    let explicit_no = mail(
        "Auto-Submitted: no\nFrom: ann@example.org\nTo: bot@bot.example\nSubject: hi\nMessage-ID: <n@x>",
        "What is 42?",
    );
    assert!(matches!(run(&explicit_no).action, Action::Ask { .. }));
}

#[test]
fn strangers_and_the_bot_itself_are_ignored() {
    let stranger = mail("From: eve@evil.example\nTo: bot@bot.example\nSubject: hi\nMessage-ID: <e@x>", "What is 42?");
    assert_eq!(run(&stranger).action, Action::Ignore(IgnoreReason::NotAllowed));
    let own = mail("From: bot+ingest@bot.example\nTo: bot@bot.example\nSubject: Re: hi", "loop");
    assert_eq!(run(&own).action, Action::Ignore(IgnoreReason::OwnMail));
    let domain =
        mail("From: Zed <ZED@Team.Example>\nTo: bot@bot.example\nSubject: hi\nMessage-ID: <z@x>", "What is 42?");
    let classified = run(&domain);
    assert!(matches!(classified.action, Action::Ask { .. }));
    assert_eq!(classified.inbound.unwrap().sender, "zed@team.example");
}

#[test]
fn a_question_by_address_or_prefix() {
    let by_address = mail(
        "From: ann@example.org\nTo: bot@bot.example\nSubject: Budget\nMessage-ID: <q1@example.org>",
        "What is the budget for 2025?\n\n-- \nAnn\n",
    );
    let classified = run(&by_address);
    assert_eq!(classified.action, Action::Ask { question: "What is the budget for 2025?".into(), follow_up: false });
    let inbound = classified.inbound.unwrap();
    assert_eq!(inbound.thread_root, "q1@example.org");
    assert!(inbound.references.is_empty());

    let by_prefix =
        mail("From: ann@example.org\nTo: someone@example.org\nSubject: [ASK] Who signed it?\nMessage-ID: <q2@x>", "");
    assert_eq!(run(&by_prefix).action, Action::Ask { question: "Who signed it?".into(), follow_up: false });

    let nothing = mail("From: ann@example.org\nTo: someone@example.org\nSubject: hello\nMessage-ID: <q3@x>", "hi");
    assert_eq!(run(&nothing).action, Action::Ignore(IgnoreReason::NothingToDo));
    let empty = mail("From: ann@example.org\nTo: bot@bot.example\nSubject: \nMessage-ID: <q4@x>", "\n");
    assert_eq!(run(&empty).action, Action::Refuse(Refusal::EmptyQuestion));
}

#[test]
fn a_reply_to_the_bot_is_a_follow_up_in_the_same_thread() {
    let raw = mail(
        "From: ann@example.org\nTo: Footnote <bot@bot.example>\nSubject: Re: Budget\nMessage-ID: <q2@example.org>\nIn-Reply-To: <footnote.answer.1@bot.example>\nReferences: <q1@example.org> <footnote.answer.1@bot.example>",
        "And for 2026?\n\nOn Mon, 6 Jan 2025 at 10:00, Footnote <bot@bot.example> wrote:\n> It is 42 [1].\n",
    );
    let known = |sender: &str, id: &str| {
        (sender == "ann@example.org" && id == "footnote.answer.1@bot.example").then(|| "q1@example.org".to_owned())
    };
    let classified = classify(&raw, None, &config(), &known);
    assert_eq!(classified.action, Action::Ask { question: "And for 2026?".into(), follow_up: true });
    let inbound = classified.inbound.unwrap();
    assert_eq!(inbound.thread_root, "q1@example.org");
    assert_eq!(inbound.references, ["q1@example.org", "footnote.answer.1@bot.example"]);
    // Without the bot in the thread, the root is still the first reference.
    let unknown = run(&raw);
    assert_eq!(unknown.inbound.unwrap().thread_root, "q1@example.org");
}

#[test]
fn limits_are_refused_politely() {
    let too_many = run(&rfc822_forward(3));
    assert_eq!(too_many.action, Action::Refuse(Refusal::TooManyAttachments { count: 4, limit: 3 }));
    let mut small = config();
    small.max_attachment_bytes = 10;
    let too_big = classify(&rfc822_forward(1), None, &small, &no_threads);
    assert!(matches!(&too_big.action, Action::Refuse(Refusal::AttachmentTooLarge { name, .. }) if name == "r0.pdf"));
    let header_only = mail("From: ann@example.org\nTo: bot@bot.example\nSubject: big\nMessage-ID: <b@x>", "");
    let oversize = classify(&header_only, Some(5_000_000), &config(), &no_threads);
    let Action::Refuse(refusal) = oversize.action else { panic!() };
    assert!(refusal.user_message().contains("5.0 MB"), "{}", refusal.user_message());
    // A stranger's big mail gets no reply at all.
    let stranger = mail("From: eve@evil.example\nTo: bot@bot.example\nSubject: big", "");
    assert_eq!(
        classify(&stranger, Some(5_000_000), &config(), &no_threads).action,
        Action::Ignore(IgnoreReason::NotAllowed)
    );
}

#[test]
fn only_our_servers_aligned_results_count() {
    let mut strict = config();
    strict.require_dkim_or_spf = true;
    strict.authserv_id = Some("mx.bot.example".into());
    let headers = |results: &str, from: &str| {
        mail(&format!("{results}From: {from}\nTo: bot@bot.example\nSubject: q\nMessage-ID: <d@x>"), "Why?")
    };
    let ours = |r: &str| format!("Authentication-Results: mx.bot.example;\n {r}\n");
    let action = |raw: &[u8]| classify(raw, None, &strict, &no_threads).action;
    let refused = Action::Ignore(IgnoreReason::NotAuthenticated);

    for pass in [
        "dkim=pass (2048-bit key) header.d=example.org header.b=abc; spf=fail",
        "spf=pass smtp.mailfrom=ann@example.org",
        "dmarc=pass (p=reject) header.from=example.org",
        "dkim = pass header.d=mail.example.org",
        "dkim=pass header.i=@example.org",
    ] {
        assert!(matches!(action(&headers(&ours(pass), "ann@example.org")), Action::Ask { .. }), "{pass}");
    }
    for fail in [
        "dkim=fail header.d=example.org; spf=softfail smtp.mailfrom=example.org",
        // A pass for the sender's own domain does not make them ann@example.org.
        "dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=eve@evil.example",
        "dkim=pass header.d=org",
        "dkim=pass",
        "dkim=pass (header.d=example.org) header.d=evil.example",
    ] {
        assert_eq!(action(&headers(&ours(fail), "ann@example.org")), refused, "{fail}");
    }
    // Written by the sender: another authserv-id, below ours or on its own.
    let forged = "Authentication-Results: mx.evil.example; dkim=pass header.d=example.org\n";
    assert_eq!(action(&headers(forged, "ann@example.org")), refused);
    let both = format!("{}{forged}", ours("dkim=fail header.d=example.org"));
    assert_eq!(action(&headers(&both, "ann@example.org")), refused, "ours says fail; the forged one is ignored");
    let after = format!("{forged}{}", ours("spf=pass smtp.mailfrom=example.org"));
    assert!(matches!(action(&headers(&after, "ann@example.org")), Action::Ask { .. }));
    assert_eq!(action(&headers("", "ann@example.org")), refused, "no results at all");
    // Off: From: is trusted as written.
    assert!(matches!(
        classify(&headers(forged, "ann@example.org"), None, &config(), &no_threads).action,
        Action::Ask { .. }
    ));
}

#[test]
fn the_safe_default_needs_the_servers_name_and_warns_when_off() {
    let mut c = config();
    c.require_dkim_or_spf = true;
    assert!(c.validate().unwrap_err().contains("authserv_id"));
    c.authserv_id = Some("mx.bot.example".into());
    c.validate().unwrap();
    assert!(c.sender_trust_warning().is_none());
    c.require_dkim_or_spf = false;
    let warning = c.sender_trust_warning().expect("ann@example.org is of another domain");
    assert!(warning.contains("ann@example.org") && warning.contains("@team.example"), "{warning}");
    c.allowed_senders = vec!["@bot.example".into(), "x@BOT.example".into()];
    assert!(c.sender_trust_warning().is_none(), "only the bot's own domain");
    let parsed: Config = serde_json::from_value(serde_json::json!({
        "imap_host": "h", "username": "u", "password": "p", "smtp_host": "h", "from_address": "b@bot.example",
        "allowed_senders": ["a@x.example"], "state_path": "s.json", "ask_address": "b@bot.example"
    }))
    .unwrap();
    assert!(parsed.require_dkim_or_spf, "on unless turned off");
}

#[test]
fn address_matching_understands_plus_addressing() {
    assert!(matches_address("bot+ingest@bot.example", "bot+ingest@bot.example"));
    assert!(matches_address("BOT@Bot.Example", "bot@bot.example"));
    assert!(matches_address("bot+x@bot.example", "bot@bot.example"));
    assert!(!matches_address("bot@bot.example", "bot+ingest@bot.example"));
    assert!(!matches_address("bot@other.example", "bot@bot.example"));
    assert!(is_allowed("x@team.example", &["@TEAM.example".into()]));
    assert!(!is_allowed("x@evilteam.example", &["@team.example".into()]));
}

#[test]
fn garbage_is_ignored() {
    assert_eq!(run(b"").action, Action::Ignore(IgnoreReason::NoSender));
    assert!(run(b"Subject: no sender\r\n\r\nhi").inbound.is_none());
}
