//! Choosing a backend: `COIL_DRIVER` parsing, forced choices, and the `Auto` fallback
//! when seccomp hides io_uring.
//!
//! Not run under Miri: they need io_uring, seccomp, /proc and child processes.
#![cfg(not(miri))]

mod support;

use std::io;
use std::thread;
use std::time::Duration;

use coil_arch::testing::{IO_URING_ENTER, IO_URING_REGISTER, IO_URING_SETUP, deny_io_uring};
use coil_arch::{Config, Driver, DriverChoice, DriverKind, ParseDriverChoiceError};
use support::{WATCHDOG, run_child, with_watchdog};

#[test]
fn parse_accepts_known_names() {
    let cases = [
        ("auto", DriverChoice::Auto),
        (" AUTO\n", DriverChoice::Auto),
        ("uring", DriverChoice::Uring),
        ("io_uring", DriverChoice::Uring),
        ("io-uring", DriverChoice::Uring),
        ("IO_Uring", DriverChoice::Uring),
        ("epoll", DriverChoice::Epoll),
        ("\tEPOLL ", DriverChoice::Epoll),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<DriverChoice>(), Ok(want), "parsing {text:?}");
    }
}

#[test]
fn parse_rejects_unknown_names() {
    for text in ["", " ", "xyz", "epol", "iouring", "uring epoll", "sim"] {
        assert!(text.parse::<DriverChoice>().is_err(), "{text:?} parsed");
    }
    let err: ParseDriverChoiceError = "xyz".parse::<DriverChoice>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid driver "xyz": expected one of auto, uring, epoll"#
    );
    let _: &dyn std::error::Error = &err;
}

#[test]
fn defaults() {
    assert_eq!(DriverChoice::default(), DriverChoice::Auto);
    assert_eq!(Config::default().uring_entries, 256);
    assert_eq!(DriverKind::Uring.to_string(), "io_uring");
    assert_eq!(DriverKind::Epoll.to_string(), "epoll");
}

/// `from_env` reads the process environment, which other test threads share, so each
/// case runs in a child process with `COIL_DRIVER` set (or removed) for it.
#[test]
fn from_env_reads_coil_driver() {
    const NAME: &str = "from_env_reads_coil_driver";
    if std::env::var(support::CHILD_ENV).as_deref() == Ok("from_env") {
        let want = std::env::var("COIL_TEST_EXPECT").unwrap();
        let got = match DriverChoice::from_env() {
            Ok(None) => "none".to_owned(),
            Ok(Some(choice)) => format!("{choice:?}"),
            Err(e) => format!("err: {e}"),
        };
        assert_eq!(
            got,
            want,
            "COIL_DRIVER={:?}",
            std::env::var_os("COIL_DRIVER")
        );
        return;
    }
    let cases: [(Option<&str>, &str); 7] = [
        (None, "none"),
        (Some(""), "none"),
        (Some("  "), "none"),
        (Some("auto"), "Auto"),
        (Some("io_uring"), "Uring"),
        (Some(" Epoll "), "Epoll"),
        (
            Some("bogus"),
            r#"err: invalid driver "bogus": expected one of auto, uring, epoll"#,
        ),
    ];
    for (value, expect) in cases {
        run_child(
            NAME,
            "from_env",
            &[("COIL_DRIVER", value), ("COIL_TEST_EXPECT", Some(expect))],
        );
    }
}

#[test]
fn forced_epoll_is_epoll() {
    let driver = Driver::new(DriverChoice::Epoll, &Config::default()).unwrap();
    assert_eq!(driver.kind(), DriverKind::Epoll);
    assert!(driver.fallback().is_none());
}

/// This machine (kernel 6.18) has a working io_uring.
#[test]
fn forced_uring_is_uring() {
    let driver = Driver::new(DriverChoice::Uring, &Config::default()).unwrap();
    assert_eq!(driver.kind(), DriverKind::Uring);
    assert!(driver.fallback().is_none());
}

#[test]
fn auto_picks_uring_here() {
    let driver = Driver::new(DriverChoice::Auto, &Config::default()).unwrap();
    assert_eq!(
        driver.kind(),
        DriverKind::Uring,
        "fell back: {:?}",
        driver.fallback()
    );
    assert!(driver.fallback().is_none());
}

#[test]
fn uring_entries_are_clamped_or_rejected() {
    let zero = Config {
        uring_entries: 0,
        ..Config::default()
    };
    for choice in [DriverChoice::Auto, DriverChoice::Uring, DriverChoice::Epoll] {
        let err = Driver::new(choice, &zero).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    // IORING_SETUP_CLAMP: far above the kernel's maximum still works.
    let huge = Config {
        uring_entries: u32::MAX,
        ..Config::default()
    };
    match Driver::new(DriverChoice::Uring, &huge) {
        Ok(driver) => assert_eq!(driver.kind(), DriverKind::Uring),
        // The clamped rings (32 768 SQ entries, twice as many CQEs) take ~3 MiB of
        // kernel memory; on a machine under memory pressure the kernel may answer
        // ENOMEM, which is returned as it is (seen on the shared CI machines). Any
        // other error, or an InvalidInput (no clamping), is a failure.
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOMEM), "{e}"),
    }
    let small = Config {
        uring_entries: 1,
        ..Config::default()
    };
    let mut driver = Driver::new(DriverChoice::Uring, &small).unwrap();
    driver.unparker().unpark();
    driver.park(Some(WATCHDOG)).unwrap();
}

