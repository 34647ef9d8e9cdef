//! [`BufReader`] over arbitrary chunkings against `std::io::BufRead` on the
//! same bytes.

use std::cell::Cell;
use std::future::Future;
use std::io::{self, BufRead, Cursor, Read};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use coil::io::{AsyncReadOwned, BufReader, BufResult, IncompleteRead, IoBufMut, LimitOverrun};
use coil::stream::Stream;

use crate::Bytes;

/// What the reader does on one read, taken from the plan bytes in order;
/// once the plan is used up every read returns all that is left.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Return `Pending` (after waking the task), then take the next step.
    Pending,
    /// Fail with `Interrupted` (the reader must retry it unseen).
    Interrupted,
    /// Fail with an injected `Other` error (must reach the caller and consume
    /// nothing).
    Fail,
    /// Deliver up to this many bytes.
    Data(usize),
}

impl Step {
    fn from_byte(p: u8) -> Step {
        match p & 7 {
            0 => Step::Pending,
            1 => Step::Interrupted,
            2 => Step::Fail,
            _ => Step::Data(usize::from(p >> 3) + 1),
        }
    }
}

const INJECTED: &str = "fuzz: injected read error";

/// An in-memory stream with coil's owned-buffer read trait. `Ok(0)` only at
/// the end of the data (and from then on).
struct ChunkReader {
    data: Vec<u8>,
    pos: Cell<usize>,
    plan: Vec<u8>,
    step: Cell<usize>,
    /// Injected errors delivered and not yet seen by the checker.
    failed: Cell<usize>,
}

impl ChunkReader {
    fn next_step(&self) -> Step {
        let i = self.step.get();
        match self.plan.get(i) {
            Some(&p) => {
                self.step.set(i + 1);
                Step::from_byte(p)
            }
            None => Step::Data(usize::MAX),
        }
    }
}

struct ReadFut<'a, B> {
    reader: &'a ChunkReader,
    buf: Option<B>,
}

impl<B: IoBufMut> Future for ReadFut<'_, B> {
    type Output = BufResult<usize, B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let r = this.reader;
        let mut buf = this.buf.take().expect("ReadFut polled after completion");
        let res = match r.next_step() {
            Step::Pending => {
                this.buf = Some(buf);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Step::Interrupted => Err(io::ErrorKind::Interrupted.into()),
            Step::Fail => {
                r.failed.set(r.failed.get() + 1);
                Err(io::Error::other(INJECTED))
            }
            Step::Data(max) => {
                let init = buf.bytes_init();
                let at = r.pos.get();
                let n = max.min(buf.bytes_total() - init).min(r.data.len() - at);
                // SAFETY: n <= bytes_total - init, so the n bytes after `init`
                // are inside the writable allocation (IoBufMut's contract); the
                // source is our own Vec, a different allocation.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        r.data[at..].as_ptr(),
                        buf.stable_mut_ptr().add(init),
                        n,
                    );
                    buf.set_init(init + n);
                }
                r.pos.set(at + n);
                Ok(n)
            }
        };
        Poll::Ready(BufResult(res, buf))
    }
}

// No self-reference, and the buffer is only ever moved out whole.
impl<B> Unpin for ReadFut<'_, B> {}

impl AsyncReadOwned for ChunkReader {
    fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        ReadFut {
            reader: self,
            buf: Some(buf),
        }
    }
}

/// Records whether the future being driven asked to be woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls `fut` until it is ready; every `Pending` must come with a wake. With
/// `cancel`, drops it at its first `Pending` instead and returns `None`.
fn drive<F: Future>(fut: F, cancel: bool) -> Option<F::Output> {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return Some(v),
            Poll::Pending => {
                assert!(
                    flag.0.swap(false, Ordering::Relaxed),
                    "Pending without a wake: the task would hang"
                );
                if cancel {
                    return None;
                }
            }
        }
    }
}

/// The model: std's `BufRead` on a cursor over the same bytes.
struct Model {
    cur: Cursor<Vec<u8>>,
}

impl Model {
    fn rest(&self) -> &[u8] {
        let at = usize::try_from(self.cur.position()).expect("position fits");
        &self.cur.get_ref()[at..]
    }
}

/// Checks an error from coil: an injected one leaves everything as it was
/// (the caller then skips the model step); anything else must be `want`.
fn injected(r: &BufReader<ChunkReader>, e: &io::Error) -> bool {
    assert_ne!(
        e.kind(),
        io::ErrorKind::Interrupted,
        "Interrupted reached the caller"
    );
    if e.kind() == io::ErrorKind::Other && e.to_string() == INJECTED {
        let f = &r.get_ref().failed;
        assert!(f.get() > 0, "injected error reported twice");
        f.set(f.get() - 1);
        return true;
    }
    false
}

fn same_error(got: &io::Error, want: &io::Error, what: &str) {
    assert_eq!(got.kind(), want.kind(), "{what}: coil {got}, std {want}");
}

