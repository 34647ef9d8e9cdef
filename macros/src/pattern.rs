//! `__select_pattern`: the pattern of a `coil::select!` branch, made fit to
//! test a reference to the branch's output.
//!
//! `select!` must know whether a branch's output matches its pattern before
//! it gives up on the other branches, and must not move the output to find
//! out (the handler binds it afterwards). So it matches `&output` first. Under
//! a reference the default binding mode is `ref`, where edition 2024 rejects
//! binding modifiers (`mut x`, `ref x`) and reference patterns (`&x`). Only
//! whether the pattern matches counts for the test, so those tokens are
//! dropped: `Some(mut x)` is tested as `Some(x)`, `&(a, ref b)` as `(a, b)`.
//! The handler still binds with the pattern as written.

use proc_macro::{Group, TokenStream, TokenTree};

/// `input` without the tokens `ref`, `mut` and `&`, at any depth.
pub(crate) fn for_test(input: TokenStream) -> TokenStream {
    input
        .into_iter()
        .filter_map(|tt| match tt {
            TokenTree::Ident(ref i) if matches!(i.to_string().as_str(), "ref" | "mut") => None,
            TokenTree::Punct(ref p) if p.as_char() == '&' => None,
            TokenTree::Group(g) => {
                let mut clean = Group::new(g.delimiter(), for_test(g.stream()));
                clean.set_span(g.span());
                Some(TokenTree::Group(clean))
            }
            other => Some(other),
        })
        .collect()
}