/// What the drivers built under a seccomp filter looked like.
#[derive(Debug)]
struct Filtered {
    auto_kind: DriverKind,
    fallback_errno: Option<i32>,
    fallback_stage: &'static str,
    fallback_text: String,
    uring_err: Option<(Option<i32>, String)>,
}

/// Builds `Auto` and `Uring` drivers on a dedicated thread that seccomp denies
/// `syscalls` with `errno`. The fallback driver must also park and unpark.
fn under_filter(errno: i32, syscalls: &'static [i64]) -> Filtered {
    with_watchdog(WATCHDOG, "the filtered thread", move || {
        deny_io_uring(errno, syscalls).unwrap();
        let mut auto = Driver::new(DriverChoice::Auto, &Config::default()).unwrap();
        let reason = auto.fallback().cloned();
        auto.unparker().unpark();
        auto.park(Some(WATCHDOG)).unwrap();
        auto.park(Some(Duration::from_millis(1))).unwrap();
        let uring = Driver::new(DriverChoice::Uring, &Config::default());
        let reason = reason.expect("Auto fell back without a reason");
        Filtered {
            auto_kind: auto.kind(),
            fallback_errno: reason.errno(),
            fallback_stage: reason.stage(),
            fallback_text: reason.to_string(),
            uring_err: uring.err().map(|e| (e.raw_os_error(), e.to_string())),
        }
    })
}

#[test]
fn fallback_when_setup_gives_enosys() {
    let f = under_filter(libc::ENOSYS, &[IO_URING_SETUP]);
    assert_eq!(f.auto_kind, DriverKind::Epoll);
    assert_eq!(f.fallback_errno, Some(libc::ENOSYS));
    assert_eq!(f.fallback_stage, "io_uring_setup");
    assert_eq!(
        f.fallback_text,
        format!(
            "io_uring_setup failed: {}",
            io::Error::from_raw_os_error(libc::ENOSYS)
        )
    );
    let (errno, _) = f.uring_err.expect("forced Uring must fail");
    assert_eq!(errno, Some(libc::ENOSYS));
}

#[test]
fn fallback_when_setup_gives_eperm() {
    let f = under_filter(libc::EPERM, &[IO_URING_SETUP]);
    assert_eq!(f.auto_kind, DriverKind::Epoll);
    assert_eq!(f.fallback_errno, Some(libc::EPERM));
    assert_eq!(f.fallback_stage, "io_uring_setup");
    assert_eq!(
        f.fallback_text,
        "io_uring_setup failed: Operation not permitted (os error 1)"
    );
    let (errno, _) = f.uring_err.expect("forced Uring must fail");
    assert_eq!(errno, Some(libc::EPERM));
}

/// Setup works but every `io_uring_enter` fails: only the NOP probe can notice.
#[test]
fn fallback_when_enter_is_denied() {
    let f = under_filter(libc::ENOSYS, &[IO_URING_ENTER]);
    assert_eq!(f.auto_kind, DriverKind::Epoll);
    assert_eq!(f.fallback_errno, Some(libc::ENOSYS));
    assert!(
        f.fallback_stage.contains("enter"),
        "stage {:?}",
        f.fallback_stage
    );
    let (errno, _) = f.uring_err.expect("forced Uring must fail");
    assert_eq!(errno, Some(libc::ENOSYS));
}

/// Setup works but the opcode probe cannot be registered.
#[test]
fn fallback_when_register_is_denied() {
    let f = under_filter(libc::EPERM, &[IO_URING_REGISTER]);
    assert_eq!(f.auto_kind, DriverKind::Epoll);
    assert_eq!(f.fallback_errno, Some(libc::EPERM));
    assert_eq!(f.fallback_stage, "io_uring_register(probe)");
    let (errno, _) = f.uring_err.expect("forced Uring must fail");
    assert_eq!(errno, Some(libc::EPERM));
}

/// All three denied at once, as a container profile would.
#[test]
fn fallback_when_all_io_uring_calls_are_denied() {
    let f = under_filter(
        libc::EPERM,
        &[IO_URING_SETUP, IO_URING_ENTER, IO_URING_REGISTER],
    );
    assert_eq!(f.auto_kind, DriverKind::Epoll);
    assert_eq!(f.fallback_stage, "io_uring_setup");
}

/// The filter stays on its own thread: this one can still use io_uring afterwards.
#[test]
fn filter_does_not_leak_to_other_threads() {
    let f = under_filter(libc::ENOSYS, &[IO_URING_SETUP]);
    assert_eq!(f.auto_kind, DriverKind::Epoll);
    let driver = thread::spawn(|| Driver::new(DriverChoice::Auto, &Config::default()))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(driver.kind(), DriverKind::Uring);
}

#[test]
fn deny_io_uring_rejects_bad_input() {
    // Invalid input is rejected before anything is installed, but run it on a thread of
    // our own anyway.
    thread::spawn(|| {
        for errno in [0, -1, 4096] {
            let err = deny_io_uring(errno, &[IO_URING_SETUP]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "errno {errno}");
        }
        let err = deny_io_uring(libc::ENOSYS, &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = deny_io_uring(libc::ENOSYS, &[-1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // Nothing was installed.
        let driver = Driver::new(DriverChoice::Uring, &Config::default()).unwrap();
        assert_eq!(driver.kind(), DriverKind::Uring);
    })
    .join()
    .unwrap();
}
