//! # coil-macros: `#[coil::main]` and `#[coil::test]`
//!
//! The attribute macros of coil, re-exported as `coil::main` and
//! `coil::test`; their user documentation, with examples, is on those
//! re-exports. Depend on `coil`, not on this crate: the code the macros write
//! names `::coil` (or the path given with `crate = "..."`).
//!
//! It also holds one helper of `coil::select!` (a declarative macro in coil):
//! `__select_pattern`, hidden, in `pattern`.
//!
//! The crate owns the token handling only: `args` reads the attribute's
//! arguments, `item` splits the function it is put on, and `expand` writes
//! the new items. Plain `proc_macro`, no `syn` or `quote`, so that a
//! cold build of coil does not wait for a parser.
//!
//! Misuse (a function that is not `async`, takes arguments or is generic, an
//! attribute on something that is not a function, an unknown or malformed
//! argument) becomes one `compile_error!` at the offending tokens, followed by
//! the item unchanged.

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

mod args;
mod expand;
mod item;
mod pattern;

/// (`#[coil::main]` is defined in the crate coil-macros, `macros/` in coil's
/// repository; coil re-exports it, and the documentation above, with its
/// examples, is coil's.)
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(Kind::Main, args, item)
}

/// (`#[coil::test]` is defined in the crate coil-macros, `macros/` in coil's
/// repository; coil re-exports it, and the documentation above, with its
/// examples, is coil's.)
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(Kind::Test, args, item)
}

/// Not API: used by the expansion of `coil::select!` (a branch's pattern
/// without binding modifiers and `&`, to test a reference to its output;
/// `pattern.rs`).
#[doc(hidden)]
#[proc_macro]
pub fn __select_pattern(input: TokenStream) -> TokenStream {
    pattern::for_test(input)
}

/// Which attribute is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    /// The attribute as the user writes it, for messages.
    fn attr(self) -> &'static str {
        match self {
            Kind::Main => "#[coil::main]",
            Kind::Test => "#[coil::test]",
        }
    }
}

fn attribute(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let expanded = args::parse(kind, args)
        .and_then(|args| item::parse(kind, item.clone()).map(|f| expand::expand(kind, &args, f)));
    match expanded {
        Ok(tokens) => tokens,
        Err(e) => {
            let mut out = e.into_tokens();
            match kind {
                // The item as written would add rustc's own complaint (an
                // `async fn main`, E0752) under ours: a plain stub instead.
                Kind::Main => {
                    out.extend("fn main() {}".parse::<TokenStream>().expect("a valid stub"))
                }
                // The item stays, so that other code naming it still resolves.
                Kind::Test => out.extend(item),
            }
            out
        }
    }
}

/// A misuse: a message and the tokens it is about (from `start` to `end`).
struct Error {
    start: Span,
    end: Span,
    msg: String,
}

impl Error {
    /// An error about the tokens of one span.
    fn new(span: Span, msg: impl Into<String>) -> Error {
        Error {
            start: span,
            end: span,
            msg: msg.into(),
        }
    }

    /// An error about the tokens from `first` to `last`.
    fn spanning(first: &TokenTree, last: &TokenTree, msg: impl Into<String>) -> Error {
        Error {
            start: first.span(),
            end: last.span(),
            msg: msg.into(),
        }
    }

    /// `::core::compile_error! { "msg" }`, spanned so that rustc points from
    /// `start` to `end`.
    fn into_tokens(self) -> TokenStream {
        let mut lit = Literal::string(&self.msg);
        lit.set_span(self.end);
        let mut group = Group::new(Delimiter::Brace, TokenTree::Literal(lit).into());
        group.set_span(self.end);
        let mut out: Vec<TokenTree> = Vec::new();
        for name in ["core", "compile_error"] {
            out.push(punct(':', Spacing::Joint, self.start));
            out.push(punct(':', Spacing::Alone, self.start));
            out.push(TokenTree::Ident(Ident::new(name, self.start)));
        }
        out.push(punct('!', Spacing::Alone, self.start));
        out.push(TokenTree::Group(group));
        out.into_iter().collect()
    }
}

fn punct(ch: char, spacing: Spacing, span: Span) -> TokenTree {
    let mut p = Punct::new(ch, spacing);
    p.set_span(span);
    TokenTree::Punct(p)
}

/// Whether `tt` is the punctuation `ch`.
fn is_punct(tt: &TokenTree, ch: char) -> bool {
    matches!(tt, TokenTree::Punct(p) if p.as_char() == ch)
}

/// Whether `tt` is the identifier or keyword `word`.
fn is_ident(tt: &TokenTree, word: &str) -> bool {
    matches!(tt, TokenTree::Ident(i) if i.to_string() == word)
}
