//! Crate-private macros used by more than one top-level module.
//!
//! [`error_impls!`](error_impls) writes the `Display` and `std::error::Error`
//! impls of the small error types of `sync`, `queue` and `time`, so that each
//! type states only its messages.

/// `Display` (one fixed message per type or variant) and `std::error::Error`
/// for a small error type.
///
/// * `Name => "msg"`: a struct; `Debug` is derived by the type.
/// * `Name { Variant => "msg", .. }`: an enum of unit variants; `Debug` is
///   derived.
/// * `<T> Name(..) => "msg"`: a tuple struct that hands a value back; `Debug`
///   prints `Name(..)`, so `T` need not be `Debug`.
/// * `<T> Name { Variant(..) => "msg", .. }`: the same for an enum whose
///   variants each hold the value; `Debug` prints `Variant(..)`.
macro_rules! error_impls {
    ($name:ident => $msg:literal) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($msg)
            }
        }

        impl std::error::Error for $name {}
    };
    ($name:ident { $($var:ident => $msg:literal),+ $(,)? }) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $($name::$var => $msg,)+
                })
            }
        }

        impl std::error::Error for $name {}
    };
    (<T> $name:ident(..) => $msg:literal) => {
        impl<T> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl<T> std::fmt::Display for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($msg)
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
    (<T> $name:ident { $($var:ident(..) => $msg:literal),+ $(,)? }) => {
        impl<T> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $($name::$var(_) => concat!(stringify!($var), "(..)"),)+
                })
            }
        }

        impl<T> std::fmt::Display for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $($name::$var(_) => $msg,)+
                })
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
}

pub(crate) use error_impls;
