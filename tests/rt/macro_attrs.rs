//! `#[coil::test]` in use: one runtime per test, each driver option, every
//! driver at once, return types, panics, the simulator and `crate = ".."`.
//! (`#[coil::main]` and the misuse errors are doctests on `coil::main` and
//! `coil::test`.)

use std::time::Duration;

use coil::runtime::{DriverChoice, DriverKind, stats};
use coil::time::{Instant, sleep};

/// The driver of the loop running this code.
fn driver() -> DriverKind {
    stats().expect("inside a runtime").driver
}

/// The kind `auto` and `COIL_DRIVER` pick on this machine, as `coil::run` does.
fn default_kind() -> DriverKind {
    coil::Runtime::new().expect("a runtime").driver().kind()
}

#[coil::test]
async fn runs_on_a_fresh_runtime_like_coil_run() {
    let s = stats().expect("the body runs inside a loop");
    assert_eq!(s.tasks, 0, "a fresh runtime: no task of another test");
    assert_eq!(s.driver, default_kind());
    let task = coil::spawn(async {
        sleep(Duration::from_millis(2)).await;
        21
    });
    assert_eq!(task.await.unwrap() * 2, 42);
}

#[coil::test]
async fn a_result_body_can_use_the_question_mark() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[coil::test]
#[should_panic(expected = "the body's own panic")]
async fn a_panic_in_the_body_fails_the_test() {
    coil::task::yield_now().await;
    panic!("the body's own panic");
}

#[coil::test(driver = "epoll")]
async fn driver_picks_one() {
    assert_eq!(driver(), DriverKind::Epoll);
}

#[coil::test(driver = "auto")]
async fn driver_auto_ignores_coil_driver() {
    let auto = coil::Runtime::builder()
        .driver(DriverChoice::Auto)
        .build()
        .unwrap();
    assert_eq!(driver(), auto.driver().kind());
}

/// Runs once under io_uring (`every_driver::uring`, skipped where io_uring
/// cannot start) and once under epoll (`every_driver::epoll`).
#[coil::test(drivers = "all")]
async fn every_driver() {
    // libtest runs each test on a thread named after it.
    let thread = std::thread::current();
    let name = thread.name().expect("libtest names test threads");
    let expected = match name.rsplit("::").next() {
        Some("uring") => DriverKind::Uring,
        Some("epoll") => DriverKind::Epoll,
        _ => panic!("not a test the macro wrote: {name}"),
    };
    assert_eq!(driver(), expected, "test {name}");
    sleep(Duration::from_millis(1)).await;
}

#[coil::test(drivers = "all")]
async fn every_driver_with_a_result() -> Result<(), String> {
    let t = coil::spawn(async { Err::<(), _>("from a task".to_string()) });
    assert_eq!(t.await.unwrap(), Err("from a task".to_string()));
    Ok(())
}

#[coil::test(drivers = "all")]
#[should_panic(expected = "on every driver")]
async fn every_driver_should_panic() {
    panic!("fails on every driver");
}

#[coil::test(driver = "sim", seed = 7)]
async fn sim_runs_on_virtual_time() {
    let seed = coil::sim::Builder::new().seed(7).effective_seed();
    assert_eq!(coil::sim::seed(), Some(seed));
    let start = Instant::now();
    sleep(Duration::from_secs(3600)).await;
    assert!(start.elapsed() >= Duration::from_secs(3600));
}

/// `crate = ".."` is the path the written code goes through (for coil under
/// another name): here a stand-in for coil's support module, which marks the
/// thread before it hands over to coil's.
mod renamed {
    use std::cell::Cell;

    thread_local! {
        static THROUGH_STAND_IN: Cell<bool> = const { Cell::new(false) };
    }

    mod __macro_support {
        pub(super) fn run<F: Future>(
            driver: Option<coil::runtime::DriverChoice>,
            future: F,
        ) -> F::Output {
            super::THROUGH_STAND_IN.set(true);
            coil::__macro_support::run(driver, future)
        }
    }