/// Whether the next record of `rest` (ending at `delim`, or at the end)
/// has more than `limit` bytes before its delimiter: coil must then fail
/// with a [`LimitOverrun`] and consume nothing.
fn over_limit(rest: &[u8], delim: u8, limit: usize) -> bool {
    match rest.iter().position(|&c| c == delim) {
        Some(at) => at > limit,
        None => rest.len() > limit,
    }
}

/// Checks coil's result for a record over the limit.
fn expect_overrun<T: std::fmt::Debug>(res: io::Result<T>, limit: usize, what: &str) {
    let e = res.expect_err(what);
    let over = LimitOverrun::of(&e).unwrap_or_else(|| panic!("{what}: {e}, not LimitOverrun"));
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert_eq!(over.limit(), limit, "{what}: limit");
    assert!(over.consumed() > limit, "{what}: {over:?}");
}

/// Bytes → capacity (1..=64), a limit (1..=64, or the default when the
/// byte's top bit is set), a read plan (chunk sizes, `Pending`,
/// `Interrupted`, injected errors), the stream's bytes, then a program of
/// `read_line`, `read_until`, `next_line`, `read_exact`, `read`,
/// `fill_buf`+`consume`, `read_to_end` and finally `lines()`, each possibly
/// cancelled at its first `Pending`. Every result is compared with std's
/// `BufRead` over the same bytes: same lines and records, same `InvalidData`
/// for a non-UTF-8 line (consumed, output unchanged), same end of stream;
/// a line or record of more than the limit before its delimiter is a
/// `LimitOverrun` that consumes nothing (std has no limit; `lines()` at the
/// end runs without one).
/// Where coil documents more than std (errors and cancellation consume
/// nothing, `read_exact` consumes nothing at a short end, `lines()` stops
/// after its first error) the model follows coil's documentation.
pub fn buf_reader_lines(data: &[u8]) {
    let mut b = Bytes(data);
    let Some(cap) = b.u8() else { return };
    let cap = usize::from(cap % 64) + 1;
    let limit = b
        .u8()
        .filter(|l| l & 0x80 == 0)
        .map(|l| usize::from(l) % 64 + 1);
    let plan_len = usize::from(b.u8().unwrap_or(0) % 64);
    let plan: Vec<u8> = (0..plan_len).map_while(|_| b.u8()).collect();
    let data_len = usize::from(b.u16().unwrap_or(0) % 1024);
    let bytes: Vec<u8> = (0..data_len).map_while(|_| b.u8()).collect();
    let reader = ChunkReader {
        data: bytes.clone(),
        pos: Cell::new(0),
        plan,
        step: Cell::new(0),
        failed: Cell::new(0),
    };
    let mut r = BufReader::with_capacity(cap, reader);
    if let Some(l) = limit {
        r.set_limit(l);
    }
    let limit = r.limit();
    let mut m = Model {
        cur: Cursor::new(bytes),
    };
    while let Some(op) = b.u8() {
        let cancel = op & 0x80 != 0;
        match op & 7 {
            0 => {
                let mut got = String::from("<");
                let Some(res) = drive(r.read_line(&mut got), cancel) else {
                    assert_eq!(got, "<", "a cancelled read_line appended");
                    continue;
                };
                let mut want = String::from("<");
                match res {
                    Err(e) if injected(&r, &e) => assert_eq!(got, "<"),
                    res if over_limit(m.rest(), b'\n', limit) => {
                        expect_overrun(res, limit, "read_line");
                        assert_eq!(got, "<", "read_line over the limit appended");
                    }
                    res => {
                        let w = m.cur.read_line(&mut want);
                        match (res, w) {
                            (Ok(n), Ok(wn)) => assert_eq!(n, wn, "read_line length"),
                            (Err(e), Err(we)) => same_error(&e, &we, "read_line"),
                            (res, w) => panic!("read_line: coil {res:?}, std {w:?}"),
                        }
                        assert_eq!(got, want, "read_line output");
                    }
                }
            }
            1 => {
                let delim = b.u8().unwrap_or(b'\n');
                let mut got = vec![b'<'];
                let Some(res) = drive(r.read_until(delim, &mut got), cancel) else {
                    assert_eq!(got, b"<", "a cancelled read_until appended");
                    continue;
                };
                match res {
                    Err(e) if injected(&r, &e) => assert_eq!(got, b"<"),
                    res if over_limit(m.rest(), delim, limit) => {
                        expect_overrun(res, limit, "read_until");
                        assert_eq!(got, b"<", "read_until over the limit appended");
                    }
                    res => {
                        let mut want = vec![b'<'];
                        let wn = m.cur.read_until(delim, &mut want).expect("cursor");
                        assert_eq!(res.expect("read_until"), wn, "read_until length");
                        assert_eq!(got, want, "read_until record (delimiter {delim})");
                    }
                }
            }
            2 => {
                let Some(res) = drive(r.next_line(), cancel) else {
                    continue;
                };
                match res {
                    Err(e) if injected(&r, &e) => {}
                    res if over_limit(m.rest(), b'\n', limit) => {
                        expect_overrun(res, limit, "next_line");
                    }
                    res => {
                        let w = (&mut m.cur).lines().next().transpose();
                        match (res, w) {
                            (Ok(l), Ok(wl)) => assert_eq!(l, wl, "next_line"),
                            (Err(e), Err(we)) => same_error(&e, &we, "next_line"),
                            (res, w) => panic!("next_line: coil {res:?}, std {w:?}"),
                        }
                    }
                }
            }
            3 => {
                let n = usize::from(b.u8().unwrap_or(0) % 64);
                let mut got = vec![0u8; n];
                let Some(res) = drive(r.read_exact(&mut got), cancel) else {
                    continue;
                };
                match res {
                    Err(e) if injected(&r, &e) => {}
                    Ok(()) => {
                        let mut want = vec![0u8; n];
                        m.cur.read_exact(&mut want).expect("std read_exact");
                        assert_eq!(got, want, "read_exact bytes");
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "read_exact: {e}");
                        assert!(m.rest().len() < n, "read_exact failed with enough bytes");
                        let inc = IncompleteRead::of(&e).expect("an IncompleteRead");
                        assert_eq!(inc.partial(), m.rest(), "read_exact partial bytes");
                        assert_eq!(inc.expected(), n, "read_exact expected count");
                    }
                }
            }
            4 => {
                let n = usize::from(b.u8().unwrap_or(0) % 64);
                let mut got = vec![0u8; n];
                let Some(res) = drive(r.read(&mut got), cancel) else {
                    continue;
                };
                match res {
                    Err(e) if injected(&r, &e) => {}
                    res => {
                        let k = res.expect("read");
                        let rest = m.rest();
                        assert!(k <= n, "read {k} into {n}");
                        assert_eq!(k == 0, n == 0 || rest.is_empty(), "read returned {k}");
                        assert_eq!(got[..k], rest[..k], "read bytes");
                        m.cur.consume(k);
                    }
                }
            }
            5 => {
                let want_take = b.u8().unwrap_or(0);
                let Some(res) = drive(r.fill_buf(), cancel) else {
                    continue;
                };
                let avail = res.map(<[u8]>::to_vec);
                let avail = match avail {
                    Err(e) if injected(&r, &e) => continue,
                    avail => avail.expect("fill_buf"),
                };
                let rest = m.rest();
                assert_eq!(avail.is_empty(), rest.is_empty(), "fill_buf at end");
                assert!(avail.len() <= rest.len());
                assert_eq!(avail, rest[..avail.len()], "fill_buf bytes");
                assert_eq!(r.buffer(), avail, "buffer()");
                let k = usize::from(want_take) % (avail.len() + 1);
                r.consume(k);
                m.cur.consume(k);
            }
            6 => {
                let mut got = vec![b'<'];
                let Some(res) = drive(r.read_to_end(&mut got), cancel) else {
                    assert_eq!(got, b"<");
                    continue;
                };
                match res {
                    Err(e) if injected(&r, &e) => assert_eq!(got, b"<"),
                    res => {
                        let mut want = vec![b'<'];
                        let wn = m.cur.read_to_end(&mut want).expect("cursor");
                        assert_eq!(res.expect("read_to_end"), wn);
                        assert_eq!(got, want, "read_to_end bytes");
                    }
                }
            }
            _ => break,
        }
    }
    r.set_limit(usize::MAX);
    check_lines(r, m);
}

