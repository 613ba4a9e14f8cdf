//! Emails (.eml, `message/rfc822`) read with mail-parser. The body (text/plain preferred, else
//! the HTML converted) and every attachment are read; attachments go through the same sniffing
//! and extractors as uploads, forwarded messages (`message/rfc822` parts, or attached `.eml`
//! files) are read recursively up to [`MAX_DEPTH`] levels.
//!
//! Every section carries the subject and date (RFC 3339) of the message its text comes from,
//! and, when it comes from an attachment, `locator.attachment` names it (`a.eml › b.pdf` for an
//! attachment of a forwarded message). The attachment count and the unpacked size are limited
//! for the whole email, nested parts included. Pictures are skipped without counting (logos
//! and inline images are not content); other attachments that cannot be read are skipped with
//! a log line, while limits and timeouts refuse the whole email.

use footnote_adapter::{IngestError, Locator};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::normalize::{cap, normalize};
use super::{Ctx, Parsed, Section, extract_any, html};

/// Deepest nesting of forwarded messages read; deeper ones are skipped.
pub(super) const MAX_DEPTH: usize = 5;

/// An email; `depth` counts the emails that enclose this one.
pub(super) fn extract(ctx: &Ctx, bytes: &[u8], depth: usize) -> Result<Parsed, IngestError> {
    if depth > MAX_DEPTH {
        return Err(IngestError::Unreadable("its forwarded messages are nested too deeply".into()));
    }
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| IngestError::Unreadable("it is not an email I can read".into()))?;
    let title = message.subject().map(cap);
    let sections = read_message(ctx, &message, depth)?;
    Ok(Parsed { title, sections, pages: None })
}

fn read_message(ctx: &Ctx, message: &Message<'_>, depth: usize) -> Result<Vec<Section>, IngestError> {
    let subject = message.subject().map(cap).filter(|s| !s.is_empty());
    let date = message.date().filter(|d| d.is_valid()).map(|d| d.to_rfc3339());
    let stamp = |mut locator: Locator| {
        if locator.subject.is_none() {
            locator.subject.clone_from(&subject);
            locator.date.clone_from(&date);
        }
        locator
    };

    let mut sections = Vec::new();
    let body = body_text(message)?;
    ctx.unpack(body.len() as u64)?;
    if !body.is_empty() {
        sections.push(Section { text: body, locator: stamp(Locator::default()) });
    }

    for (n, &id) in message.attachments.iter().enumerate() {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let mime = part.content_type().map(|ct| match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        });
        if mime.as_deref().is_some_and(|m| m.starts_with("image/")) {
            continue;
        }
        let name = attachment_name(part.attachment_name(), &part.body, n);
        let found = match &part.body {
            PartType::Message(nested) => {
                if depth + 1 > MAX_DEPTH {
                    tracing::warn!(attachment = name, "forwarded messages nested too deep; skipped");
                    continue;
                }
                ctx.attachment()?;
                read_message(ctx, nested, depth + 1)
            }
            PartType::Text(text) | PartType::Html(text) => {
                ctx.attachment()?;
                read_file(ctx, &name, mime.as_deref(), text.as_bytes(), depth)
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                ctx.attachment()?;
                read_file(ctx, &name, mime.as_deref(), bytes, depth)
            }
            PartType::Multipart(_) => continue,
        };
        match found {
            Ok(found) => sections.extend(found.into_iter().map(|mut section| {
                section.locator.attachment = Some(match section.locator.attachment.take() {
                    Some(inner) => cap(&format!("{name} › {inner}")),
                    None => name.clone(),
                });
                section.locator = stamp(section.locator);
                section
            })),
            Err(error @ (IngestError::Timeout | IngestError::TooLarge(_) | IngestError::Internal)) => {
                return Err(error);
            }
            Err(error) => tracing::info!(attachment = name, %error, "email attachment skipped"),
        }
    }
    Ok(sections)
}

/// Reads an attached file with the ordinary extractors.
fn read_file(
    ctx: &Ctx,
    name: &str,
    mime: Option<&str>,
    bytes: &[u8],
    depth: usize,
) -> Result<Vec<Section>, IngestError> {
    ctx.unpack(bytes.len() as u64)?;
    extract_any(ctx, name, mime, bytes, depth + 1).map(|doc| doc.sections)
}

/// The message text: its text/plain parts, else its HTML parts converted.
fn body_text(message: &Message<'_>) -> Result<String, IngestError> {
    let ids = if message.text_body.is_empty() { &message.html_body } else { &message.text_body };
    let mut parts = Vec::new();
    for &id in ids {
        let text = match message.parts.get(id as usize).map(|p| &p.body) {
            Some(PartType::Text(text)) => normalize(text, false),
            Some(PartType::Html(html)) => normalize(&html::to_text(html)?, false),
            _ => continue,
        };
        if !text.is_empty() {
            parts.push(text);
        }
    }
    Ok(parts.join("\n\n"))
}

/// The attachment's file name, else the forwarded message's subject, else "attachment N".
fn attachment_name(declared: Option<&str>, body: &PartType<'_>, n: usize) -> String {
    let declared = declared.map(cap).filter(|s| !s.is_empty());
    let subject = match body {
        PartType::Message(nested) => nested.subject().map(cap).filter(|s| !s.is_empty()),
        _ => None,
    };
    declared
        .or(subject)
        // Names carry no folders.
        .map(|name| name.rsplit(['/', '\\']).next().unwrap_or_default().trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("attachment {}", n + 1))
}
