//! The code the attributes write.
//!
//! The body moves, unchanged and with its spans, into an `async fn` of the
//! same name nested in the generated function, so its return type is the one
//! written (and `?` in it knows its error type); the generated function runs
//! that future through `coil::__macro_support`:
//!
//! ```text
//! #[coil::main] async fn main() -> R { body }
//!   ==> fn main() -> R { async fn main() -> R { body }  ::coil::__macro_support::run(None, main()) }
//!
//! #[coil::test(drivers = "all")] async fn t() { body }
//!   ==> async fn __coil_body_t() { body }
//!       mod t { use super::*;
//!               #[test] fn uring() { run_uring_or_skip("path::t::uring", super::__coil_body_t) }
//!               #[test] fn epoll() { run(Some(Epoll), super::__coil_body_t()) } }
//! ```
//!
//! The body of a `drivers = "all"` test stays in the module it was written in
//! (renamed, hidden), so its `super::` paths and the names it calls resolve as
//! written: a helper named `uring` or `epoll` is not shadowed by the tests.

use proc_macro::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};

use crate::Kind;
use crate::args::{Args, Driver};
use crate::item::ItemFn;

/// Attributes that belong on each generated `#[test]` function rather than on
/// the module of a `drivers = "all"` test.
const TEST_ATTRS: [&str; 3] = ["ignore", "should_panic", "cfg_attr"];

pub(crate) fn expand(kind: Kind, args: &Args, f: ItemFn) -> TokenStream {
    let support = cat([args.krate.clone(), tokens("::__macro_support")]);
    // `async` is there because the macro asks for it, whether or not the body
    // awaits: clippy's `unused_async` would blame the user for it.
    let inner = cat([
        tokens("#[allow(clippy::unused_async)]"),
        TokenTree::Ident(f.async_kw.clone()).into(),
        TokenTree::Ident(f.fn_kw.clone()).into(),
        TokenTree::Ident(f.name.clone()).into(),
        TokenTree::Group(f.params.clone()).into(),
        f.arrow_ret.clone(),
        TokenTree::Group(f.body.clone()).into(),
    ]);
    let call_body = cat([
        TokenTree::Ident(f.name.clone()).into(),
        group(Delimiter::Parenthesis, TokenStream::new()),
    ]);
    let is_test = tokens("#[::core::prelude::v1::test]");
    if args.driver == Driver::All {
        return expand_all(args, &f, &support, is_test);
    }

    let run = run_call(args, &support, args.driver, call_body);
    let mut out = TokenStream::new();
    if kind == Kind::Test {
        out.extend(is_test);
    }
    out.extend(f.attrs.into_iter().map(|a| a.tokens));
    out.extend(cat([
        f.vis,
        TokenTree::Ident(f.fn_kw).into(),
        TokenTree::Ident(f.name).into(),
        TokenTree::Group(f.params).into(),
        f.arrow_ret,
        group(Delimiter::Brace, cat([inner, run])),
    ]));
    out
}

/// `support::run(choice, future)` or `support::run_sim(seed, future)`.
fn run_call(
    args: &Args,
    support: &TokenStream,
    driver: Driver,
    future: TokenStream,
) -> TokenStream {
    let some = |value: TokenStream| {
        cat([
            tokens("::core::option::Option::Some"),
            group(Delimiter::Parenthesis, value),
        ])
    };
    let choice = |name: &str| {
        some(cat([
            args.krate.clone(),
            tokens(&format!("::runtime::DriverChoice::{name}")),
        ]))
    };
    let (func, first) = match driver {
        Driver::Default => ("run", tokens("::core::option::Option::None")),
        Driver::Auto => ("run", choice("Auto")),
        Driver::Uring => ("run", choice("Uring")),
        Driver::Epoll => ("run", choice("Epoll")),
        Driver::All => unreachable!("`drivers = \"all\"` writes one call per driver"),
        Driver::Sim(None) => ("run_sim", tokens("::core::option::Option::None")),
        Driver::Sim(Some(seed)) => ("run_sim", some(tokens(&format!("{seed}u64")))),
    };
    cat([
        support.clone(),
        tokens(&format!("::{func}")),
        group(Delimiter::Parenthesis, cat([first, tokens(","), future])),
    ])
}

