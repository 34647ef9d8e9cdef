//! A crawler over its own HTTP server, with coil: the tour's version of the
//! asyncio notes' "full program: asynchronous requests". The faithful port
//! of that program (areq.py: a file of URLs in, `source<TAB>found` lines
//! out, redirects, chunked bodies, charsets, timeouts) is `examples/areq`;
//! this one needs no network and no input, so the tour can run it:
//!
//! * it first starts a small HTTP/1.1 server on 127.0.0.1 (a free port)
//!   serving a web of HTML pages that link to each other, then crawls it;
//! * an HTTP/1.1 client (`GET`, `Connection: close`, `Content-Length`
//!   bodies) over `TcpStream` + `BufReader`/`BufWriter`;
//! * at most `LIMIT` requests in flight, enforced by a `coil::sync::Semaphore`
//!   (asyncio's `async with sem:`);
//! * link extraction (`href="..."`), breadth-first over newly found pages;
//! * the results written to `urls.txt` in a fresh temp directory through
//!   `coil::fs`, read back and counted, then removed with the directory.
//!
//! Run it: `cargo run --release --example http_fetch [pages] [limit]`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use coil::io::{BufReader, BufWriter};
use coil::net::{TcpListener, TcpStream};
use coil::spawn;
use coil::sync::Semaphore;
use coil::time::Instant;

/// The HTML of page `i` of `n`: links to a few other pages (and one
/// external link that the crawler must not follow).
fn page(i: usize, n: usize) -> String {
    let links: BTreeSet<usize> = [(i * 7 + 1) % n, (i * 13 + 5) % n, (i + 1) % n, i / 2]
        .into_iter()
        .collect();
    let mut body = format!(
        "<!doctype html>\n<html><head><title>page {i}</title></head><body>\n<h1>Page {i}</h1>\n<ul>\n"
    );
    for l in links {
        body.push_str(&format!(
            "  <li><a href=\"/page/{l}.html\">page {l}</a></li>\n"
        ));
    }
    body.push_str(
        "  <li><a href=\"https://example.org/elsewhere\">outside</a></li>\n</ul>\n</body></html>\n",
    );
    body
}

fn index(n: usize) -> String {
    // The index links to page 0 only: the crawler discovers the rest.
    let _ = n;
    "<html><body><a href=\"/page/0.html\">start here</a></body></html>\n".to_string()
}

/// Serves one request, then closes the connection.
async fn serve(conn: TcpStream, pages: usize) -> io::Result<()> {
    let (rd, wr) = conn.into_split();
    let mut reader = BufReader::new(rd);
    let mut writer = BufWriter::new(wr);
    let mut request = String::new();
    reader.read_line(&mut request).await?;
    // Skip the headers.
    while let Some(h) = reader.next_line().await? {
        if h.is_empty() {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let body = match path {
        "/" | "/index.html" => Some(index(pages)),
        p => p
            .strip_prefix("/page/")
            .and_then(|p| p.strip_suffix(".html"))
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|&i| i < pages)
            .map(|i| page(i, pages)),
    };
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", "not found\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body.as_bytes()).await?;
    writer.shutdown().await
}

/// Starts the server; returns its address and the accept task.
fn start_server(pages: usize) -> io::Result<(SocketAddr, coil::Task<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let task = spawn(async move {
        loop {
            if let Ok((conn, _)) = listener.accept().await {
                // Detached: it ends after its one response.
                drop(spawn(async move {
                    if let Err(e) = serve(conn, pages).await {
                        eprintln!("server: {e}");
                    }
                }));
            }
        }
    });
    Ok((addr, task))
}

/// `GET path` over a fresh connection; returns the status code and body.
async fn get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let conn = TcpStream::connect(addr).await?;
    let (rd, wr) = conn.into_split();
    let mut writer = BufWriter::new(wr);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: coil-http-fetch\r\nConnection: close\r\n\r\n"
    );
    writer.write_all(req.as_bytes()).await?;
    writer.flush().await?;
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {m}"));
    let mut reader = BufReader::new(rd);
    let status_line = reader
        .next_line()
        .await?
        .ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length = None;
    while let Some(h) = reader.next_line().await? {
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; length.ok_or_else(|| bad("no Content-Length"))?];
    reader.read_exact(&mut body).await?;
    String::from_utf8(body)
        .map(|b| (status, b))
        .map_err(|_| bad("body is not UTF-8"))
}

