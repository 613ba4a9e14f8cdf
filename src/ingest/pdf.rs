//! PDF files: one section per page (`locator.page`), read with lopdf and pdf-extract. Pages
//! that make the parser fail or panic are skipped; a PDF where no page can be read, an
//! encrypted PDF or one over `max_pages` is refused.
//!
//! lopdf and pdf-extract decompress streams without a size limit, and a stream may chain
//! filters (`[/FlateDecode /FlateDecode]`) so that a few kilobytes unpack to gigabytes. While
//! the document loads, every stream that text extraction may decode (all but images) is first
//! decoded here through the unpacked-size budget ([`bounded`]); a PDF over the budget is refused
//! before anything decodes it for real.

mod bounded;

use std::panic::{AssertUnwindSafe, catch_unwind};

use footnote_adapter::{IngestError, Locator};
use lopdf::{Document, LoadOptions, Object};

use super::normalize::{cap, normalize};
use super::{Ctx, Parsed, Section};

/// A PDF file.
pub(super) fn extract(ctx: &Ctx, bytes: &[u8]) -> Result<Parsed, IngestError> {
    let options = LoadOptions { filter: Some(bounded::check_stream), ..LoadOptions::default() };
    let budget = bounded::Budget::start(ctx.unpacked_left());
    let loaded = catch_unwind(|| Document::load_mem_with_options(bytes, options));
    let unpacked = budget.finish();
    let doc = match (loaded, unpacked) {
        (_, Err(())) => return Err(ctx.too_much_unpacked()),
        (Ok(Ok(doc)), Ok(used)) => {
            ctx.unpack(used)?;
            doc
        }
        (Ok(Err(error)), _) => {
            tracing::debug!(%error, "lopdf could not load the PDF");
            return Err(IngestError::Unreadable("the PDF is damaged or incomplete".into()));
        }
        (Err(_), _) => {
            return Err(IngestError::Unreadable("the PDF is damaged or incomplete".into()));
        }
    };
    // lopdf opens PDFs encrypted with an empty user password by itself; what stays encrypted
    // needs a password we do not have.
    if doc.is_encrypted() {
        return Err(IngestError::Unreadable("it is password-protected".into()));
    }
    let pages = doc.get_pages();
    let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
    if count == 0 {
        return Err(IngestError::Unreadable("the PDF has no pages (it may be damaged)".into()));
    }
    if count > ctx.limits.max_pages {
        return Err(IngestError::TooLarge(format!(
            "it has {count} pages and the limit is {} pages",
            ctx.limits.max_pages
        )));
    }

    let mut sections = Vec::new();
    let mut failed = 0;
    for &number in pages.keys() {
        match page_text(&doc, number) {
            Some(text) => {
                let text = normalize(&text, false);
                if !text.is_empty() {
                    let locator = Locator { page: Some(number), ..Locator::default() };
                    sections.push(Section { text, locator });
                }
            }
            None => failed += 1,
        }
    }
    if failed == count {
        return Err(IngestError::Unreadable("the PDF is damaged: none of its pages could be read".into()));
    }
    if failed > 0 {
        tracing::warn!(failed, pages = count, "skipped PDF pages that could not be read");
    }
    Ok(Parsed { title: info_title(&doc), sections, pages: Some(count) })
}

/// The text of one page, or `None` when pdf-extract fails or panics on it.
fn page_text(doc: &Document, number: u32) -> Option<String> {
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        let mut text = String::new();
        let mut output = pdf_extract::PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(doc, &mut output, number).map(|()| text)
    }));
    match attempt {
        Ok(Ok(text)) => Some(text),
        Ok(Err(error)) => {
            tracing::debug!(page = number, error = ?error, "pdf-extract failed on a page");
            None
        }
        Err(_) => {
            tracing::debug!(page = number, "pdf-extract panicked on a page");
            None
        }
    }
}

/// `/Title` from the document information dictionary, when it says something.
fn info_title(doc: &Document) -> Option<String> {
    let info = match doc.trailer.get(b"Info").ok()? {
        Object::Reference(id) => doc.get_dictionary(*id).ok()?,
        Object::Dictionary(dict) => dict,
        _ => return None,
    };
    let title = lopdf::decode_text_string(info.get(b"Title").ok()?).ok()?;
    let title = cap(&title);
    let useless = title.is_empty() || title.eq_ignore_ascii_case("untitled");
    (!useless).then_some(title)
}
