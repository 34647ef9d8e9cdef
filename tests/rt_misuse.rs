//! Misuse panics with a sentence that says what to do.

mod support;

use coil::Handle;
use support::panic_message_of;

#[test]
fn spawn_outside_runtime() {
    let msg = panic_message_of(|| coil::spawn(async {}));
    assert!(msg.contains("outside a coil runtime"), "{msg}");
    assert!(msg.contains("coil::run"), "says what to do: {msg}");
}

/// Where the last panic on this thread was raised (file:line), recorded by a
/// hook installed once that then hands the panic to the previous hook.
fn panic_location_of<R>(f: impl FnOnce() -> R) -> String {
    use std::cell::RefCell;
    use std::sync::Once;
    thread_local! {
        static LAST: RefCell<String> = const { RefCell::new(String::new()) };
    }
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                LAST.with(|last| *last.borrow_mut() = format!("{}:{}", l.file(), l.line()));
            }
            previous(info);
        }));
    });
    let _ = panic_message_of(f);
    LAST.with(|last| last.borrow().clone())
}

/// Misuse panics name the caller's line (`#[track_caller]` all the way
/// down), not a line inside coil.
#[test]
fn misuse_panics_point_at_the_callers_line() {
    let line = line!() + 1;
    let at = panic_location_of(|| coil::spawn(async {}));
    assert_eq!(at, format!("{}:{line}", file!()), "coil::spawn");
    let rt = coil::Runtime::new().unwrap();
    let at = rt.block_on(async {
        let inner = coil::Runtime::new().unwrap();
        let line = line!() + 1;
        let at = panic_location_of(move || inner.block_on(async {}));
        (at, line)
    });
    assert_eq!(at.0, format!("{}:{}", file!(), at.1), "Runtime::block_on");
    let line = line!() + 1;
    let at = panic_location_of(|| coil::run(async { coil::run(async {}) }));
    assert!(
        at.starts_with(file!()),
        "coil::run inside a loop: {at} (line {line})"
    );
}

#[test]
fn run_inside_running_loop() {
    let msg = coil::run(async {
        let t = coil::spawn(async { coil::run(async {}) });
        support::panic_msg(&*t.await.unwrap_err().into_panic())
    });
    assert!(
        msg.contains("cannot be called from a running event loop"),
        "{msg}"
    );
}

#[test]
fn block_on_inside_running_loop() {
    let msg = coil::run(async {
        let rt = coil::Runtime::new().unwrap();
        let t = coil::spawn(async move { rt.block_on(async {}) });
        support::panic_msg(&*t.await.unwrap_err().into_panic())
    });
    assert!(
        msg.contains("cannot be called from a running event loop"),
        "{msg}"
    );
}

#[test]
fn handle_current_outside() {
    let msg = panic_message_of(Handle::current);
    assert!(msg.contains("no coil event loop"), "{msg}");
    assert!(Handle::try_current().is_err());
}

#[test]
fn sleep_polled_outside_runtime() {
    let msg = panic_message_of(|| {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut s = coil::time::sleep(std::time::Duration::from_secs(1));
        let _ = std::future::Future::poll(std::pin::Pin::new(&mut s), &mut cx);
    });
    assert!(msg.contains("outside a coil runtime"), "{msg}");
}

#[test]
fn invalid_coil_driver_env_is_an_error() {
    // Run in a child process: environment variables are process-wide.
    if std::env::var_os("COIL_MISUSE_CHILD").is_some() {
        let err = coil::Runtime::new().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("COIL_DRIVER"), "{err}");
        assert!(err.to_string().contains("expected one of"), "{err}");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "invalid_coil_driver_env_is_an_error",
            "--nocapture",
        ])
        .env("COIL_MISUSE_CHILD", "1")
        .env("COIL_DRIVER", "kqueue")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn coil_driver_env_selects_driver() {
    if let Some(want) = std::env::var_os("COIL_MISUSE_CHILD_DRIVER") {
        let rt = coil::Runtime::new().unwrap();
        assert_eq!(rt.driver().kind().to_string(), want.to_str().unwrap());
        return;
    }
    for (env, want) in [
        ("epoll", "epoll"),
        ("uring", "io_uring"),
        ("auto", "io_uring"),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "coil_driver_env_selects_driver", "--nocapture"])
            .env("COIL_MISUSE_CHILD_DRIVER", want)
            .env("COIL_DRIVER", env)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{env}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn forced_uring_denied_is_an_error_not_a_fallback() {
    support::run_watched(|| {
        coil_arch::testing::deny_io_uring(libc::EPERM, &[libc::SYS_io_uring_setup]).unwrap();
        let err = coil::Runtime::builder()
            .driver(coil::runtime::DriverChoice::Uring)
            .build()
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        // `Auto` explicitly: the default choice reads `COIL_DRIVER`, and a
        // forced driver never falls back (docs/drivers.md).
        let rt = coil::Runtime::builder()
            .driver(coil::runtime::DriverChoice::Auto)
            .build()
            .unwrap();
        assert_eq!(rt.driver().kind(), coil::runtime::DriverKind::Epoll);
        assert_eq!(
            rt.driver().fallback_reason().unwrap().errno(),
            Some(libc::EPERM)
        );
        assert!(rt.driver().to_string().contains("epoll"));
    });
}

#[test]
fn task_polled_after_output_taken_panics_clearly() {
    let msg = coil::run(async {
        let mut t = coil::spawn(async { 1 });
        while !t.is_finished() {
            coil::task::yield_now().await;
        }
        assert_eq!(t.try_take().unwrap().unwrap(), 1);
        let r = coil::spawn(async move { (&mut t).await.ok() }).await;
        support::panic_msg(&*r.unwrap_err().into_panic())
    });
    assert!(msg.contains("awaited only once"), "{msg}");
}
