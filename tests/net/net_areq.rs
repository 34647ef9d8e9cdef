//! The areq.py port (`examples/areq`) against a local HTTP server that
//! serves each case a crawler meets: a redirect chain (10 hops followed, 11
//! refused, a loop), chunked and close-delimited bodies, a 100 Continue,
//! latin-1 and an unknown charset, a stall and a silence past the timeout, a
//! 404, a reset, a body cut short, an absurd Content-Length, gzip, https, a
//! URL that needs percent-encoding, a bad port, and a page of tricky hrefs. The
//! output file's lines are checked exactly. Also: `urljoin` against Python's
//! answers, and the href scan alone.

use crate::support;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;
use support::TempDir;

use coil::io::{BufReader, BufResult};
use coil::net::{TcpListener, TcpStream};
use coil::spawn;
use coil::time::Instant;

#[path = "../../examples/areq/crawler/mod.rs"]
mod crawler;

use crawler::http::FetchError;
use crawler::urljoin::urljoin;

/// `urllib.parse.urljoin(base, ref)` as Python 3.11 answers (RFC 3986 §5.4's
/// examples and a few more), pasted from `python3 -c '...'`.
#[test]
fn urljoin_matches_python() {
    let base = "http://a/b/c/d;p?q";
    let cases = [
        ("g:h", "g:h"),
        ("g", "http://a/b/c/g"),
        ("./g", "http://a/b/c/g"),
        ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"),
        ("//g", "http://g"),
        ("?y", "http://a/b/c/d;p?y"),
        ("g?y", "http://a/b/c/g?y"),
        ("#s", "http://a/b/c/d;p?q#s"),
        ("g#s", "http://a/b/c/g#s"),
        ("g?y#s", "http://a/b/c/g?y#s"),
        (";x", "http://a/b/c/;x"),
        ("g;x?y#s", "http://a/b/c/g;x?y#s"),
        ("", "http://a/b/c/d;p?q"),
        (".", "http://a/b/c/"),
        ("./", "http://a/b/c/"),
        ("..", "http://a/b/"),
        ("../g", "http://a/b/g"),
        ("../..", "http://a/"),
        ("../../g", "http://a/g"),
        ("../../../../g", "http://a/g"),
        ("/./g", "http://a/g"),
        ("/../g", "http://a/g"),
        ("g.", "http://a/b/c/g."),
        ("..g", "http://a/b/c/..g"),
        ("./g/.", "http://a/b/c/g/"),
        ("g/../h", "http://a/b/c/h"),
        ("g;x=1/../y", "http://a/b/c/y"),
        ("g?y/../x", "http://a/b/c/g?y/../x"),
        ("g#s/../x", "http://a/b/c/g#s/../x"),
        ("http:g", "http://a/b/c/g"),
        ("a//b", "http://a/b/c/a/b"),
        ("HTTP://X/y", "http://X/y"),
        ("mailto:x@y", "mailto:x@y"),
        ("https://s/x", "https://s/x"),
        ("javascript:void(0)", "javascript:void(0)"),
        ("  g  ", "http://a/b/c/g  "),
        ("c\n/d", "http://a/b/c/c/d"),
    ];
    for (reference, want) in cases {
        assert_eq!(
            urljoin(base, reference),
            want,
            "urljoin({base:?}, {reference:?})"
        );
    }
    assert_eq!(urljoin("http://a/b#f", "#g"), "http://a/b#g");
    assert_eq!(urljoin("http://a/b#f", ""), "http://a/b#f");
    assert_eq!(urljoin("http://a", "g"), "http://a/g");
    assert_eq!(urljoin("http://a", "?x"), "http://a?x");
    assert_eq!(urljoin("http://a/b?q", "?"), "http://a/b?q");
}

/// The tricky page the server serves at `/dir/tricky.html`.
const TRICKY: &str = r##"<!doctype html>
<html><head><link href=style.css rel=stylesheet></head><body>
<a href="one.html">1</a>
<a href='two.html'>2</a>
<a href=three.html>3</a>
<a HREF = "four.html" >4</a>
<A class="x"
  href
  =
  "five.html">5</a>
<a href="
   six.html
