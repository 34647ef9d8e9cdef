//! URL splitting and joining with the semantics of Python's
//! `urllib.parse.urlsplit` / `urljoin` (the functions areq.py calls), written
//! by hand: no `url` crate.
//!
//! Python's documentation (`urllib.parse.urljoin` on docs.python.org) says
//! it builds an absolute URL from a base and a reference; that a reference
//! starting with `//` or `scheme://` brings its own host and/or scheme;
//! that since Python 3.5 the rules are RFC 3986's; and that with
//! `allow_fragments` false a `#` is not read as a fragment. areq.py calls
//! it with the default (true): the reference's fragment is kept in the
//! result, the base's dropped. What `urljoin(base, reference)` does in
//! detail, as Python 3.11 does it (checked with `python3 -c 'from
//! urllib.parse import urljoin; ...'`; the answers are the test table in
//! `tests/net/net_areq.rs`):
//!
//! * an empty reference gives the base unchanged (its fragment included);
//! * a reference with a scheme other than the base's (`mailto:`,
//!   `javascript:`, `https:` on an `http:` page) is returned as it is;
//! * a scheme-relative reference (`//host/x`) takes the base's scheme;
//! * an absolute path (`/x`) replaces the base's path;
//! * a relative path is merged with the base's directory, then `.` and `..`
//!   segments are removed (`..` never climbs above the root);
//! * a query-only reference (`?y`) keeps the base's path; a fragment-only
//!   one (`#s`) keeps the base's path and query;
//! * **the reference's fragment is kept** (`g#s` gives `.../g#s`); the base's
//!   fragment is dropped. (The crawler drops fragments only when it
//!   *requests* a URL, never in what it writes.)
//!
//! Python's quirks, kept: `http:g` (same scheme, no host) is relative (RFC
//! 3986's non-strict reading), empty segments inside a merged relative path
//! collapse (`a//b` gives `.../a/b`), an empty query or fragment (`g?`) is
//! dropped, leading spaces and control characters are stripped and tabs
//! and newlines anywhere are removed (WHATWG's unsafe bytes), the scheme is
//! lower-cased. Nothing is percent-encoded or decoded.

/// Schemes whose references may be relative (Python's `uses_relative`).
const USES_RELATIVE: &[&str] = &[
    "", "ftp", "http", "gopher", "nntp", "imap", "wais", "file", "https", "shttp", "mms",
    "prospero", "rtsp", "rtsps", "rtspu", "sftp", "svn", "svn+ssh", "ws", "wss",
];

/// Schemes that have a `//netloc` part (Python's `uses_netloc`).
const USES_NETLOC: &[&str] = &[
    "",
    "ftp",
    "http",
    "gopher",
    "nntp",
    "telnet",
    "imap",
    "wais",
    "file",
    "mms",
    "https",
    "shttp",
    "snews",
    "prospero",
    "rtsp",
    "rtsps",
    "rtspu",
    "rsync",
    "svn",
    "svn+ssh",
    "sftp",
    "nfs",
    "git",
    "git+ssh",
    "ws",
    "wss",
    "itms-services",
];

/// The five parts of a URL, as `urlsplit` returns them: `scheme://netloc
/// path?query#fragment`. Absent parts are empty strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Lower-cased scheme, without the `:`.
    pub(crate) scheme: String,
    /// `host[:port]` (with any `user@`), without the `//`.
    pub(crate) netloc: String,
    /// The path, as written (may be empty).
    pub(crate) path: String,
    /// The query, without the `?`.
    pub(crate) query: String,
    /// The fragment, without the `#`.
    pub(crate) fragment: String,
}

/// Splits `url` like Python's `urlsplit(url)`.
pub(crate) fn urlsplit(url: &str) -> Parts {
    // WHATWG: leading C0 controls and spaces go, tabs and newlines anywhere.
    let cleaned: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut rest = cleaned.as_str();
    let mut scheme = String::new();
    if let Some(i) = rest.find(':') {
        let candidate = &rest[..i];
        let valid = candidate.starts_with(|c: char| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            scheme = candidate.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = String::new();
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = after[..end].to_string();
        rest = &after[end..];
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    Parts {
        scheme,
        netloc,
        path: path.to_string(),
        query: query.to_string(),
        fragment: fragment.to_string(),
    }
}

/// Puts split parts back together, like Python's `urlunsplit`.
pub(crate) fn urlunsplit(p: &Parts) -> String {
    let mut url = p.path.clone();
    if !p.netloc.is_empty()
        || (!p.scheme.is_empty()
            && USES_NETLOC.contains(&p.scheme.as_str())
            && !url.starts_with("//"))
    {
        if !url.is_empty() && !url.starts_with('/') {
            url.insert(0, '/');
        }
        url = format!("//{}{url}", p.netloc);
    }
    if !p.scheme.is_empty() {
        url = format!("{}:{url}", p.scheme);
    }
    if !p.query.is_empty() {
        url.push('?');
        url.push_str(&p.query);
    }
    if !p.fragment.is_empty() {
        url.push('#');
        url.push_str(&p.fragment);
    }
    url
}

/// Resolves `reference` against `base`, like Python's
/// `urllib.parse.urljoin(base, reference)` (see the module doc).
pub(crate) fn urljoin(base: &str, reference: &str) -> String {
    if base.is_empty() {
        return reference.to_string();
    }
    if reference.is_empty() {
        return base.to_string();
    }
    let b = urlsplit(base);
    let mut r = urlsplit(reference);
    if r.scheme.is_empty() {
        r.scheme = b.scheme.clone();
    }
    if r.scheme != b.scheme || !USES_RELATIVE.contains(&r.scheme.as_str()) {
        return reference.to_string();
    }
    if USES_NETLOC.contains(&r.scheme.as_str()) {
        if !r.netloc.is_empty() {
            return urlunsplit(&r);
        }
        r.netloc = b.netloc.clone();
    }
    if r.path.is_empty() {
        r.path = b.path;
        if r.query.is_empty() {
            r.query = b.query;
        }
        return urlunsplit(&r);
    }
    let segments: Vec<&str> = if r.path.starts_with('/') {
        r.path.split('/').collect()
    } else {
        // The base's directory (its path without the last segment), then
        // the reference; empty segments in the middle are dropped.
        let mut base_dir: Vec<&str> = b.path.split('/').collect();
        if base_dir.last() != Some(&"") {
            base_dir.pop();
        }
        let mut all: Vec<&str> = base_dir.into_iter().chain(r.path.split('/')).collect();
        let last = all.len() - 1;
        let mut i = 1;
        let mut end = last;
        while i < end {
            if all[i].is_empty() {
                all.remove(i);
                end -= 1;
            } else {
                i += 1;
            }
        }
        all
    };
    let mut resolved: Vec<&str> = Vec::new();
    for &seg in &segments {
        match seg {
            ".." => {
                resolved.pop();
            }
            "." => {}
            s => resolved.push(s),
        }
    }
    if matches!(segments.last(), Some(&".") | Some(&"..")) {
        resolved.push("");
    }
    let joined = resolved.join("/");
    r.path = if joined.is_empty() {
        "/".to_string()
    } else {
        joined
    };
    urlunsplit(&r)
}
