//! [`select!`](crate::select!): wait on several futures at once, run the
//! handler of the first whose output matches its pattern, drop the others.
//! (The parsing and expansion are the hidden `__select!`, below.)

/// Waits on several futures at once in the current task and runs the handler
/// of the first one to finish with an output that matches its pattern; the
/// other futures are dropped (cancelled) before that handler runs. tokio's
/// `select!`; asyncio's nearest is `asyncio.wait(aws,
/// return_when=FIRST_COMPLETED)` followed by cancelling what is pending.
///
/// ```text
/// coil::select! {
///     biased;                                        // optional: poll in written order
///     pattern = future => handler,                   // a branch
///     pattern = future, if condition => handler,     // a branch with a precondition
///     else => expression,                            // optional, last: every branch disabled
/// }
/// ```
///
/// `select!` is an expression that awaits by itself, so it is written inside
/// an `async` block or function; its value is the value of the handler that
/// ran (every handler, and `else`, has the same type). Handlers are plain
/// code of the enclosing function: `break`, `continue`, `return`, `?` and
/// `.await` in them act on the function and its loops, not on the select.
/// A handler is an expression followed by a comma, or a block (the comma is
/// then optional). Up to 64 branches.
///
/// **What happens, in order.**
/// 1. Each precondition (`, if condition`) is evaluated, in written order; a
///    branch whose condition is false is *disabled*.
/// 2. Each future expression is evaluated, disabled branches included (their
///    futures are created, never polled, and dropped with the rest).
/// 3. The enabled futures are polled, all of them on each wake of the task,
///    until one finishes. If its output matches the branch's pattern, that
///    branch wins. If not (say `Some(v) = rx.recv()` got `None`), the branch
///    is disabled and the select goes on with the others.
/// 4. Every future is dropped, the losers included; then the winner's pattern
///    binds its output and its handler runs. If every branch is disabled
///    instead, the `else` expression is the value; without an `else`,
///    `select!` panics.
///
/// **Fairness without randomness.** Among futures that are ready at the same
/// poll, the one polled first wins. Without `biased;` the branch polled first
/// rotates: each poll of a `select!` starts one branch further along than the
/// previous poll of the same `select!` (the same place in the code) on the
/// same thread, so a `select!` in a loop whose branches are always ready gives
/// each its turn. There is no random number generator (tokio uses one): runs
/// repeat exactly, and a simulation (`coil::sim`) stays deterministic. With
/// `biased;` first, the branches are polled in written order on every poll:
/// put the branch that must win ties (a shutdown signal) first.
///
/// **Futures given by value or by `&mut`.** A future expression is moved
/// into the select and dropped when it ends, finished or not: a fresh
/// `rx.recv()` or `stream.read(buf)` each time round a loop is the usual
/// case. To keep a future across selects (a deadline for a whole loop), give
/// `&mut fut` instead: it is polled through the reference and survives the
/// select. That needs `fut` to be [`Unpin`], or pinned first
/// (`let mut fut = std::pin::pin!(fut);` then `&mut fut`). Any
/// [`IntoFuture`](std::future::IntoFuture) works (`&mut task` polls a
/// [`Task`](crate::Task) handle without consuming it).
///
/// **Cancellation is dropping, and coil's I/O loses nothing to it.** A
/// losing read, accept or receive is dropped mid-flight; coil's ops are
/// lossless (see [`combinators`](crate::combinators)): bytes the kernel
/// delivered for a dropped read go to the stream's stash and the next read
/// returns them, so `select!`ing a read against a timer in a loop never
/// drops data. (A losing future's own state, such as a half-built message in
/// an `async` block, is dropped with it, as in any cancellation.)
///
/// ```
/// use std::time::Duration;
/// use coil::queue::Queue;
/// use coil::time::sleep;
///
/// coil::run(async {
///     let queue = Queue::new(0); // unbounded
///     let producer = queue.clone();
///     coil::spawn(async move {
///         for i in 1..=3 {
///             producer.put(i).await.unwrap();
///         }
///         producer.shutdown(false); // `get` returns Err once the queue is empty
///     });
///     // One deadline for the whole loop: pinned, and given as `&mut`.
///     let mut deadline = std::pin::pin!(sleep(Duration::from_secs(10)));
///     let mut got = Vec::new();
///     loop {
///         coil::select! {
///             item = queue.get() => match item {
///                 Ok(item) => got.push(item),
///                 Err(_shut_down) => break,
///             },
///             () = &mut deadline => panic!("the producer took 10 s"),
///         }
///     }
///     assert_eq!(got, [1, 2, 3]);
/// });
/// ```
///
/// Pattern refutation, preconditions and `else`:
///
/// ```
/// coil::run(async {
///     let mut a = Some(1);
///     let mut b = Some(2);
///     let mut sum = 0;
///     loop {
///         sum += coil::select! {
///             biased;
///             // `None` does not match `Some(v)`: that branch is disabled, the
///             // select goes on with the other one.
///             Some(v) = async { a.take() } => v,
///             Some(v) = async { b.take() }, if sum < 100 => v,
///             else => break,
///         };
///     }
///     assert_eq!(sum, 3);
/// });
/// ```
///
/// A select needs a branch, and each branch needs `=>`:
///
/// ```compile_fail
/// coil::run(async {
///     coil::select! {}
/// });
/// ```
///
/// ```compile_fail
/// coil::run(async {
///     coil::select! {
///         v = async { 1 } v + 1,
///     }
/// });
/// ```
#[macro_export]
macro_rules! select {
    () => {
        ::core::compile_error!(
            "coil::select! needs at least one branch: `pattern = future => handler,`"
        )
    };
    (biased; $($branches:tt)*) => {
        $crate::__select!(@parse (true) [0] () [] $($branches)*)
    };
    ($($branches:tt)*) => {
        $crate::__select!(@parse (false) [0] () [] $($branches)*)
    };
}

