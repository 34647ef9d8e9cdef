//! areq.py ("full program: asynchronous requests" of Real Python's asyncio
//! walkthrough), ported to coil: read a file of URLs, fetch them all
//! concurrently, find every `href` in each page, resolve it against the
//! page's URL and append `source<TAB>found` lines to an output file. A URL
//! that fails is logged (on stderr) and the run goes on.
//!
//! The pieces, each its own module: [`http`] (the HTTP/1.1 client that
//! stands in for aiohttp), [`html`] (the href scan that stands in for the
//! regex) and [`urljoin`] (Python's `urllib.parse.urljoin`).
//!
//! | areq.py | here |
//! |---|---|
//! | `urls = set(map(str.strip, infile))` | [`read_urls`] (blank lines and `#` comments skipped, first-seen order) |
//! | `outfile.write("source_url\tparsed_url\n")` | [`run`] writes [`HEADER`], replacing the file |
//! | `fetch_html`: `session.request`, `raise_for_status`, `resp.text()` | [`http::get_text`] inside `coil::time::timeout` |
//! | `parse`: `HREF_RE.findall`, `urljoin(url, link)`, a `set` | [`parse`]: [`html::hrefs`], [`urljoin::urljoin`], duplicates dropped |
//! | `write_one`: `aiofiles.open(file, "a")`, one `write` per line | [`write_one`]: `coil::fs::OpenOptions::append`, one write per page |
//! | `bulk_crawl_and_write`: `asyncio.gather(*tasks)` | [`bulk_crawl_and_write`]: `coil::gather_all` |
//! | aiohttp's connector: at most 100 connections | a `coil::sync::Semaphore` of [`Config::connections`] |
//!
//! Where the port differs, and why:
//!
//! * links resolve against the URL that finally answered (after redirects),
//!   as a browser does; areq.py joins with the URL it asked for. The first
//!   column is still the URL from the input file.
//! * a page's lines are written with one append, so pages never interleave
//!   (areq.py awaits each line's write, so two pages' lines may mix);
//! * the found links keep the order of the page (areq.py's `set` has none);
//! * the timeout bounds each URL's whole fetch, redirects and body included
//!   (aiohttp's `ClientTimeout(total=300)`); it is [`Config::timeout`].

pub(crate) mod html;
pub(crate) mod http;
pub(crate) mod urljoin;

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::time::Duration;

use coil::fs::OpenOptions;
use coil::sync::Semaphore;

use http::{FetchError, Page};

/// The first line of the output file (areq.py's).
pub(crate) const HEADER: &str = "source_url\tparsed_url\n";

/// How the crawl runs.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Bound on each URL's fetch (connect, redirects, body).
    pub(crate) timeout: Duration,
    /// Connections open at once (aiohttp's `TCPConnector(limit=100)`).
    pub(crate) connections: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout: Duration::from_secs(10),
            connections: 100,
        }
    }
}

/// What became of one input URL.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The URL as the input file gave it.
    pub(crate) url: String,
    /// The number of lines written for it, or why it failed.
    pub(crate) result: Result<usize, FetchError>,
}

/// Logs one line on stderr, as areq.py's `logging` setup does.
fn log(level: &str, msg: std::fmt::Arguments<'_>) {
    eprintln!("{level}:areq: {msg}");
}

/// The URLs of an input file: one per line, trimmed; blank lines and lines
/// starting with `#` skipped; each URL once, in the order first seen.
pub(crate) fn read_urls(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && seen.insert(*line))
        .map(str::to_string)
        .collect()
}

/// The whole program: reads the URLs from `urls_file`, writes [`HEADER`] to
/// `out_file` (replacing it), crawls, and returns each URL's outcome in
/// input order.
///
/// # Errors
///
/// Reading the input or writing the output failed; a URL's failure is not
/// an error (it is in its [`Outcome`]).
pub(crate) async fn run(
    urls_file: &Path,
    out_file: &Path,
    config: &Config,
) -> io::Result<Vec<Outcome>> {
    let urls = read_urls(&coil::fs::read_to_string(urls_file).await?);
    coil::fs::write(out_file, HEADER).await?;
    bulk_crawl_and_write(out_file, &urls, config).await
}

/// Crawls every URL concurrently (`asyncio.gather`), each appending its
/// lines to `file`.
///
/// # Errors
///
/// The first error writing `file`; the other URLs still ran to the end.
pub(crate) async fn bulk_crawl_and_write(
    file: &Path,
    urls: &[String],
    config: &Config,
) -> io::Result<Vec<Outcome>> {
    let connections = Semaphore::new(config.connections);
    coil::gather_all(
        urls.iter()
            .map(|url| write_one(file, url, config, &connections)),
    )
    .await
    .into_iter()
    .collect()
}

/// Fetches and parses `url`, then appends its `url<TAB>link` lines to
/// `file` in one write (nothing for a page without links, or a failure).
///
/// # Errors
///
/// Opening or writing `file` failed.
pub(crate) async fn write_one(
    file: &Path,
    url: &str,
    config: &Config,
    connections: &Semaphore,
) -> io::Result<Outcome> {
    let found = match parse(url, config, connections).await {
        Ok(found) => found,
        Err(e) => {
            log("ERROR", format_args!("fetching {url} failed: {e}"));
            return Ok(Outcome {
                url: url.to_string(),
                result: Err(e),
            });
        }
    };
    if !found.is_empty() {
        let text: String = found.iter().map(|p| format!("{url}\t{p}\n")).collect();
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(file)
            .await?;
        f.write_all(text.into_bytes()).await.0?;
        f.close().await?;
        log("INFO", format_args!("Wrote results for source URL: {url}"));
    }
    Ok(Outcome {
        url: url.to_string(),
        result: Ok(found.len()),
    })
}

/// The links of the page at `url`, resolved against the URL that answered
/// and without duplicates, in page order.
///
/// # Errors
///
/// The fetch failed: see [`FetchError`].
pub(crate) async fn parse(
    url: &str,
    config: &Config,
    connections: &Semaphore,
) -> Result<Vec<String>, FetchError> {
    let page = {
        let _permit = connections
            .acquire()
            .await
            .expect("the semaphore is never closed");
        fetch_html(url, config.timeout).await?
    };
    let mut seen = HashSet::new();
    let found: Vec<String> = html::hrefs(&page.text)
        .iter()
        .map(|link| urljoin::urljoin(&page.url, link))
        .filter(|abs| seen.insert(abs.clone()))
        .collect();
    log(
        "INFO",
        format_args!("Found {} links for {url}", found.len()),
    );
    Ok(found)
}

/// `GET url` within `timeout`, redirects followed, the body decoded.
///
/// # Errors
///
/// See [`FetchError`]; [`FetchError::Timeout`] when `timeout` passes.
pub(crate) async fn fetch_html(url: &str, timeout: Duration) -> Result<Page, FetchError> {
    let page = coil::time::timeout(timeout, http::get_text(url))
        .await
        .map_err(|_| FetchError::Timeout)??;
    log(
        "INFO",
        format_args!("Got response [{}] for URL: {url}", page.status),
    );
    Ok(page)
}
