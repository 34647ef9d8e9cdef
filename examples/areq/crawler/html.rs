//! Every `href` attribute value of an HTML page, in document order.
//!
//! areq.py uses the regex `href="(.*?)"`: double quotes only, no newline in
//! the value, lower-case only, and it also matches `href="..."` in plain
//! text and in `data-href="..."`. This scan reads tags instead, as a browser
//! would, by hand (no regex crate):
//!
//! * only inside a tag (`<a ...>`, `<link ...>`, any element); comments
//!   (`<!-- ... -->`) and text between tags are skipped;
//! * the attribute name is `href` in any case (`HREF`, `Href`), as a whole
//!   name (`data-href` is another attribute);
//! * any whitespace, newlines included, around the `=`;
//! * the value double-quoted, single-quoted (either may span lines) or
//!   unquoted (up to whitespace or `>`);
//! * the value is trimmed of leading and trailing ASCII whitespace (as a
//!   browser's URL parser does), and the character references `&amp;`,
//!   `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#N;` and `&#xH;` are decoded
//!   (others are left as written).
//!
//! Not handled: `<script>`/`<style>` contents are scanned like markup, and
//! `<base href>` does not change the base URL (areq.py ignores both too).

/// The `href` values of `html`, in order (duplicates kept; see the module
/// doc for what counts).
pub(crate) fn hrefs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue; // `</a>`, `<!doctype>`, `<?xml>`, a lone `<`
        }
        rest = tag_attributes(rest, &mut out);
    }
    out
}

/// Reads one start tag from just after its `<` up to and including its `>`,
/// pushing the value of each `href` attribute; returns what follows.
fn tag_attributes<'a>(tag: &'a str, out: &mut Vec<String>) -> &'a str {
    let is_space = |c: char| c.is_ascii_whitespace();
    // The element's name.
    let mut rest = tag.trim_start_matches(|c: char| !is_space(c) && c != '>' && c != '/');
    loop {
        rest = rest.trim_start_matches(|c: char| is_space(c) || c == '/');
        if rest.is_empty() {
            return rest;
        }
        if let Some(after) = rest.strip_prefix('>') {
            return after;
        }
        let name_end = rest
            .find(|c: char| is_space(c) || matches!(c, '=' | '>' | '/'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start_matches(is_space);
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue; // an attribute without a value
        };
        rest = after_eq.trim_start_matches(is_space);
        let value;
        if let Some(q) = rest.chars().next().filter(|&c| c == '"' || c == '\'') {
            let body = &rest[1..];
            let end = body.find(q).unwrap_or(body.len());
            value = &body[..end];
            rest = body.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| is_space(c) || c == '>')
                .unwrap_or(rest.len());
            value = &rest[..end];
            rest = &rest[end..];
        }
        if name.eq_ignore_ascii_case("href") {
            out.push(decode_references(value.trim_matches(is_space)));
        }
    }
}

/// Decodes the few character references an href carries in practice.
fn decode_references(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let c = match &rest[1..semi] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                n => n
                    .strip_prefix("#x")
                    .or_else(|| n.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| n.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