/// `lines()` to its end: std's lines up to and including the first error
/// (std's iterator would go on after it; coil's stream ends there).
fn check_lines(r: BufReader<ChunkReader>, mut m: Model) {
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut lines = r.lines();
    let mut got: Vec<io::Result<String>> = Vec::new();
    loop {
        match Pin::new(&mut lines).poll_next(&mut cx) {
            // The reader woke us (it always does before `Pending`).
            Poll::Pending => {}
            Poll::Ready(None) => break,
            Poll::Ready(Some(l)) => got.push(l),
        }
    }
    assert!(
        matches!(Pin::new(&mut lines).poll_next(&mut cx), Poll::Ready(None)),
        "lines() yielded after its end"
    );
    let mut want = (&mut m.cur).lines();
    let n = got.len();
    for (i, g) in got.into_iter().enumerate() {
        if g.is_err() {
            assert_eq!(i + 1, n, "lines() yielded after an error");
        }
        match g {
            Err(e) if e.kind() == io::ErrorKind::Other && e.to_string() == INJECTED => return,
            Ok(l) => assert_eq!(
                Some(l),
                want.next()
                    .map(|w| w.expect("std saw an error, coil a line")),
                "line {i}"
            ),
            Err(e) => {
                let w = want.next().expect("coil saw an error past std's end");
                same_error(&e, &w.expect_err("std saw a line"), "lines()");
                return;
            }
        }
    }
    // Ended without an error: std must be at its end too.
    assert!(want.next().is_none(), "coil's lines() ended early");
}
