//! HTML for the adapters that send it (Matrix's `formatted_body`, email's HTML part, the web
//! page): escaping of any text from a document, a model or a user, and plain text as paragraphs.

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text as HTML paragraphs: blank lines separate paragraphs, single line breaks become `<br>`.
pub fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn blank_lines_make_paragraphs_and_line_breaks_stay() {
        assert_eq!(paragraphs(" one\ntwo \n\n\n\n<3 "), "<p>one<br>two</p><p>&lt;3</p>");
    }
}
