//! A small HTTP/1.1 client: `GET` an `http://` URL and get its body as text,
//! the part of aiohttp's `session.request("GET", url)`, `raise_for_status()`
//! and `await resp.text()` that areq.py uses.
//!
//! * One connection per request (`Connection: close`), over coil's
//!   [`TcpStream`] and [`BufReader`]; host names are resolved on coil's
//!   blocking pool.
//! * Redirects (301, 302, 303, 307, 308 with a `Location`) are followed, at
//!   most [`MAX_REDIRECTS`] of them (aiohttp's default); the `Location` is
//!   resolved against the URL that answered with [`urljoin`], and its
//!   fragment is not sent.
//! * Bodies: `Transfer-Encoding: chunked` (chunk extensions and trailers
//!   skipped), `Content-Length`, or up to the end of the connection. A body
//!   cut short is an error (`UnexpectedEof`). 1xx interim responses are
//!   skipped; 204 and 304 have no body.
//! * A status of 400 or more is an error ([`FetchError::Status`]), as
//!   `raise_for_status()` makes it.
//! * The text is decoded with the charset the `Content-Type` names:
//!   `utf-8` (also when none is named), `iso-8859-1`/`latin-1` and their
//!   aliases, `us-ascii`; `windows-1252` is decoded as latin-1 (the two
//!   differ only in bytes 0x80 to 0x9F, which latin-1 maps to C1 controls
//!   where windows-1252 has `€`, `‘`, `’`, ...). Any other charset is an
//!   error ([`FetchError::Charset`]; Python raises `LookupError`). Bytes
//!   that are not valid UTF-8 become U+FFFD (aiohttp decodes strictly, and
//!   areq.py would then log the page as failed). A `<meta charset>` in the
//!   page is not read.
//! * Only `http://`: an `https://` URL (or a redirect to one) is
//!   [`FetchError::Unsupported`]; TLS is not written here. Nor is
//!   decompression: the request asks for `Accept-Encoding: identity`, and a
//!   body sent with another `Content-Encoding` is `Unsupported` too.
//! * The request target is the URL's path and query with spaces, controls
//!   and non-ASCII bytes percent-encoded; the fragment is not sent.
//! * Bodies are read whole into memory (as `resp.text()` does), growing as
//!   bytes arrive: a huge `Content-Length` or chunk size is not allocated
//!   up front.
//!
//! The caller bounds the whole fetch with a timeout (see the crawler).

use std::fmt;
use std::io;

use coil::io::{BufReader, BufWriter};
use coil::net::TcpStream;

use super::urljoin::{urljoin, urlsplit};

/// Redirects followed before giving up (aiohttp's `max_redirects`).
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Why a fetch failed.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// A status of 400 or more, with its reason phrase.
    Status(u16, String),
    /// More than [`MAX_REDIRECTS`] redirects; the last `Location`.
    TooManyRedirects(String),
    /// Something this client does not do: a URL that is not `http://`
    /// (`https://` included), a `Content-Encoding` other than identity.
    Unsupported(String),
    /// A URL without a host, or with a port that is not a number.
    InvalidUrl(String),
    /// The response names a charset this client does not decode.
    Charset(String),
    /// The response is not HTTP/1.x as this client reads it.
    Protocol(String),
    /// The per-request timeout passed.
    Timeout,
    /// Connecting, sending or receiving failed (a reset, a refusal, a body
    /// cut short, ...).
    Io(io::Error),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status(code, reason) => write!(f, "HTTP {code} {reason}"),
            FetchError::TooManyRedirects(last) => {
                write!(f, "more than {MAX_REDIRECTS} redirects (last to {last})")
            }
            FetchError::Unsupported(what) => write!(f, "unsupported: {what}"),
            FetchError::InvalidUrl(url) => write!(f, "invalid URL {url:?}"),
            FetchError::Charset(c) => write!(f, "unsupported charset {c:?}"),
            FetchError::Protocol(m) => write!(f, "bad HTTP response: {m}"),
            FetchError::Timeout => write!(f, "timed out"),
            FetchError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for FetchError {
    fn from(e: io::Error) -> Self {
        FetchError::Io(e)
    }
}