/// Every `href="..."` in `html`, in order.
pub(crate) fn extract_links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("href=\"") {
        rest = &rest[i + 6..];
        match rest.find('"') {
            Some(end) => {
                out.push(rest[..end].to_string());
                rest = &rest[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// What the crawl did.
#[derive(Debug)]
pub(crate) struct Report {
    /// Pages fetched (status 200).
    pub(crate) fetched: usize,
    /// Links found, all pages together.
    pub(crate) links: usize,
    /// Most requests in flight at once (never above the limit).
    pub(crate) max_in_flight: usize,
    /// Lines written to the results file (and read back) before it was
    /// removed.
    pub(crate) lines: usize,
}

/// Serves `pages` pages, crawls them from `/` with at most `limit` requests
/// in flight, and writes `url -> links` lines to a file in a temp dir
/// (removed again once read back).
pub(crate) async fn demo(pages: usize, limit: usize) -> io::Result<Report> {
    let (addr, server) = start_server(pages)?;
    println!("HTTP server on http://{addr}/ serving {pages} pages");
    let sem = Rc::new(Semaphore::new(limit));
    let in_flight = Rc::new(std::cell::Cell::new((0usize, 0usize))); // (now, max)
    let mut results: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::from(["/".to_string()]);
    let mut frontier = vec!["/".to_string()];
    while !frontier.is_empty() {
        let tasks: Vec<_> = frontier
            .drain(..)
            .map(|path| {
                let (sem, in_flight) = (sem.clone(), in_flight.clone());
                spawn(async move {
                    let _permit = sem.acquire().await.map_err(io::Error::other)?;
                    let (now, max) = in_flight.get();
                    in_flight.set((now + 1, max.max(now + 1)));
                    let r = get(addr, &path).await;
                    let (now, max) = in_flight.get();
                    in_flight.set((now - 1, max));
                    let (status, body) = r?;
                    if status != 200 {
                        return Err(io::Error::other(format!("{path}: HTTP {status}")));
                    }
                    Ok::<_, io::Error>((path, extract_links(&body)))
                })
            })
            .collect();
        for t in tasks {
            let (path, links) = t.await.map_err(|e| io::Error::other(e.to_string()))??;
            for l in &links {
                // Follow links to this server only.
                if l.starts_with('/') && seen.insert(l.clone()) {
                    frontier.push(l.clone());
                }
            }
            results.insert(format!("http://{addr}{path}"), links);
        }
    }
    server.cancel();
    let links = results.values().map(Vec::len).sum();
    let mut text = String::new();
    for (url, links) in &results {
        text.push_str(&format!("{url} -> {}\n", links.join(" ")));
    }
    for line in text.lines().take(3) {
        println!("  {line}");
    }
    println!("  ... ({} pages)", results.len());
    let dir = std::env::temp_dir().join(format!("coil-http-fetch-{}", std::process::id()));
    let file = dir.join("urls.txt");
    coil::fs::create_dir_all(&dir).await?;
    coil::fs::write(&file, text).await?;
    let lines = coil::fs::read_to_string(&file).await?.lines().count();
    coil::fs::remove_file(&file).await?;
    coil::fs::remove_dir(&dir).await?;
    Ok(Report {
        fetched: results.len(),
        links,
        max_in_flight: in_flight.get().1,
        lines,
    })
}

#[allow(dead_code)]
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let pages = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let limit = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let rt = coil::Runtime::new()?;
    println!("driver: {}", rt.driver());
    let start = Instant::now();
    let r = rt.block_on(demo(pages, limit))?;
    println!(
        "fetched {} pages ({} links, at most {} requests in flight, limit {limit}) in {:.2?}",
        r.fetched,
        r.links,
        r.max_in_flight,
        start.elapsed()
    );
    println!(
        "wrote {} lines to a temp file, read them back, removed it",
        r.lines
    );
    Ok(())
}
