//! hyper 1.x on coil: an HTTP/1.1 server and hyper's own client, over
//! `coil::compat::{Compat, HyperTimer}`
//! (`cargo run --release --example hyper_server --features hyper`).
//!
//! Run alone, it starts the server on a free loopback port, sends it a few
//! requests with hyper's client and prints the answers. With
//! `-- serve 127.0.0.1:8080` it serves until Ctrl-C (what the benchmark in
//! `benches/README.md` points wrk at):
//!
//! - `GET /` answers `Hello, World!`;
//! - `POST /echo` answers with the request's body, up to [`MAX_ECHO_BODY`]
//!   (1 MiB): a longer one gets a 413 and the connection is closed, so no
//!   client can make the server hold more than that per connection;
//! - anything else is a 404.
//!
//! Hostile clients: hyper answers malformed requests (bad framing, request
//! smuggling shapes, headers over its ~400 KB buffer) with an error status or
//! a close, and closes a connection whose request head has not arrived
//! within 30 s (its `header_read_timeout`, which needs the timer given
//! here). Out of fds (`EMFILE`), the accept loop reports the error and tries
//! again after a pause; it never ends the server.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use coil::compat::{Compat, HyperTimer};
use coil::net::{TcpListener, TcpStream};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// A body of one chunk (http-body-util's `Full`, in a few lines).
#[derive(Debug, Default)]
pub(crate) struct Full(Option<Bytes>);

impl Full {
    pub(crate) fn new(data: impl Into<Bytes>) -> Full {
        Full(Some(data.into()))
    }
}

impl Body for Full {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// The longest request body `POST /echo` takes: 1 MiB.
pub(crate) const MAX_ECHO_BODY: usize = 1 << 20;

/// How long the accept loop pauses after an accept error: out of fds
/// (`EMFILE`) the next accept would fail the same way at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Every data frame of `body`, concatenated.
pub(crate) async fn collect(body: Incoming) -> hyper::Result<Vec<u8>> {
    Ok(collect_at_most(body, usize::MAX).await?.unwrap_or_default())
}

/// Every data frame of `body`, concatenated, or `None` as soon as it is
/// known to hold more than `max` bytes (at once when its `Content-Length`
/// says so): memory stays within `max` plus one frame.
pub(crate) async fn collect_at_most(
    mut body: Incoming,
    max: usize,
) -> hyper::Result<Option<Vec<u8>>> {
    if body.size_hint().lower() > max as u64 {
        return Ok(None);
    }
    let mut out = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            if data.len() > max - out.len() {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out))
}

/// A response of `status` with a short text body.
fn status(status: StatusCode, text: &'static str) -> Response<Full> {
    let mut r = Response::new(Full::new(text));
    *r.status_mut() = status;
    r
}

/// The service: `GET /`, `POST /echo`, 404 otherwise (also what the tokio
/// peer in `benches/examples/hyper_tokio.rs` serves).
pub(crate) async fn handle(req: Request<Incoming>) -> hyper::Result<Response<Full>> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Response::new(Full::new("Hello, World!")),
        (&Method::POST, "/echo") => match collect_at_most(req.into_body(), MAX_ECHO_BODY).await? {
            Some(body) => Response::new(Full::new(body)),
            None => {
                // The rest of the body is left unread: the connection ends
                // with this answer.
                let mut r = status(StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB");
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
        },
        _ => status(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(response)
}

/// Serves one connection until the client closes it.
pub(crate) async fn serve_connection(conn: TcpStream) -> hyper::Result<()> {
    hyper::server::conn::http1::Builder::new()
        .timer(HyperTimer)
        .serve_connection(Compat::new(conn), hyper::service::service_fn(handle))
        .await
}

/// Accepts connections forever, each served by a task of its own. Never
/// returns: an accept error (out of fds, `EMFILE`) is reported and the
/// accept tried again after a pause, the connections waiting in the backlog
/// meanwhile; a connection `TCP_NODELAY` cannot be set on is served anyway.
pub(crate) async fn serve_forever(listener: TcpListener) -> io::Result<()> {
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                eprintln!("accept: {e}");
                coil::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Only a latency tweak: not a reason to drop the connection.
        if let Err(e) = conn.set_nodelay(true) {
            eprintln!("set_nodelay: {e}");
        }
        // Detached (the handle dropped): each connection ends on its own.
        drop(coil::spawn(async move {
            if let Err(e) = serve_connection(conn).await {
                eprintln!("connection: {e}");
            }
        }));
    }
}

/// A hyper client connection to `addr`; its driver runs as a coil task.
pub(crate) async fn connect(
    addr: SocketAddr,
) -> io::Result<hyper::client::conn::http1::SendRequest<Full>> {
    let conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(Compat::new(conn))
        .await
        .map_err(io::Error::other)?;
    // Detached: it ends when `sender` is dropped and the connection closes.
    drop(coil::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("client connection: {e}");
        }
    }));
    Ok(sender)
}

/// Sends `req`; the response's status and body.
pub(crate) async fn fetch(
    sender: &mut hyper::client::conn::http1::SendRequest<Full>,
    req: Request<Full>,
) -> io::Result<(StatusCode, Vec<u8>)> {
    sender.ready().await.map_err(io::Error::other)?;
    let resp = sender.send_request(req).await.map_err(io::Error::other)?;
    let status = resp.status();
    let body = collect(resp.into_body()).await.map_err(io::Error::other)?;
    Ok((status, body))
}

#[allow(dead_code)]
fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [serve, addr] = args.as_slice()
        && serve == "serve"
    {
        return coil::run(async move {
            let listener = TcpListener::bind(addr.as_str())?;
            println!("serving on http://{}/ until Ctrl-C", listener.local_addr()?);
            let server = coil::spawn(serve_forever(listener));
            coil::signal::ctrl_c().await?;
            server.cancel();
            Ok(())
        });
    }
    coil::run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = coil::spawn(serve_forever(listener));
        let mut client = connect(addr).await?;
        let uri = format!("http://{addr}/");
        let (status, body) = fetch(
            &mut client,
            Request::get(&uri).body(Full::default()).unwrap(),
        )
        .await?;
        println!("GET / -> {status} {:?}", String::from_utf8_lossy(&body));
        assert_eq!(body, b"Hello, World!");
        let req = Request::post(format!("{uri}echo"))
            .body(Full::new("echo me"))
            .unwrap();
        let (status, body) = fetch(&mut client, req).await?;
        println!(
            "POST /echo -> {status} {:?}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body, b"echo me");
        let req = Request::get(format!("{uri}nope"))
            .body(Full::default())
            .unwrap();
        let (status, _) = fetch(&mut client, req).await?;
        println!("GET /nope -> {status}");
        assert_eq!(status, StatusCode::NOT_FOUND);
        server.cancel();
        Ok(())
    })
}