/// A successful response, decoded.
#[derive(Debug)]
pub(crate) struct Page {
    /// The status code (below 400).
    pub(crate) status: u16,
    /// The URL that answered, after redirects.
    pub(crate) url: String,
    /// The body, decoded with the response's charset.
    pub(crate) text: String,
}

/// `GET url`, following redirects; the body decoded (see the module doc).
pub(crate) async fn get_text(url: &str) -> Result<Page, FetchError> {
    let mut url = url.to_string();
    let mut redirects = 0;
    loop {
        let response = get_once(&url).await?;
        let location = response.header("location").map(str::to_string);
        if let (301 | 302 | 303 | 307 | 308, Some(location)) = (response.status, location) {
            let next = urljoin(&url, &location);
            if redirects == MAX_REDIRECTS {
                return Err(FetchError::TooManyRedirects(next));
            }
            redirects += 1;
            url = next;
            continue;
        }
        if response.status >= 400 {
            return Err(FetchError::Status(response.status, response.reason));
        }
        if let Some(ce) = response
            .header("content-encoding")
            .filter(|ce| !ce.eq_ignore_ascii_case("identity"))
        {
            return Err(FetchError::Unsupported(format!("Content-Encoding {ce}")));
        }
        let text = decode(&response.body, response.header("content-type"))?;
        return Ok(Page {
            status: response.status,
            url,
            text,
        });
    }
}

