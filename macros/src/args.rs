//! The attribute's arguments: `key = "value"` pairs separated by commas.
//!
//! | key | value | on |
//! |---|---|---|
//! | `driver` | `"auto"`, `"uring"`, `"epoll"`; `"sim"` for tests | both |
//! | `drivers` | `"all"` | `#[coil::test]` |
//! | `seed` | an integer (with `driver = "sim"`) | `#[coil::test]` |
//! | `crate` | a path to coil, e.g. `"my_coil"` | both |

use proc_macro::{Delimiter, Span, TokenStream, TokenTree};

use crate::{Error, Kind, is_punct};

/// The runtime a body runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// `COIL_DRIVER`, else auto (no `driver` argument).
    Default,
    Auto,
    Uring,
    Epoll,
    /// The deterministic simulator, with an optional seed.
    Sim(Option<u64>),
    /// One test per driver (`drivers = "all"`).
    All,
}

/// The parsed arguments.
pub(crate) struct Args {
    pub(crate) driver: Driver,
    /// The path to coil: `::coil` unless `crate = "..."` says otherwise.
    pub(crate) krate: TokenStream,
}

fn usage(kind: Kind) -> &'static str {
    match kind {
        Kind::Main => {
            "#[coil::main] takes `driver = \"auto\" | \"uring\" | \"epoll\"` and \
             `crate = \"path::to::coil\"`"
        }
        Kind::Test => {
            "#[coil::test] takes `driver = \"auto\" | \"uring\" | \"epoll\" | \"sim\"`, \
             `drivers = \"all\"`, `seed = N` (with driver = \"sim\") and \
             `crate = \"path::to::coil\"`"
        }
    }
}

pub(crate) fn parse(kind: Kind, args: TokenStream) -> Result<Args, Error> {
    let mut out = Args {
        driver: Driver::Default,
        krate: "::coil".parse().expect("a path"),
    };
    let mut seen: Vec<String> = Vec::new();
    let mut seed: Option<(u64, Span)> = None;
    let mut sim = false;
    for pair in split_commas(args) {
        let (key, value) = key_value(kind, &pair)?;
        let name = key.to_string();
        if seen.contains(&name) {
            return Err(Error::new(key.span(), format!("`{name}` is given twice")));
        }
        let driver_given = seen.iter().any(|k| k == "driver" || k == "drivers");
        seen.push(name.clone());
        match (name.as_str(), kind) {
            ("driver" | "drivers", _) if driver_given => {
                return Err(Error::new(
                    key.span(),
                    "give either `driver = \"..\"` (one test) or `drivers = \"all\"` \
                     (one test per driver), not both",
                ));
            }
            ("driver", _) => {
                out.driver = match (string(&value)?.as_str(), kind) {
                    ("auto", _) => Driver::Auto,
                    ("uring" | "io_uring" | "io-uring", _) => Driver::Uring,
                    ("epoll", _) => Driver::Epoll,
                    ("sim", Kind::Test) => {
                        sim = true;
                        Driver::Sim(None)
                    }
                    ("sim", Kind::Main) => {
                        return Err(Error::new(
                            value.span(),
                            "driver = \"sim\" is for tests (#[coil::test]); a program's main \
                             runs on a real driver: \"auto\", \"uring\" or \"epoll\"",
                        ));
                    }
                    (other, _) => {
                        let more = if kind == Kind::Test {
                            ", \"epoll\" or \"sim\""
                        } else {
                            " or \"epoll\""
                        };
                        return Err(Error::new(
                            value.span(),
                            format!("unknown driver \"{other}\": write \"auto\", \"uring\"{more}"),
                        ));
                    }
                };
            }
            ("drivers", Kind::Test) => {
                if string(&value)? != "all" {
                    return Err(Error::new(
                        value.span(),
                        "`drivers` takes \"all\" (one test per driver); for one driver write \
                         `driver = \"epoll\"`",
                    ));
                }
                out.driver = Driver::All;
            }
            ("seed", Kind::Test) => seed = Some((integer(&value)?, key.span())),
            ("crate", _) => {
                let path = string(&value)?;
                out.krate = path.parse().map_err(|_| {
                    Error::new(
                        value.span(),
                        format!("`crate` takes a path, not \"{path}\""),
                    )
                })?;
            }
            _ => {
                return Err(Error::new(
                    key.span(),
                    format!("unknown argument `{name}`: {}", usage(kind)),
                ));
            }
        }
    }
    if let Some((seed, span)) = seed {
        if !sim {
            return Err(Error::new(
                span,
                "`seed` is the simulator's: add `driver = \"sim\"`",
            ));
        }
        out.driver = Driver::Sim(Some(seed));
    }
    Ok(out)
}

/// The comma-separated parts of `args` (empty parts dropped: a trailing comma
/// is fine).
fn split_commas(args: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut parts = vec![Vec::new()];
    for tt in args {
        if is_punct(&tt, ',') {
            parts.push(Vec::new());
        } else {
            parts.last_mut().expect("never empty").push(tt);
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// `key = value`, with `key` an identifier (or `crate`) and `value` one token.
fn key_value(kind: Kind, pair: &[TokenTree]) -> Result<(proc_macro::Ident, TokenTree), Error> {
    let first = &pair[0];
    let last = &pair[pair.len() - 1];
    let TokenTree::Ident(key) = first else {
        return Err(Error::spanning(
            first,
            last,
            format!("expected `key = \"value\"`: {}", usage(kind)),
        ));
    };
    match pair {
        [_, eq, value] if is_punct(eq, '=') => Ok((key.clone(), unwrap_none_group(value))),
        _ => Err(Error::spanning(
            first,
            last,
            format!(
                "write `{key} = \"value\"` (one value, after an `=`): {}",
                usage(kind)
            ),
        )),
    }
}

/// A literal passed through a `macro_rules!` fragment arrives in an invisible
/// group; look inside it.
fn unwrap_none_group(tt: &TokenTree) -> TokenTree {
    if let TokenTree::Group(g) = tt
        && g.delimiter() == Delimiter::None
    {
        let mut inner = g.stream().into_iter();
        if let (Some(only), None) = (inner.next(), inner.next()) {
            return only;
        }
    }
    tt.clone()
}

/// The contents of a plain string literal (no escapes needed for any value
/// the macros take).
fn string(value: &TokenTree) -> Result<String, Error> {
    let text = value.to_string();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if matches!(value, TokenTree::Literal(_)) && !inner.contains('\\') => {
            Ok(inner.to_owned())
        }
        _ => Err(Error::new(
            value.span(),
            format!("expected a string in double quotes, as in `driver = \"epoll\"`, not `{text}`"),
        )),
    }
}

/// An unsigned integer literal (`7`, `0x2a`, `1_000u64`).
fn integer(value: &TokenTree) -> Result<u64, Error> {
    let text = value.to_string().replace('_', "");
    let digits = text.strip_suffix("u64").unwrap_or(&text);
    let parsed = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    };
    match (value, parsed) {
        (TokenTree::Literal(_), Ok(n)) => Ok(n),
        _ => Err(Error::new(
            value.span(),
            format!("`seed` takes an unsigned integer, as in `seed = 42`, not `{text}`"),
        )),
    }
}
