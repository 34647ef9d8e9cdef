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
//! - `POST /echo` answers with the request's body;
//! - anything else is a 404.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use coil::compat::{Compat, HyperTimer};
use coil::net::{TcpListener, TcpStream};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
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

/// Every data frame of `body`, concatenated.
pub(crate) async fn collect(mut body: Incoming) -> hyper::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The service: `GET /`, `POST /echo`, 404 otherwise (also what the tokio
/// peer in `benches/examples/hyper_tokio.rs` serves).
pub(crate) async fn handle(req: Request<Incoming>) -> hyper::Result<Response<Full>> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Response::new(Full::new("Hello, World!")),
        (&Method::POST, "/echo") => Response::new(Full::new(collect(req.into_body()).await?)),
        _ => {
            let mut r = Response::new(Full::new("not found"));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
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

/// Accepts connections forever, each served by a task of its own.
pub(crate) async fn serve_forever(listener: TcpListener) -> io::Result<()> {
    loop {
        let (conn, _) = listener.accept().await?;
        conn.set_nodelay(true)?;
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
