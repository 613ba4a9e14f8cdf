//! The committed binary fixtures and `tests/fixtures/mail.eml` come from code: this test checks
//! that the files still match their generator, and rewrites them when run with
//! `FOOTNOTE_REGENERATE_FIXTURES=1` (so the bytes in the repository can be traced back to code).

use super::build::{PdfSpec, base64, pdf, simple_pdf};

/// Compares (or, on request, writes) the generated files of `tests/fixtures/broken/` and
/// `tests/fixtures/mail.eml`.
#[test]
fn generated_fixtures_match_their_generator() {
    let dir = format!("{}/tests/fixtures/broken", env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var_os("FOOTNOTE_REGENERATE_FIXTURES").is_some();
    let whole = simple_pdf(&[&["Page one of a file cut short."], &["Page two."]], Some("Cut"));
    let write = |name: &str, bytes: &[u8]| {
        let path = format!("{dir}/{name}");
        if regenerate {
            std::fs::write(&path, bytes).expect("write fixture");
        } else {
            let committed = std::fs::read(&path).expect("read fixture");
            assert!(committed == bytes, "{path} differs from its generator: run with FOOTNOTE_REGENERATE_FIXTURES=1");
        }
    };
    write("truncated.pdf", &whole[..whole.len() / 3]);
    // Encryption salts are random: this one is only written, never compared.
    if regenerate {
        let encrypted = pdf(&PdfSpec { pages: vec![vec!["Secret."]], password: Some("pw"), ..PdfSpec::default() });
        std::fs::write(format!("{dir}/encrypted.pdf"), encrypted).expect("write fixture");
    }
    write("scanned.pdf", &simple_pdf(&[&[], &[]], None));

    let report = simple_pdf(&[&["Revenue grew by 12 percent."], &["Costs fell by 3 percent."]], Some("Q2 report"));
    let mail = MAIL_TEMPLATE.replace("{REPORT_PDF}", &base64(&report)).replace('\n', "\r\n");
    write("../mail.eml", mail.as_bytes());
}

/// `tests/fixtures/mail.eml`: a text + HTML body, a PDF and a text attachment, an inline image,
/// and a forwarded message with its own Markdown attachment.
const MAIL_TEMPLATE: &str = r#"From: Ana Lima <ana@example.org>
To: team@example.org
Subject: Quarterly report
Date: Tue, 14 May 2024 09:30:00 +0200
Message-ID: <q2-report@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Hi team, the quarterly report is attached. Carla's budget mail is forwarded below.
--alt
Content-Type: text/html; charset=utf-8

<p>Hi team, the quarterly report is <b>attached</b>. Carla's budget mail is forwarded below.</p>
--alt--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

{REPORT_PDF}
--outer
Content-Type: text/plain; charset=utf-8; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

The meeting room is booked for Thursday at ten.
--outer
Content-Type: image/png; name="logo.png"
Content-Disposition: inline; filename="logo.png"
Content-Transfer-Encoding: base64

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC
--outer
Content-Type: message/rfc822
Content-Disposition: inline

From: Carla Diaz <carla@example.org>
To: ana@example.org
Subject: Budget numbers
Date: Fri, 10 May 2024 16:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

The budget is 42 thousand euros for the quarter.
--inner
Content-Type: text/markdown; charset=utf-8; name="budget.md"
Content-Disposition: attachment; filename="budget.md"

# Budget

## Travel

Travel is by trains only, no flights.
--inner--

--outer--
"#;