    #[coil::test(crate = "self")]
    async fn crate_is_the_path_the_code_goes_through() {
        assert!(THROUGH_STAND_IN.get(), "the code did not go through `self`");
        assert!(coil::runtime::stats().is_some());
    }
}

/// Where io_uring cannot start, the `uring` test of `drivers = "all"` skips
/// without running the body, or fails under `COIL_DRIVER=uring`.
#[test]
fn uring_test_skips_where_io_uring_is_denied() {
    crate::support::run_watched(|| {
        coil_arch::testing::deny_io_uring(libc::EPERM, &[libc::SYS_io_uring_setup])
            .expect("installing the seccomp filter");
        let required = DriverChoice::from_env() == Ok(Some(DriverChoice::Uring));
        let run = std::panic::catch_unwind(|| {
            coil::__macro_support::run_uring_or_skip("denied::uring", || async {
                panic!("the body must not run without io_uring")
            })
        });
        match run {
            Ok(outcome) => {
                assert!(!required, "COIL_DRIVER=uring: a skip must fail");
                assert!(matches!(outcome, coil::__macro_support::Outcome::Skipped));
            }
            Err(panic) => {
                let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(
                    required && msg.contains("COIL_DRIVER=uring requires it"),
                    "{msg}"
                );
            }
        }
    });
}

/// A skipped `uring` test that returns a `Result` passes; one that ran keeps
/// its own result.
#[test]
fn a_skip_reports_success_and_a_ran_test_its_result() {
    use coil::__macro_support::Outcome;
    use std::process::{ExitCode, Termination};

    assert_eq!(
        Outcome::<Result<(), String>>::Skipped.report(),
        ExitCode::SUCCESS
    );
    assert_eq!(
        Outcome::Ran(Ok::<(), String>(())).report(),
        ExitCode::SUCCESS
    );
    assert_ne!(
        Outcome::Ran(Err::<(), _>("failed")).report(),
        ExitCode::SUCCESS
    );
}

// Found by review: `drivers = "all"` used to move the body into the generated
// module, so these failed to compile (E0425, E0308).

fn paths_helper() -> u32 {
    1
}

/// `super::` in a `drivers = "all"` body names the module it was written in.
mod macro_paths {
    #[coil::test]
    async fn super_path_single_driver() {
        assert_eq!(super::paths_helper(), 1);
    }

    #[coil::test(drivers = "all")]
    async fn super_path_every_driver() {
        assert_eq!(super::paths_helper(), 1);
    }
}

/// A helper called `epoll` is not shadowed by the generated test fns.
mod named_like_a_variant {
    fn epoll() -> u32 {
        2
    }

    #[coil::test(drivers = "all")]
    async fn helper_named_epoll() {
        assert_eq!(epoll(), 2);
    }
}

/// Found by review: where io_uring cannot start, the `uring` variant of a
/// `drivers = "all"` + `#[should_panic]` test used to skip by returning, which
/// fails a should_panic test. Runs that variant in a child process that
/// inherits a seccomp filter denying io_uring_setup (Docker's default profile
/// is such a place).
#[test]
fn drivers_all_should_panic_passes_where_io_uring_is_denied() {
    let exe = std::env::current_exe().unwrap();
    crate::support::run_watched(move || {
        coil_arch::testing::deny_io_uring(libc::EPERM, &[libc::SYS_io_uring_setup])
            .expect("installing the seccomp filter");
        let out = std::process::Command::new(exe)
            .args([
                "macro_attrs::every_driver_should_panic::uring",
                "--exact",
                "--test-threads=1",
            ])
            .env_remove("COIL_DRIVER")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("1 passed") || stdout.contains("1 failed"),
            "{stdout}"
        );
        assert!(
            out.status.success(),
            "the skipped uring variant of a should_panic test failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
