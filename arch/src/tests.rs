//! Runs natively and under Miri (which supports epoll, eventfd and threads but not
//! io_uring), so the epoll backend and the unpark protocol get Miri's checks.

use std::io;
use std::time::Duration;

use crate::{Config, Driver, DriverChoice, DriverKind};

#[test]
fn auto_fallback_under_miri_and_epoll_round_trip() {
    let auto = Driver::new(DriverChoice::Auto, &Config::default()).unwrap();
    if cfg!(miri) {
        assert_eq!(auto.kind(), DriverKind::Epoll);
        let reason = auto.fallback().unwrap();
        assert_eq!(reason.stage(), "io_uring_setup");
        assert_eq!(reason.errno(), None);
        let err = Driver::new(DriverChoice::Uring, &Config::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().starts_with("io_uring could not start: "));
    }
    drop(auto);

    let mut driver = Driver::new(DriverChoice::Epoll, &Config::default()).unwrap();
    let unparker = driver.unparker();
    driver.park(Some(Duration::ZERO)).unwrap();
    for _ in 0..10 {
        unparker.unpark();
    }
    driver.park(None).unwrap();
    driver.park(Some(Duration::from_millis(1))).unwrap();

    let remote = unparker.clone();
    let t = std::thread::spawn(move || remote.unpark());
    driver.park(None).unwrap();
    t.join().unwrap();
    drop(driver);
    unparker.unpark(); // the driver is gone: harmless
}
