//! The function an attribute is put on, split into the parts the expansion
//! reuses; everything a plain `async fn name() -> T { .. }` does not have is
//! an error here.

use proc_macro::{Delimiter, Group, Ident, TokenStream, TokenTree};

use crate::{Error, Kind, is_ident, is_punct};

/// One outer attribute: `#` and its `[..]`.
pub(crate) struct Attr {
    pub(crate) tokens: TokenStream,
    /// The last identifier of its path (`ignore`, `doc`, `allow`, ..).
    pub(crate) name: String,
}

/// `attrs vis async fn name() ret body`.
pub(crate) struct ItemFn {
    pub(crate) attrs: Vec<Attr>,
    pub(crate) vis: TokenStream,
    pub(crate) async_kw: Ident,
    pub(crate) fn_kw: Ident,
    pub(crate) name: Ident,
    pub(crate) params: Group,
    /// The return type without its `->` (empty for `()`).
    pub(crate) ret: TokenStream,
    /// `->` and the return type, as written (empty for `()`).
    pub(crate) arrow_ret: TokenStream,
    pub(crate) body: Group,
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Main => "#[coil::main] async fn main() { .. }",
        Kind::Test => "#[coil::test] async fn it_works() { .. }",
    }
}

pub(crate) fn parse(kind: Kind, item: TokenStream) -> Result<ItemFn, Error> {
    let attr = kind.attr();
    let mut it = item.into_iter().peekable();
    let mut attrs = Vec::new();
    while it.peek().is_some_and(|tt| is_punct(tt, '#')) {
        let hash = it.next().expect("peeked");
        let Some(TokenTree::Group(g)) = it
            .next()
            .filter(|tt| matches!(tt, TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket))
        else {
            return Err(Error::new(hash.span(), "expected an attribute `#[..]`"));
        };
        let name = g
            .stream()
            .into_iter()
            .take_while(|tt| matches!(tt, TokenTree::Ident(_)) || is_punct(tt, ':'))
            .filter(|tt| matches!(tt, TokenTree::Ident(_)))
            .last()
            .map(|tt| tt.to_string())
            .unwrap_or_default();
        if kind == Kind::Test && name == "test" {
            return Err(Error::spanning(
                &hash,
                &TokenTree::Group(g),
                "remove this `#[test]`: #[coil::test] already makes the function a test",
            ));
        }
        attrs.push(Attr {
            tokens: [hash, TokenTree::Group(g)].into_iter().collect(),
            name,
        });
    }

    let mut vis = TokenStream::new();
    if it.peek().is_some_and(|tt| is_ident(tt, "pub")) {
        vis.extend(it.next());
        if let Some(TokenTree::Group(g)) = it.peek()
            && g.delimiter() == Delimiter::Parenthesis
        {
            vis.extend(it.next());
        }
    }

    let mut async_kw = None;
    let fn_kw = loop {
        let Some(tt) = it.next() else {
            return Err(Error::new(
                proc_macro::Span::call_site(),
                format!("{attr} goes on an `async fn`: write `{}`", example(kind)),
            ));
        };
        match &tt {
            TokenTree::Ident(i) if i.to_string() == "async" => async_kw = Some(i.clone()),
            TokenTree::Ident(i) if i.to_string() == "fn" => break i.clone(),
            TokenTree::Ident(i)
                if ["const", "unsafe", "extern", "safe"].contains(&&*i.to_string()) =>
            {
                return Err(Error::new(
                    i.span(),
                    format!("{attr} takes a plain `async fn`: remove `{i}`"),
                ));
            }
            other => {
                return Err(Error::new(
                    other.span(),
                    format!(
                        "{attr} goes on an `async fn`, not on `{other}`: write `{}`",
                        example(kind)
                    ),
                ));
            }
        }
    };
    let name = match it.next() {
        Some(TokenTree::Ident(name)) => name,
        other => {
            let span = other.map_or(fn_kw.span(), |tt| tt.span());
            return Err(Error::new(span, "expected the function's name"));
        }
    };
    let Some(async_kw) = async_kw else {
        return Err(Error::spanning(
            &TokenTree::Ident(fn_kw),
            &TokenTree::Ident(name.clone()),
            format!(
                "{attr} needs an `async fn`: write `async fn {name}` (the macro runs the \
                 body on a coil runtime)"
            ),
        ));
    };
    if let Some(lt) = it.peek().filter(|tt| is_punct(tt, '<')) {
        return Err(Error::new(
            lt.span(),
            format!("{attr} functions cannot be generic: remove the `<..>` parameters"),
        ));
    }
    let params = match it.next() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => g,
        other => {
            let span = other.map_or(name.span(), |tt| tt.span());
            return Err(Error::new(span, "expected the function's `()`"));
        }
    };
    if !params.stream().is_empty() {
        let why = match kind {
            Kind::Main => "`main` gets none (read `std::env::args()` in the body instead)",
            Kind::Test => "the test harness passes none (build the values in the body instead)",
        };
        return Err(Error::new(
            params.span(),
            format!("{attr} functions take no arguments: remove them; {why}"),
        ));
    }

    let mut rest: Vec<TokenTree> = it.collect();
    let body = match rest.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        _ => {
            return Err(Error::new(
                name.span(),
                "expected the function's body `{ .. }`",
            ));
        }
    };
    if let Some(w) = rest.iter().find(|tt| is_ident(tt, "where")) {
        return Err(Error::new(
            w.span(),
            format!("{attr} functions cannot be generic: remove the `where` clause"),
        ));
    }
    let arrow_ret: TokenStream = rest.iter().cloned().collect();
    let ret = match rest.as_slice() {
        [] => TokenStream::new(),
        [minus, gt, ty @ ..] if is_punct(minus, '-') && is_punct(gt, '>') && !ty.is_empty() => {
            ty.iter().cloned().collect()
        }
        [first, ..] => {
            return Err(Error::spanning(
                first,
                &rest[rest.len() - 1],
                "expected `-> Type` or the function's body",
            ));
        }
    };
    Ok(ItemFn {
        attrs,
        vis,
        async_kw,
        fn_kw,
        name,
        params,
        ret,
        arrow_ret,
        body,
    })
}
