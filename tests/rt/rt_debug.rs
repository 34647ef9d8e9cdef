//! Debug mode (`runtime::Builder::debug`, `COIL_DEBUG=1`): a task poll that
//! holds the loop past the threshold is reported, naming the task, as
//! asyncio's debug mode reports slow callbacks (issue 17 item 1).

use crate::support;

use std::sync::Mutex;
use std::time::Duration;

use coil::runtime::Builder;

/// Every report of every runtime of this binary (tests run side by side, so
/// each looks for its own task names).
static REPORTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn collect(line: &str) {
    REPORTS.lock().unwrap().push(line.to_owned());
}

fn reports_naming(name: &str) -> Vec<String> {
    let quoted = format!("{name:?}");
    REPORTS
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&quoted))
        .cloned()
        .collect()
}

/// A task name no other test of this binary uses.
fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "{what}-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

fn spawn_named<F: std::future::Future + 'static>(name: &str, f: F) -> coil::Task<F::Output> {
    coil::task::Builder::new().name(name).spawn(f)
}

driver_test! {
    fn a_poll_past_the_threshold_is_reported_with_the_task_name(rt) {
        let tag = unique("blocker");
        let quick = unique("quick");
        let debug_rt = Builder::new()
            .driver(support::choice_like(rt))
            .debug(true)
            .slow_poll_threshold(Duration::from_millis(30))
            .debug_sink(collect)
            .build()
            .unwrap();
        debug_rt.block_on(async {
            // The blocking call under test: it holds the loop for 40 ms.
            spawn_named(&tag, async { std::thread::sleep(Duration::from_millis(40)) })
                .await
                .unwrap();
            for _ in 0..10 {
                spawn_named(&quick, coil::task::yield_now()).await.unwrap();
            }
        });
        let got = reports_naming(&tag);
        assert_eq!(got.len(), 1, "one report for the one slow poll: {got:?}");
        assert!(got[0].contains("held the loop for") && got[0].contains("threshold 30 ms"), "{}", got[0]);
        assert!(reports_naming(&quick).is_empty(), "quick polls are not reported");
    }

    fn no_report_without_debug_mode(rt) {
        let tag = unique("silent");
        let plain_rt = Builder::new()
            .driver(support::choice_like(rt))
            .debug(false)
            .slow_poll_threshold(Duration::from_millis(1))
            .debug_sink(collect)
            .build()
            .unwrap();
        plain_rt.block_on(async {
            spawn_named(&tag, async { std::thread::sleep(Duration::from_millis(5)) })
                .await
                .unwrap();
        });
        assert!(reports_naming(&tag).is_empty(), "debug mode is off");
    }
}
