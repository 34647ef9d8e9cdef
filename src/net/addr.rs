//! [`ToSocketAddrs`]: addresses, and host names resolved without blocking the loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Something that names one or more socket addresses.
///
/// Literal addresses (`SocketAddr`, `"127.0.0.1:80"`, `("::1", 80)`) resolve
/// at once. Host names (`"localhost:8080"`) are resolved with the system
/// resolver on the blocking pool ([`crate::blocking::spawn_blocking`]), so the
/// event loop never blocks on DNS.
pub trait ToSocketAddrs {
    /// Internal: literal addresses, or a host name to resolve.
    #[doc(hidden)]
    fn to_resolve(self) -> Resolve;
}

/// Internal: what [`ToSocketAddrs`] produces.
#[doc(hidden)]
#[derive(Debug)]
pub enum Resolve {
    /// Known addresses.
    Ready(io::Result<Vec<SocketAddr>>),
    /// `host:port` for the system resolver.
    Lookup(String),
}

impl Resolve {
    pub(crate) async fn resolve(self) -> io::Result<Vec<SocketAddr>> {
        let addrs = match self {
            Resolve::Ready(r) => r?,
            Resolve::Lookup(name) => crate::blocking::spawn_blocking(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&name).map(Iterator::collect)
            })
            .await
            .map_err(io::Error::from)??,
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolved to no socket address",
            ));
        }
        Ok(addrs)
    }
}

impl ToSocketAddrs for SocketAddr {
    fn to_resolve(self) -> Resolve {
        Resolve::Ready(Ok(vec![self]))
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn to_resolve(self) -> Resolve {
        SocketAddr::V4(self).to_resolve()
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn to_resolve(self) -> Resolve {
        SocketAddr::V6(self).to_resolve()
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn to_resolve(self) -> Resolve {
        SocketAddr::from(self).to_resolve()
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn to_resolve(self) -> Resolve {
        SocketAddr::from(self).to_resolve()
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn to_resolve(self) -> Resolve {
        SocketAddr::from(self).to_resolve()
    }
}

impl ToSocketAddrs for &[SocketAddr] {
    fn to_resolve(self) -> Resolve {
        Resolve::Ready(Ok(self.to_vec()))
    }
}

impl ToSocketAddrs for &str {
    fn to_resolve(self) -> Resolve {
        match self.parse::<SocketAddr>() {
            Ok(a) => a.to_resolve(),
            Err(_) if self.rsplit_once(':').is_some() => Resolve::Lookup(self.to_owned()),
            Err(_) => Resolve::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid socket address {self:?}: expected host:port"),
            ))),
        }
    }
}

impl ToSocketAddrs for String {
    fn to_resolve(self) -> Resolve {
        self.as_str().to_resolve()
    }
}

impl ToSocketAddrs for &String {
    fn to_resolve(self) -> Resolve {
        self.as_str().to_resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn to_resolve(self) -> Resolve {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => (ip, self.1).to_resolve(),
            Err(_) => Resolve::Lookup(format!("{}:{}", self.0, self.1)),
        }
    }
}

impl ToSocketAddrs for (String, u16) {
    fn to_resolve(self) -> Resolve {
        (self.0.as_str(), self.1).to_resolve()
    }
}