">6</a>
<a data-href="no-data.html">not a link</a>
<p>the text href="no-text.html" is not a link</p>
<!-- <a href="no-comment.html"> -->
<a href="/abs/path">absolute path</a>
<a href="//other.example:81/x">scheme-relative</a>
<a title='say "hi"' href="../up/../x/./y?q=1&amp;r=2#frag">dots</a>
<a href="?page=2">query only</a>
<a href="#top">fragment only</a>
<a href="">empty</a>
<a href="mailto:me@example.org">mail</a>
<a href="https://secure.example/">https</a>
<a href="a//b/../c">double slash</a>
<a href="one.html">duplicate</a>
</body></html>
"##;

#[test]
fn hrefs_of_the_tricky_page() {
    let found = crawler::html::hrefs(TRICKY);
    let want = [
        "style.css",
        "one.html",
        "two.html",
        "three.html",
        "four.html",
        "five.html",
        "six.html",
        "/abs/path",
        "//other.example:81/x",
        "../up/../x/./y?q=1&r=2#frag",
        "?page=2",
        "#top",
        "",
        "mailto:me@example.org",
        "https://secure.example/",
        "a//b/../c",
        "one.html",
    ];
    assert_eq!(found, want);
    assert_eq!(
        crawler::html::hrefs("<a href='&#x41;&#66;&lt;&bogus;&amp'></a><a href"),
        ["AB<&bogus;&amp"]
    );
}

/// Sends `bytes` on `conn`.
async fn send(conn: &TcpStream, bytes: impl Into<Vec<u8>>) -> io::Result<()> {
    let BufResult(r, _) = conn.write_all(bytes.into()).await;
    r
}