/// The expansion of [`select!`](crate::select!). Not API.
///
/// `@parse` reads one branch at a time into `[ (skip) (index) (pattern)
/// (future) (condition) (handler) ]`, where `skip` is a `_` per earlier branch
/// (to pick the branch's field out of a tuple, as `__join!` does) and `index`
/// is `0 + 1 + ..`; `@expand` writes the select.
#[doc(hidden)]
#[macro_export]
macro_rules! __select {
    // Nothing (left) to read.
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) []) => {
        ::core::compile_error!(
            "coil::select! needs at least one branch: `pattern = future => handler,`"
        )
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [] else => $($rest:tt)*) => {
        ::core::compile_error!(
            "coil::select! needs at least one branch besides `else`: `pattern = future => handler,`"
        )
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)+]) => {
        $crate::__select!(@expand ($biased) () [$($branch)+])
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)+] else => $else:expr $(,)?) => {
        $crate::__select!(@expand ($biased) ($else) [$($branch)+])
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*] else => $($rest:tt)*) => {
        ::core::compile_error!(
            "coil::select!: `else => expression` must be the last branch"
        )
    };
    // A branch with a precondition.
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*]
        $p:pat = $f:expr, if $c:expr => $h:block $(, $($rest:tt)*)?) => {
        $crate::__select!(@parse ($biased) [$($idx)* + 1] ($($skip)* _)
            [$($branch)* [($($skip)*) ($($idx)*) ($p) ($f) ($c) ($h)]] $($($rest)*)?)
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*]
        $p:pat = $f:expr, if $c:expr => $h:block $($rest:tt)*) => {
        $crate::__select!(@parse ($biased) [$($idx)* + 1] ($($skip)* _)
            [$($branch)* [($($skip)*) ($($idx)*) ($p) ($f) ($c) ($h)]] $($rest)*)
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*]
        $p:pat = $f:expr, if $c:expr => $h:expr $(, $($rest:tt)*)?) => {
        $crate::__select!(@parse ($biased) [$($idx)* + 1] ($($skip)* _)
            [$($branch)* [($($skip)*) ($($idx)*) ($p) ($f) ($c) ($h)]] $($($rest)*)?)
    };
    // A branch without one.
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*]
        $p:pat = $f:expr => $h:block $(, $($rest:tt)*)?) => {
        $crate::__select!(@parse ($biased) [$($idx)* + 1] ($($skip)* _)
            [$($branch)* [($($skip)*) ($($idx)*) ($p) ($f) (true) ($h)]] $($($rest)*)?)
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*]
        $p:pat = $f:expr => $h:block $($rest:tt)*) => {
        $crate::__select!(@parse ($biased) [$($idx)* + 1] ($($skip)* _)
            [$($branch)* [($($skip)*) ($($idx)*) ($p) ($f) (true) ($h)]] $($rest)*)
    };
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*]
        $p:pat = $f:expr => $h:expr $(, $($rest:tt)*)?) => {
        $crate::__select!(@parse ($biased) [$($idx)* + 1] ($($skip)* _)
            [$($branch)* [($($skip)*) ($($idx)*) ($p) ($f) (true) ($h)]] $($($rest)*)?)
    };
    // Anything else is a malformed branch.
    (@parse ($biased:tt) [$($idx:tt)*] ($($skip:tt)*) [$($branch:tt)*] $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "coil::select!: expected a branch `pattern = future => handler,` (or ",
            "`pattern = future, if condition => handler,`, or a last `else => expression`), found `",
            ::core::stringify!($($rest)+),
            "`"
        ))
    };

    (@expand ($biased:tt) ($($else:tt)*) [$(
        [($($skip:tt)*) ($($idx:tt)*) ($($p:tt)*) ($($f:tt)*) ($($c:tt)*) ($($h:tt)*)]
    )+]) => {{
        const {
            ::core::assert!(
                [$($($idx)*),+].len() <= 64,
                "coil::select! takes at most 64 branches"
            )
        };
        // Bit i set: branch i is disabled (its precondition was false, its
        // future finished, or its output did not match its pattern).
        let mut disabled: u64 = 0;
        $(
            if !$($c)* {
                disabled |= 1u64 << ($($idx)*);
            }
        )+
        // The futures live in this block only: they are all dropped before
        // the winner's handler runs.
        let (won, outputs) = {
            let futures = ($(::core::future::IntoFuture::into_future($($f)*),)+);
            let mut futures = ($(::core::pin::pin!({
                let ($($skip,)* fut, ..) = futures;
                fut
            }),)+);
            let mut outputs = ($($crate::__select!(@none $($idx)*),)+);
            let won: usize = ::core::future::poll_fn(|cx| $crate::__macro_support::await_node("select", || {
                let branches: usize = [$($($idx)*),+].len();
                let start = $crate::__select!(@start $biased) % branches;
                let mut waiting = false;
                // Pass 0 polls the branches from `start` on, pass 1 those
                // before it.
                for pass in 0..2 {
                    $({
                        let i: usize = $($idx)*;
                        if (i >= start) == (pass == 0) && disabled & (1u64 << i) == 0 {
                            let ($($skip,)* fut, ..) = &mut futures;
                            match ::core::future::Future::poll(fut.as_mut(), cx) {
                                ::core::task::Poll::Pending => waiting = true,
                                ::core::task::Poll::Ready(out) => {
                                    disabled |= 1u64 << i;
                                    #[allow(unused_variables, unreachable_patterns)]
                                    let matched = match &out {
                                        $crate::__macro_support::select_pattern!($($p)*) => true,
                                        _ => false,
                                    };
                                    if matched {
                                        let ($($skip,)* slot, ..) = &mut outputs;
                                        *slot = ::core::option::Option::Some(out);
                                        return ::core::task::Poll::Ready(i);
                                    }
                                }
                            }
                        }
                    })+
                }
                if waiting {
                    ::core::task::Poll::Pending
                } else {
                    // Every branch is disabled.
                    ::core::task::Poll::Ready(branches)
                }
            }))
            .await;
            (won, outputs)
        };
        $(
            if won == $($idx)* {
                let ($($skip,)* out, ..) = outputs;
                match out {
                    ::core::option::Option::Some($($p)*) => $($h)*,
                    _ => ::core::unreachable!("coil::select!: the winner's output was checked"),
                }
            } else
        )+ {
            $crate::__select!(@else $($else)*)
        }
    }};

    (@none $($idx:tt)*) => {
        ::core::option::Option::None
    };
    (@start true) => {
        0usize
    };
    // One counter per `select!` in the code and per thread: each poll starts
    // one branch further along than the previous one.
    (@start false) => {{
        ::std::thread_local! {
            static ROTATION: ::core::cell::Cell<usize> = const { ::core::cell::Cell::new(0) };
        }
        ROTATION.with(|r| {
            let start = r.get();
            r.set(start.wrapping_add(1));
            start
        })
    }};
    (@else) => {
        ::core::panic!("coil::select!: every branch is disabled and there is no `else` branch")
    };
    (@else $($else:tt)+) => {
        $($else)+
    };
}
