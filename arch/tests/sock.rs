//! `coil_arch::sock`: the same calls reach the kernel or the simulator by
//! the fd they are given, and a simulator socket away from its simulator
//! gets `EBADF`.

use std::io;
use std::net::SocketAddr;

use coil_arch::op::SockAddr;
use coil_arch::sim::{SimConfig, is_virtual_fd};
use coil_arch::{Config, Driver, DriverChoice, sock};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Runs the calls of a TCP listener's setup on `driver`; returns its fd.
fn listener(mut driver: Option<&mut Driver>) -> io::Result<i32> {
    let fd = sock::socket(
        driver.as_deref_mut(),
        libc::AF_INET,
        libc::SOCK_STREAM,
        true,
    )?;
    sock::set_int_opt(
        driver.as_deref_mut(),
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        1,
    )?;
    assert_eq!(
        sock::get_int_opt(
            driver.as_deref_mut(),
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR
        )?,
        1
    );
    sock::bind(driver.as_deref_mut(), fd, local())?;
    sock::listen(driver.as_deref_mut(), fd, 16)?;
    let addr = sock::local_addr(driver.as_deref_mut(), fd)?;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let err = sock::peer_addr(driver, fd).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN));
    Ok(fd)
}

fn ebadf(r: io::Result<impl std::fmt::Debug>) {
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn kernel_sockets_with_or_without_a_driver() {
    let fd = listener(None).unwrap();
    assert!(!is_virtual_fd(fd));
    // SAFETY: ours, nothing pending.
    unsafe { sock::close(fd) };

    let mut epoll = Driver::new(DriverChoice::Epoll, &Config::default()).unwrap();
    let fd = listener(Some(&mut epoll)).unwrap();
    assert!(!is_virtual_fd(fd));
    // SAFETY: as above.
    unsafe { sock::close(fd) };
}

#[test]
fn simulator_sockets_live_in_their_simulator() {
    let mut sim = Driver::sim(SimConfig::default()).unwrap();
    let fd = listener(Some(&mut sim)).unwrap();
    assert!(is_virtual_fd(fd));
    assert_eq!(sim.as_sim().unwrap().open_sockets(), 1);

    // The same fd away from its simulator: the kernel's answer for an fd it
    // does not know.
    let mut epoll = Driver::new(DriverChoice::Epoll, &Config::default()).unwrap();
    ebadf(sock::local_addr(None, fd));
    ebadf(sock::local_addr(Some(&mut epoll), fd));
    ebadf(sock::set_int_opt(
        None,
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        0,
    ));

    // Close leaves a virtual fd to the simulator, which closes it on release.
    // SAFETY: ours, nothing pending.
    unsafe { sock::close(fd) };
    assert_eq!(sim.as_sim().unwrap().open_sockets(), 1);
    sim.release_fd(fd);
    assert_eq!(sim.as_sim().unwrap().open_sockets(), 0);
}

#[test]
fn simulator_models_udp_and_leaves_unix_sockets_to_the_kernel() {
    let mut sim = Driver::sim(SimConfig::default()).unwrap();
    let udp = sock::socket(Some(&mut sim), libc::AF_INET6, libc::SOCK_DGRAM, true).unwrap();
    assert!(is_virtual_fd(udp));
    let peer: SocketAddr = "[::1]:9".parse().unwrap();
    sock::connect_dgram(Some(&mut sim), udp, &SockAddr::from_std(peer)).unwrap();
    assert_eq!(sock::peer_addr(Some(&mut sim), udp).unwrap(), peer);
    ebadf(sock::connect_dgram(None, udp, &SockAddr::from_std(peer)));

    let unix = sock::socket(Some(&mut sim), libc::AF_UNIX, libc::SOCK_DGRAM, true).unwrap();
    assert!(!is_virtual_fd(unix));
    // SAFETY: ours, nothing pending.
    unsafe { sock::close(unix) };
}