/// `drivers = "all"`: a module named after the test, holding the body and one
/// `#[test]` per driver.
fn expand_all(args: &Args, f: &ItemFn, support: &TokenStream, is_test: TokenStream) -> TokenStream {
    let (test_attrs, mod_attrs): (Vec<_>, Vec<_>) = f
        .attrs
        .iter()
        .partition(|a| TEST_ATTRS.contains(&a.name.as_str()));
    let test_attrs: TokenStream = test_attrs.iter().map(|a| a.tokens.clone()).collect();
    // The body, beside the module rather than in it (see the module docs).
    let body_name = Ident::new(&format!("__coil_body_{}", f.name), f.name.span());
    let cfg_attrs: TokenStream = mod_attrs
        .iter()
        .filter(|a| a.name == "cfg")
        .map(|a| a.tokens.clone())
        .collect();
    let body_fn = cat([
        cfg_attrs,
        tokens("#[doc(hidden)] #[allow(dead_code, non_snake_case, clippy::unused_async)]"),
        TokenTree::Ident(f.async_kw.clone()).into(),
        TokenTree::Ident(f.fn_kw.clone()).into(),
        TokenTree::Ident(body_name.clone()).into(),
        TokenTree::Group(f.params.clone()).into(),
        f.arrow_ret.clone(),
        TokenTree::Group(f.body.clone()).into(),
    ]);
    let body_path = cat([tokens("super::"), TokenTree::Ident(body_name).into()]);
    let call_body = cat([
        body_path.clone(),
        group(Delimiter::Parenthesis, TokenStream::new()),
    ]);
    let name_lit = tokens("::core::concat!(::core::module_path!(), \"::uring\")");
    let skip = cat([
        support.clone(),
        tokens("::run_uring_or_skip"),
        group(
            Delimiter::Parenthesis,
            cat([name_lit, tokens(","), body_path.clone()]),
        ),
    ]);
    // A test that returns `()` skips by returning; one that returns a value
    // returns the skip as an `Outcome` (a `Termination` that reports success).
    // A `#[should_panic]` test (which returns `()`) skips by panicking with the
    // expected text, since returning would fail it.
    let should_panic = f.attrs.iter().find(|a| a.name == "should_panic");
    let (uring_ret, uring_body) = if let Some(attr) = should_panic {
        let expected = expected_text(&attr.tokens)
            .unwrap_or_else(|| TokenTree::Literal(proc_macro::Literal::string("")));
        let call = cat([
            support.clone(),
            tokens("::run_uring_or_panic_skip"),
            group(
                Delimiter::Parenthesis,
                cat([
                    tokens("::core::concat!(::core::module_path!(), \"::uring\")"),
                    tokens(","),
                    body_path.clone(),
                    tokens(","),
                    expected.into(),
                ]),
            ),
            tokens(";"),
        ]);
        (TokenStream::new(), call)
    } else if f.ret.is_empty() {
        (TokenStream::new(), cat([skip, tokens(";")]))
    } else {
        let outcome = cat([
            tokens("->"),
            support.clone(),
            tokens("::Outcome<"),
            f.ret.clone(),
            tokens(">"),
        ]);
        (outcome, skip)
    };
    let epoll_body = run_call(args, support, Driver::Epoll, call_body);
    let test_fn = |name: &str, ret: TokenStream, body: TokenStream| {
        cat([
            is_test.clone(),
            test_attrs.clone(),
            tokens("fn"),
            TokenTree::Ident(Ident::new(name, Span::call_site())).into(),
            tokens("()"),
            ret,
            group(Delimiter::Brace, body),
        ])
    };
    let module = cat([
        tokens("#[allow(unused_imports)] use super::*;"),
        test_fn("uring", uring_ret, uring_body),
        test_fn("epoll", f.arrow_ret.clone(), epoll_body),
    ]);
    let mut out = body_fn;
    out.extend(mod_attrs.iter().map(|a| a.tokens.clone()));
    out.extend(cat([
        TokenTree::Ident(Ident::new("mod", f.fn_kw.span())).into(),
        TokenTree::Ident(f.name.clone()).into(),
        group(Delimiter::Brace, module),
    ]));
    out
}

/// The string literal of `expected = "..."` in a `#[should_panic(..)]`
/// attribute's tokens, if there is one.
fn expected_text(attr: &TokenStream) -> Option<TokenTree> {
    fn find(stream: TokenStream) -> Option<TokenTree> {
        let toks: Vec<TokenTree> = stream.into_iter().collect();
        for (i, t) in toks.iter().enumerate() {
            match t {
                TokenTree::Ident(id) if id.to_string() == "expected" => {
                    if let (Some(TokenTree::Punct(eq)), Some(lit @ TokenTree::Literal(_))) =
                        (toks.get(i + 1), toks.get(i + 2))
                        && eq.as_char() == '='
                    {
                        return Some(lit.clone());
                    }
                }
                TokenTree::Group(g) => {
                    if let Some(found) = find(g.stream()) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        None
    }
    find(attr.clone())
}

/// Fixed source text as tokens (spanned at the call site).
fn tokens(src: &str) -> TokenStream {
    src.parse()
        .expect("the macros' own fragments are valid tokens")
}

fn group(delimiter: Delimiter, inner: TokenStream) -> TokenStream {
    TokenTree::Group(Group::new(delimiter, inner)).into()
}

fn cat<const N: usize>(parts: [TokenStream; N]) -> TokenStream {
    parts.into_iter().collect()
}