/// One response as read from the wire.
struct Response {
    status: u16,
    reason: String,
    /// Header names lower-cased, values trimmed, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request/response exchange on a fresh connection; no redirects.
async fn get_once(url: &str) -> Result<Response, FetchError> {
    let parts = urlsplit(url);
    if parts.scheme != "http" {
        return Err(FetchError::Unsupported(format!("{url} (http:// only)")));
    }
    // `user:password@` is not sent anywhere: drop it.
    let host_port = parts
        .netloc
        .rsplit_once('@')
        .map_or(&*parts.netloc, |(_, h)| h);
    let (host, port) =
        split_host_port(host_port).ok_or_else(|| FetchError::InvalidUrl(url.to_string()))?;
    let target = request_target(&parts.path, &parts.query);

    let conn = TcpStream::connect((host, port)).await?;
    let (rd, wr) = conn.into_split();
    let mut writer = BufWriter::new(wr);
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host_port}\r\nUser-Agent: coil-areq\r\n\
         Accept: text/html,*/*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    );
    writer.write_all(request.as_bytes()).await?;
    writer.flush().await?;
    let mut reader = BufReader::new(rd);
    loop {
        let (status, reason, headers) = read_head(&mut reader).await?;
        if (100..200).contains(&status) && status != 101 {
            continue; // an interim response: the real one follows
        }
        let mut response = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        response.body = read_body(&mut reader, &response).await?;
        return Ok(response);
    }
}

/// The request line's target: the path (`/` if empty) and query, with
/// spaces, controls and non-ASCII bytes percent-encoded (a link written as
/// `café.html` is requested as `caf%C3%A9.html`); what is already encoded
/// stays as it is.
fn request_target(path: &str, query: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let raw = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let mut target = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_graphic() {
            target.push(char::from(b));
        } else {
            target.push_str(&format!("%{b:02X}"));
        }
    }
    target
}

/// `host[:port]` (`[v6]:port` too); port 80 when absent.
fn split_host_port(netloc: &str) -> Option<(&str, u16)> {
    let (host, port) = match netloc.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match netloc.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (netloc, None),
        },
    };
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().ok()?,
    };
    (!host.is_empty()).then_some((host, port))
}

/// One line of the head, without its line end; bytes read as latin-1 (header
/// values are not UTF-8 by rule). `None` at the end of the stream.
async fn head_line<R>(reader: &mut BufReader<R>) -> Result<Option<String>, FetchError>
where
    R: coil::io::AsyncReadOwned,
{
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(latin1(&line)))
}

/// The status line and headers of one response.
async fn read_head<R>(
    reader: &mut BufReader<R>,
) -> Result<(u16, String, Vec<(String, String)>), FetchError>
where
    R: coil::io::AsyncReadOwned,
{
    let status_line = head_line(reader)
        .await?
        .ok_or_else(|| FetchError::Protocol("connection closed before a status line".into()))?;
    let mut fields = status_line.splitn(3, ' ');
    let version = fields.next().unwrap_or("");
    let status = fields.next().and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(FetchError::Protocol(format!("status line {status_line:?}")));
    };
    let reason = fields.next().unwrap_or("").trim().to_string();
    let mut headers = Vec::new();
    loop {
        let line = head_line(reader)
            .await?
            .ok_or_else(|| FetchError::Protocol("connection closed inside the headers".into()))?;
        if line.is_empty() {
            return Ok((status, reason, headers));
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
}

/// The body of `response`, framed as its headers say.
async fn read_body<R>(reader: &mut BufReader<R>, response: &Response) -> Result<Vec<u8>, FetchError>
where
    R: coil::io::AsyncReadOwned,
{
    let mut body = Vec::new();
    if matches!(response.status, 204 | 304) {
        return Ok(body);
    }
    let chunked = response.header("transfer-encoding").is_some_and(|te| {
        te.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    if chunked {
        read_chunked(reader, &mut body).await?;
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| FetchError::Protocol(format!("Content-Length {len:?}")))?;
        read_more(reader, len, &mut body).await?;
    } else {
        reader.read_to_end(&mut body).await?;
    }
    Ok(body)
}

/// Appends exactly `n` more bytes to `body`, growing it as they arrive (a
/// length the peer announces is not allocated before the bytes come).
async fn read_more<R>(reader: &mut BufReader<R>, n: usize, body: &mut Vec<u8>) -> io::Result<()>
where
    R: coil::io::AsyncReadOwned,
{
    const STEP: usize = 64 * 1024;
    let mut left = n;
    while left > 0 {
        let start = body.len();
        let step = left.min(STEP);
        body.resize(start + step, 0);
        if let Err(e) = reader.read_exact(&mut body[start..]).await {
            body.truncate(start);
            return Err(e);
        }
        left -= step;
    }
    Ok(())
}

/// Decodes a chunked body into `body`: `size[;ext]\r\n data\r\n` until a
/// chunk of size 0, then trailers up to an empty line.
async fn read_chunked<R>(reader: &mut BufReader<R>, body: &mut Vec<u8>) -> Result<(), FetchError>
where
    R: coil::io::AsyncReadOwned,
{
    let eof = || FetchError::Io(io::ErrorKind::UnexpectedEof.into());
    loop {
        let line = head_line(reader).await?.ok_or_else(eof)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| FetchError::Protocol(format!("chunk size {line:?}")))?;
        if size == 0 {
            break;
        }
        read_more(reader, size, body).await?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).await?;
        if &crlf != b"\r\n" {
            return Err(FetchError::Protocol("chunk not followed by CRLF".into()));
        }
    }
    // Trailers, ignored.
    while !head_line(reader).await?.ok_or_else(eof)?.is_empty() {}
    Ok(())
}

/// Bytes as latin-1: each byte is the code point of the same value.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// The body as text, with the charset `content_type` names (see the module
/// doc for the charsets known).
fn decode(body: &[u8], content_type: Option<&str>) -> Result<String, FetchError> {
    let charset = content_type
        .into_iter()
        .flat_map(|ct| ct.split(';').skip(1))
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.trim().trim_matches('"').to_ascii_lowercase());
    match charset.as_deref() {
        None | Some("utf-8" | "utf8") => Ok(String::from_utf8_lossy(body).into_owned()),
        Some(
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin-1" | "latin1" | "l1" | "cp819"
            | "us-ascii" | "ascii" | "windows-1252" | "cp1252",
        ) => Ok(latin1(body)),
        Some(other) => Err(FetchError::Charset(other.to_string())),
    }
}
