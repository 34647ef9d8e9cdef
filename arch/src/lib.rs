//! coil-arch