/// A complete response with a `Content-Length` body.
fn response(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A redirect to `location`.
fn redirect(code: &str, location: &str) -> Vec<u8> {
    response(code, &format!("Location: {location}\r\n"), b"")
}

/// Serves one request on `conn`; `loop_hits` counts requests for `/loop`.
async fn serve(conn: TcpStream, loop_hits: Rc<Cell<usize>>) -> io::Result<()> {
    let mut reader = BufReader::new(&conn);
    let request = reader.next_line().await?.unwrap_or_default();
    while reader.next_line().await?.is_some_and(|h| !h.is_empty()) {}
    drop(reader);
    let path = request.split(' ').nth(1).unwrap_or("/").to_string();
    let html = "Content-Type: text/html\r\n";
    let reply = match path.as_str() {
        "/dir/tricky.html" => response(
            "200 OK",
            "Content-Type: text/html; charset=\"UTF-8\"\r\n",
            TRICKY.as_bytes(),
        ),
        "/r/0" => response(
            "200 OK",
            html,
            br#"<a href="a.html"></a><a href="../b"></a>"#,
        ),
        p if p.starts_with("/r/") => {
            let n: usize = p[3..].parse().unwrap();
            redirect("302 Found", &(n - 1).to_string())
        }
        "/loop" => {
            loop_hits.set(loop_hits.get() + 1);
            redirect("301 Moved Permanently", "/loop")
        }
        "/to-https" => redirect("307 Temporary Redirect", "https://127.0.0.1:1/"),
        "/chunked" => {
            send(
                &conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await?;
            // The first href is cut across two chunks; one size is in upper-case hex.
            for chunk in [
                "<p>chunked</p><a hr",
                "ef=\"chunk-1.html\">1</a>\n<a href='../chunk-2.html'>2</a>",
            ] {
                send(&conn, format!("{:X};ext=1\r\n{chunk}\r\n", chunk.len())).await?;
                coil::task::yield_now().await;
            }
            send(&conn, "0\r\nX-Trailer: yes\r\n\r\n").await?;
            Vec::new()
        }
        "/latin1" => response(
            "200 OK",
            "Content-Type: text/html; charset=ISO-8859-1\r\n",
            b"<a href=\"caf\xe9.html\">caf\xe9</a>",
        ),
        "/koi8" => response(
            "200 OK",
            "Content-Type: text/html; charset=koi8-r\r\n",
            b"<a href=x>x</a>",
        ),
        "/stall" => {
            send(
                &conn,
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<a href=\"x\">",
            )
            .await?;
            std::future::pending().await
        }
        "/silent" => std::future::pending().await,
        "/missing" => response("404 Not Found", html, b"no such page"),
        "/reset" => {
            conn.set_linger(Some(Duration::ZERO))?;
            return Ok(()); // dropping it now sends a reset
        }
        "/short" => {
            let mut r = response("200 OK", html, &[b'x'; 100]);
            r.truncate(r.len() - 90);
            r
        }
        "/empty" => response("200 OK", html, b"<p>no links here</p>"),
        "/eof" => b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<a href=eof-link>".to_vec(),
        "/continue" => {
            let mut r = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
            r.extend(response("200 OK", html, br#"<a href="after-continue">"#));
            r
        }
        "/gzip" => response("200 OK", "Content-Encoding: gzip\r\n", b"\x1f\x8b"),
        "/huge" => b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n<a href=x>".to_vec(),
        // Requested as `café page`: sent percent-encoded.
        "/caf%C3%A9%20page" => response("200 OK", html, b"<a href=x>"),
        other => panic!("the server got an unexpected request for {other}"),
    };
    send(&conn, reply).await?;
    conn.shutdown(Shutdown::Write).await
}

/// What each URL must come to.
#[derive(Debug)]
enum Want {
    Lines(Vec<String>),
    TooManyRedirects(&'static str),
    Status(u16),
    Charset(&'static str),
    Timeout,
    Io(io::ErrorKind),
    Unsupported,
    InvalidUrl,
}

driver_test! {
    fn areq_crawls_a_local_server(rt) {
        let dir = TempDir::new("areq-test");
        let urls_file = dir.path("urls.txt");
        let out_file = dir.path("foundurls.txt");
        // Long enough for every local fetch on a loaded 2-core CI machine (they take
        // milliseconds), short enough to keep the suite quick: each variant waits it out.
        let timeout = Duration::from_secs(1);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let b = format!("http://{addr}");
            let loop_hits = Rc::new(Cell::new(0));
            let handlers = Rc::new(std::cell::RefCell::new(Vec::new()));
            let server = {
                let (loop_hits, handlers) = (loop_hits.clone(), handlers.clone());
                spawn(async move {
                    loop {
                        let (conn, _) = listener.accept().await.unwrap();
                        let task = spawn(serve(conn, loop_hits.clone()));
                        handlers.borrow_mut().push(task);
                    }
                })
            };

            let page = |source: &str, found: &[&str]| {
                let found = found.iter().map(|f| format!("{source}\t{f}")).collect();
                (source.to_string(), Want::Lines(found))
            };
            let tricky = format!("{b}/dir/tricky.html");
            let d = format!("{b}/dir");
            let wants: Vec<(String, Want)> = vec![
                page(&tricky, &[
                    &format!("{d}/style.css"),
                    &format!("{d}/one.html"),
                    &format!("{d}/two.html"),
                    &format!("{d}/three.html"),
                    &format!("{d}/four.html"),
                    &format!("{d}/five.html"),
                    &format!("{d}/six.html"),
                    &format!("{b}/abs/path"),
                    "http://other.example:81/x",
                    &format!("{b}/x/y?q=1&r=2#frag"),
                    &format!("{tricky}?page=2"),
                    &format!("{tricky}#top"),
                    &tricky,
                    "mailto:me@example.org",
                    "https://secure.example/",
                    &format!("{d}/a/c"),
                ]),
                // Ten redirects are followed; links resolve against where they led.
                page(&format!("{b}/r/10"), &[&format!("{b}/r/a.html"), &format!("{b}/b")]),
                (format!("{b}/r/11"), Want::TooManyRedirects("/r/0")),
                (format!("{b}/loop"), Want::TooManyRedirects("/loop")),
                page(
                    &format!("{b}/chunked"),
                    &[&format!("{b}/chunk-1.html"), &format!("{b}/chunk-2.html")],
                ),
                page(&format!("{b}/latin1"), &[&format!("{b}/caf\u{e9}.html")]),
                (format!("{b}/koi8"), Want::Charset("koi8-r")),
                (format!("{b}/stall"), Want::Timeout),
                (format!("{b}/silent"), Want::Timeout),
                (format!("{b}/missing"), Want::Status(404)),
                (format!("{b}/reset"), Want::Io(io::ErrorKind::ConnectionReset)),
                (format!("{b}/short"), Want::Io(io::ErrorKind::UnexpectedEof)),
                page(&format!("{b}/empty"), &[]),
                page(&format!("{b}/eof"), &[&format!("{b}/eof-link")]),
                page(&format!("{b}/continue"), &[&format!("{b}/after-continue")]),
                (format!("{b}/to-https"), Want::Unsupported),
                (format!("https://{addr}/secure"), Want::Unsupported),
                (format!("{b}/gzip"), Want::Unsupported),
                // A length far beyond memory is not allocated up front.
                (format!("{b}/huge"), Want::Io(io::ErrorKind::UnexpectedEof)),
                page(&format!("{b}/caf\u{e9} page"), &[&format!("{b}/x")]),
                ("http://127.0.0.1:port/".to_string(), Want::InvalidUrl),
            ];
            // The input: every URL, plus a blank line, a comment and a duplicate.
            let mut input = String::from("# areq input\n\n");
            for (url, _) in &wants {
                input.push_str(&format!("  {url}\n"));
            }
            input.push_str(&format!("{tricky}\n"));
            std::fs::write(&urls_file, input).unwrap();

            let config = crawler::Config { timeout, ..crawler::Config::default() };
            let start = Instant::now();
            let outcomes = crawler::run(&urls_file, &out_file, &config).await.unwrap();
            let took = start.elapsed();
            server.cancel();
            for h in handlers.borrow().iter() {
                h.cancel();
            }
            assert!(took >= timeout, "the stalled fetches waited for the timeout ({took:?})");
            assert!(took < timeout * 5, "the stalls ran concurrently ({took:?})");
            assert_eq!(loop_hits.get(), 1 + crawler::http::MAX_REDIRECTS);

            // Each URL's outcome.
            assert_eq!(outcomes.len(), wants.len());
            for (o, (url, want)) in outcomes.iter().zip(&wants) {
                assert_eq!(&o.url, url);
                let ok = match (&o.result, want) {
                    (Ok(n), Want::Lines(lines)) => *n == lines.len(),
                    (Err(FetchError::TooManyRedirects(last)), Want::TooManyRedirects(end)) => {
                        last.ends_with(end)
                    }
                    (Err(FetchError::Status(code, reason)), Want::Status(want)) => {
                        code == want && reason == "Not Found"
                    }
                    (Err(FetchError::Charset(c)), Want::Charset(want)) => c == want,
                    (Err(FetchError::Timeout), Want::Timeout) => true,
                    (Err(FetchError::Io(e)), Want::Io(kind)) => e.kind() == *kind,
                    (Err(FetchError::Unsupported(_)), Want::Unsupported) => true,
                    (Err(FetchError::InvalidUrl(_)), Want::InvalidUrl) => true,
                    _ => false,
                };
                assert!(ok, "{url}: got {:?}, want {want:?}", o.result);
            }

            // The output: the header, then each page's lines in one block.
            let text = std::fs::read_to_string(&out_file).unwrap();
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(crawler::HEADER.trim_end()));
            let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut last_source = String::new();
            for line in lines {
                let (source, _) = line.split_once('\t').expect("source<TAB>found");
                if source != last_source {
                    assert!(!blocks.contains_key(source), "{source}'s lines are not in one block");
                    last_source = source.to_string();
                }
                blocks.entry(source.to_string()).or_default().push(line.to_string());
            }
            let want_blocks: BTreeMap<String, Vec<String>> = wants
                .into_iter()
                .filter_map(|(url, want)| match want {
                    Want::Lines(lines) if !lines.is_empty() => Some((url, lines)),
                    _ => None,
                })
                .collect();
            assert_eq!(blocks, want_blocks);
        });
        // Nothing but the input and the output was created.
        let mut names: Vec<_> = std::fs::read_dir(dir.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["foundurls.txt", "urls.txt"]);
    }
}
