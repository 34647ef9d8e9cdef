//! The import graph between the top-level modules of `src/` has no cycle.
//!
//! Reads every `.rs` file under `src/` (std only, no parser crate), finds each
//! path that starts at the crate root (`crate::x::..`, `$crate::x::..`, and
//! `super::` chains that climb to the root, in `use` items and in code alike;
//! comments, strings and char literals are skipped) and records an edge from
//! the file's top-level module to the module `x` names. A name re-exported by
//! `src/lib.rs` (`crate::spawn`, `crate::TaskGroup`) or a `#[macro_export]`
//! macro (`crate::gather!`) counts as an edge to the module that defines it.
//!
//! The test fails, naming the cycle and where each of its edges is written,
//! if the graph has a cycle once the edges of [`ALLOWED`] are taken out. An
//! allowed edge is allowed only through the items it lists, so it cannot grow
//! unnoticed, and an entry that is no longer needed fails the test too, so
//! the list only ever shrinks.
//!
//! The same tokens check one more boundary: `net`, `io` and `op` never name
//! the simulator (its fd test, its driver, a `sim` module); the simulator is
//! a driver behind `coil_arch`, like io_uring and epoll.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// An edge `from -> to` that is part of a cycle we keep on purpose, usable
/// only through the items in `via` (the segment after `crate::to::`).
struct Allowed {
    from: &'static str,
    to: &'static str,
    via: &'static [&'static str],
    why: &'static str,
}

/// The edges that close a cycle and stay. Keep this list short; each entry
/// says why its edge cannot go yet.
const ALLOWED: &[Allowed] = &[
    Allowed {
        from: "task",
        to: "rt",
        via: &[
            "Shared",
            "schedule",
            "schedule_by_val",
            "push_wake",
            "spawn_local",
            "budget",
            "with_core",
            "debug",
            "Awaiting",
        ],
        why: "rt runs tasks (TaskRef, the owned list, Task). A task in turn holds its loop's \
              Arc<rt::Shared> (in its slab chunk's head, or before a boxed cell) and is queued \
              by rt::schedule when woken (rt::schedule_by_val when woken by value from another \
              thread; or, woken by value from a loop that remembers it, handed to its remote \
              queue as a wake entry by rt::push_wake), \
              coil::spawn finds the running loop through rt::spawn_local, and \
              coil::task::consume_budget is the loop's coop budget (rt::budget); \
              coil::task::current and all_tasks read the running task and the owned list \
              of the loop on this thread (rt::with_core); a task handle and a TaskGroup \
              note what they wait on in debug mode's await tree (rt::debug, rt::Awaiting). \
              Cutting the \
              edge would put a scheduler trait object in every task header and an indirect \
              call on every wake, the hot path",
    },
    Allowed {
        from: "op",
        to: "rt",
        via: &["with_core", "budget", "debug", "Awaiting"],
        why: "rt owns each loop's op home (op::OpHome) and hands completions to it. An op \
              future submits to the loop running on its thread (rt::with_core, then \
              Core::submit_op) and spends its coop budget (rt::budget); a SharedFd records \
              the loop it was made in; an op in flight is a node of debug mode's await tree \
              (rt::debug, rt::Awaiting). Cutting the edge means moving the op table into rt, \
              which splits the ownership rules O1-O6 of op/mod.rs across two modules, or an \
              indirect call per submit",
    },
];

// ----- tokens ----------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Other(char),
}

/// Splits Rust source into the tokens this test needs, with their line
/// numbers. Comments, string, byte-string, raw-string and char literals are
/// dropped; lifetimes become `Other('\'')` followed by their name.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1, &mut line);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: '\n', '\'', '\u{..}'.
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                out.push((Tok::Other('\''), line));
                i += 1;
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw = word == "r" || word == "br";
            if raw && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '#' | '"'))) {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1; // the opening quote
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            } else if word == "b" && at(i) == '"' {
                i = skip_string(&c, i + 1, &mut line);
            } else if word == "b" && at(i) == '\'' {
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            } else if word == "r" && at(i) == '#' {
                // A raw identifier: `r#type`.
                i += 1;
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else {
            let tok = match ch {
                ':' if at(i + 1) == ':' => {
                    i += 1;
                    Tok::Sep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                other => Tok::Other(other),
            };
            out.push((tok, line));
            i += 1;
        }
    }
    out
}

/// Skips a `"..."` literal whose body starts at `i`; returns the index after
/// the closing quote.
fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        if c.get(i) == Some(&'\n') {
            *line += 1;
        }
        i += 1;
    }
    i + 1
}

fn ident(toks: &[(Tok, usize)], i: usize) -> Option<&str> {
    match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn is(toks: &[(Tok, usize)], i: usize, t: &Tok) -> bool {
    toks.get(i).map(|(x, _)| x) == Some(t)
}

/// One path of a use tree: its segments (at most the number asked for) and
/// the name it binds (`x as y` binds `y`).
#[derive(Debug, Clone, PartialEq)]
struct TreePath {
    segments: Vec<String>,
    leaf: String,
}

/// The paths of the use tree (or plain path in code) that starts at `i`,
/// each cut to its first `max` segments. A glob, a turbofish or anything
/// else that is not a name ends a path.
fn tree(toks: &[(Tok, usize)], i: usize, max: usize) -> Vec<TreePath> {
    let mut out = Vec::new();
    tree_into(toks, i, max, &mut Vec::new(), &mut out);
    out
}

fn tree_into(
    toks: &[(Tok, usize)],
    i: usize,
    max: usize,
    prefix: &mut Vec<String>,
    out: &mut Vec<TreePath>,
) {
    let done = |prefix: &Vec<String>, leaf: String, out: &mut Vec<TreePath>| {
        if !prefix.is_empty() {
            out.push(TreePath {
                segments: prefix.clone(),
                leaf,
            });
        }
    };
    if is(toks, i, &Tok::Open) {
        // `{a, b::c, self}`: each entry at depth 1 starts a subtree.
        let mut depth = 0;
        let mut entry = true;
        for j in i..toks.len() {
            match &toks[j].0 {
                Tok::Open => {
                    depth += 1;
                    if depth == 2 && entry {
                        tree_into(toks, j, max, &mut prefix.clone(), out);
                        entry = false;
                    }
                }
                Tok::Close => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                Tok::Comma if depth == 1 => entry = true,
                _ if depth == 1 && entry => {
                    tree_into(toks, j, max, &mut prefix.clone(), out);
                    entry = false;
                }
                _ => {}
            }
        }
        return;
    }
    let leaf_at = |j: usize, name: &str| {
        if ident(toks, j) == Some("as") {
            ident(toks, j + 1).unwrap_or(name).to_string()
        } else {
            name.to_string()
        }
    };
    match ident(toks, i) {
        Some("self") => {
            let leaf = prefix.last().cloned().unwrap_or_default();
            done(prefix, leaf_at(i + 1, &leaf), out);
        }
        Some(name) => {
            if prefix.len() == max {
                done(prefix, name.to_string(), out);
                return;
            }
            prefix.push(name.to_string());
            if is(toks, i + 1, &Tok::Sep) {
                tree_into(toks, i + 2, max, prefix, out);
            } else {
                done(prefix, leaf_at(i + 1, name), out);
            }
        }
        None => {
            let leaf = prefix.last().cloned().unwrap_or_default();
            done(prefix, leaf, out);
        }
    }
}

// ----- the crate's files ---------------------------------------------------

/// One path from a module to the crate root: `segments` are the (up to) two
/// segments after `crate::`, written at `file:line`.
#[derive(Debug, Clone)]
struct Use {
    from: String,
    segments: Vec<String>,
    file: String,
    line: usize,
}

/// The module path of a file under `src/`: `net/tcp.rs` is `net::tcp`,
/// `net/mod.rs` is `net`, `lib.rs` the root.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every crate-rooted path in `toks` (a file whose module path is `base`),
/// with the top-level module it is written in (`None`: the crate root).
fn crate_paths(
    toks: &[(Tok, usize)],
    base: &[String],
) -> Vec<(Option<String>, Vec<String>, usize)> {
    let mut out = Vec::new();
    // Inline `mod name { .. }` items: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    for i in 0..toks.len() {
        match &toks[i].0 {
            Tok::Open => {
                depth += 1;
                if i >= 2
                    && ident(toks, i - 2) == Some("mod")
                    && let Some(name) = ident(toks, i - 1)
                {
                    inline.push((name.to_string(), depth));
                }
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            _ => {}
        }
        let after_sep = i > 0 && is(toks, i - 1, &Tok::Sep);
        if after_sep || !is(toks, i + 1, &Tok::Sep) {
            continue;
        }
        let module_len = base.len() + inline.len();
        let start = match ident(toks, i) {
            Some("crate") => i + 2,
            Some("super") => {
                let mut j = i;
                let mut up = 0;
                while ident(toks, j) == Some("super") && is(toks, j + 1, &Tok::Sep) {
                    up += 1;
                    j += 2;
                }
                if up != module_len {
                    // Still inside a top-level module (or invalid).
                    continue;
                }
                j
            }
            _ => continue,
        };
        let from = base.first().or(inline.first().map(|(n, _)| n)).cloned();
        for path in tree(toks, start, 2) {
            out.push((from.clone(), path.segments, toks[i].1));
        }
    }
    out
}

struct Crate {
    modules: BTreeSet<String>,
    /// Names at the crate root that are not modules, and the module that
    /// defines them (re-exports, exported macros).
    aliases: BTreeMap<String, String>,
    uses: Vec<Use>,
}

fn read_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeSet::new();
    let mut aliases = BTreeMap::new();
    let mut uses = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).expect("under src/");
        let text = std::fs::read_to_string(file).expect("a UTF-8 source file");
        let toks = tokenize(&text);
        let base = module_path(rel);
        let rel_name = format!("src/{}", rel.display());
        if base.is_empty() {
            // lib.rs: the top-level modules and the root re-exports.
            let mut depth = 0;
            for i in 0..toks.len() {
                match &toks[i].0 {
                    Tok::Open => depth += 1,
                    Tok::Close => depth -= 1,
                    _ => {}
                }
                if depth != 0 {
                    continue;
                }
                if ident(&toks, i) == Some("mod")
                    && let Some(name) = ident(&toks, i + 1)
                {
                    modules.insert(name.to_string());
                }
                if ident(&toks, i) == Some("use") {
                    for (module, leaf) in use_leaves(&toks, i + 1) {
                        aliases.insert(leaf, module);
                    }
                }
            }
        } else {
            // `#[macro_export] macro_rules! name` lives at the crate root.
            for i in 0..toks.len() {
                if ident(&toks, i) == Some("macro_rules")
                    && let Some(name) = ident(&toks, i + 2)
                {
                    aliases.insert(name.to_string(), base[0].clone());
                }
            }
        }
        for (from, segments, line) in crate_paths(&toks, &base) {
            if let Some(from) = from {
                uses.push(Use {
                    from,
                    segments,
                    file: rel_name.clone(),
                    line,
                });
            }
        }
    }
    Crate {
        modules,
        aliases,
        uses,
    }
}

/// The `(first segment, leaf name)` pairs of the use tree at `i` (a root
/// `use` of lib.rs): `use rt::{Handle, run};` gives `(rt, Handle)` and
/// `(rt, run)`; `x as y` gives the leaf `y`.
fn use_leaves(toks: &[(Tok, usize)], i: usize) -> Vec<(String, String)> {
    let start = if ident(toks, i) == Some("crate") && is(toks, i + 1, &Tok::Sep) {
        i + 2
    } else {
        i
    };
    tree(toks, start, usize::MAX)
        .into_iter()
        .map(|p| (p.segments[0].clone(), p.leaf))
        .collect()
}

// ----- the graph ---------------------------------------------------------

/// An edge with the places it is written.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Use>>>;

fn graph(krate: &Crate) -> (Graph, Vec<String>) {
    let mut g = Graph::new();
    let mut unresolved = Vec::new();
    for u in &krate.uses {
        let Some(first) = u.segments.first() else {
            continue;
        };
        let to = if krate.modules.contains(first) {
            first.clone()
        } else if let Some(m) = krate.aliases.get(first) {
            m.clone()
        } else {
            unresolved.push(format!(
                "{}:{}: crate::{} (from {})",
                u.file, u.line, first, u.from
            ));
            continue;
        };
        if to != u.from {
            g.entry(u.from.clone())
                .or_default()
                .entry(to)
                .or_default()
                .push(u.clone());
        }
    }
    (g, unresolved)
}

/// Whether `u` (an edge `from -> to`) is covered by the allow-list.
fn allowed(to: &str, u: &Use) -> bool {
    ALLOWED.iter().any(|a| {
        a.from == u.from
            && a.to == to
            && u.segments
                .get(1)
                .is_some_and(|s| a.via.contains(&s.as_str()))
    })
}

/// A shortest cycle in `g` (edges as module names), if any: a breadth-first
/// search from each module back to itself.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut best: Option<Vec<String>> = None;
    for start in g.keys() {
        // Parent links of the search from `start`.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut found = None;
        'search: while let Some(n) = queue.pop_front() {
            for m in g.get(n).into_iter().flatten() {
                if m == start {
                    found = Some(n);
                    break 'search;
                }
                if !parent.contains_key(m.as_str()) {
                    parent.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        let Some(mut n) = found else { continue };
        let mut cycle = vec![start.clone()];
        while n != start {
            cycle.push(n.to_string());
            n = parent[n];
        }
        cycle.push(start.clone());
        cycle.reverse();
        if best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
            best = Some(cycle);
        }
    }
    best
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn describe(u: &Use) -> String {
    format!("{}:{} (crate::{})", u.file, u.line, u.segments.join("::"))
}

#[test]
fn top_level_modules_form_no_cycle() {
    let krate = read_crate(&src_dir());
    let (g, unresolved) = graph(&krate);
    assert!(
        unresolved.is_empty(),
        "paths from the crate root this test cannot resolve to a top-level module \
         (teach `read_crate` about them):\n  {}",
        unresolved.join("\n  ")
    );
    // Sanity: the parser sees the edges everyone knows about.
    for (from, to) in [("net", "op"), ("rt", "task"), ("fs", "blocking")] {
        assert!(
            g.get(from).is_some_and(|e| e.contains_key(to)),
            "no edge {from} -> {to} found: the parser is broken"
        );
    }

    let mut strict: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, edges) in &g {
        strict.entry(from.clone()).or_default();
        for (to, uses) in edges {
            if uses.iter().any(|u| !allowed(to, u)) {
                strict.get_mut(from).expect("inserted").insert(to.clone());
            }
        }
    }
    if let Some(cycle) = find_cycle(&strict) {
        let mut msg = format!(
            "the top-level modules of src/ import each other in a cycle: {}\n",
            cycle.join(" -> ")
        );
        for w in cycle.windows(2) {
            let mut uses: Vec<_> = g[&w[0]][&w[1]]
                .iter()
                .filter(|u| !allowed(&w[1], u))
                .map(describe)
                .collect();
            uses.dedup();
            let _ = writeln!(msg, "  {} -> {}:", w[0], w[1]);
            for u in uses.iter().take(8) {
                let _ = writeln!(msg, "    {u}");
            }
            if uses.len() > 8 {
                let _ = writeln!(msg, "    ... and {} more", uses.len() - 8);
            }
        }
        msg.push_str(
            "move the code to the module that owns it, or (if the edge truly cannot go yet) \
             add it to ALLOWED in tests/rt/module_graph.rs with the reason",
        );
        panic!("{msg}");
    }
}

#[test]
fn allow_list_is_still_needed() {
    let krate = read_crate(&src_dir());
    let (g, _) = graph(&krate);
    for a in ALLOWED {
        assert!(
            !a.why.is_empty(),
            "ALLOWED {} -> {} says no why",
            a.from,
            a.to
        );
        let uses = g.get(a.from).and_then(|e| e.get(a.to));
        let Some(uses) = uses else {
            panic!(
                "ALLOWED lists {} -> {}, but no such edge is left: remove the entry",
                a.from, a.to
            );
        };
        for via in a.via {
            assert!(
                uses.iter()
                    .any(|u| u.segments.get(1).map(String::as_str) == Some(*via)),
                "ALLOWED lets {} -> {} through `{via}`, which is no longer used: remove it",
                a.from,
                a.to
            );
        }
        // Without the entry, the edge must still close a cycle.
        let mut without: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, edges) in &g {
            let set = without.entry(from.clone()).or_default();
            for (to, uses) in edges {
                if uses.iter().any(|u| !allowed(to, u)) || (from == a.from && to == a.to) {
                    set.insert(to.clone());
                }
            }
        }
        assert!(
            find_cycle(&without).is_some(),
            "ALLOWED lists {} -> {} ({}), but it closes no cycle any more: remove the entry",
            a.from,
            a.to,
            a.why
        );
    }
}

#[test]
#[ignore = "prints the graph: cargo test --test rt module_graph -- --ignored --nocapture"]
fn print_graph() {
    let krate = read_crate(&src_dir());
    let (g, _) = graph(&krate);
    for (from, edges) in &g {
        let tos: Vec<_> = edges.keys().map(String::as_str).collect();
        println!("{from} -> {}", tos.join(", "));
    }
}

// ----- the simulator stays behind the driver --------------------------------

/// The top-level modules that must not ask which backend runs: the
/// simulator is a driver like io_uring and epoll, reached through the same
/// boundary (ops through `Driver::submit`, socket calls through
/// `rt::with_driver` and `coil_arch::sock`, closes through
/// `coil_arch::sock::close`).
const BACKEND_BLIND: &[&str] = &["net", "io", "op"];

/// Names that ask for the simulator: its fd test and its driver.
const SIMULATOR_NAMES: &[&str] = &[
    "is_virtual_fd",
    "VIRTUAL_FD_BASE",
    "SimDriver",
    "as_sim",
    "with_sim_driver",
];

/// Where `toks` names the simulator: an item of [`SIMULATOR_NAMES`], or a
/// module `sim` in a path or use tree (`coil_arch::sim::..`,
/// `crate::rt::sim`, `use coil_arch::{op, sim}`). A method or function
/// called `sim` (`fn sim`, `x.sim()`, the `OpCode` hook an op wrapper
/// forwards) is not a question about the backend.
fn simulator_names(toks: &[(Tok, usize)]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, (tok, line)) in toks.iter().enumerate() {
        let Tok::Ident(name) = tok else { continue };
        let method =
            i > 0 && (ident(toks, i - 1) == Some("fn") || is(toks, i - 1, &Tok::Other('.')));
        if SIMULATOR_NAMES.contains(&name.as_str()) || (name == "sim" && !method) {
            out.push((name.clone(), *line));
        }
    }
    out
}

#[test]
fn net_io_and_op_do_not_ask_for_the_simulator() {
    let mut found = Vec::new();
    let mut files = Vec::new();
    for dir in BACKEND_BLIND {
        rust_files(&src_dir().join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {files:?}: the walk is broken");
    for file in &files {
        let src = std::fs::read_to_string(file).expect("a readable source file");
        for (name, line) in simulator_names(&tokenize(&src)) {
            let rel = file.strip_prefix(src_dir()).unwrap_or(file);
            found.push(format!("src/{}:{line}: {name}", rel.display()));
        }
    }
    assert!(
        found.is_empty(),
        "src/{{net,io,op}} ask for the simulator:\n  {}\nmake the call through the driver \
         boundary instead (coil_arch::sock with rt::with_driver, or an op)",
        found.join("\n  ")
    );
}

#[test]
fn simulator_names_are_found_in_paths_and_use_trees_only() {
    let src = r#"
        use coil_arch::sim::is_virtual_fd;
        use coil_arch::{op, sim};
        fn f() { crate::rt::sim::with_driver(|d| d.socket(true, false)); }
        fn sim(&mut self) -> Option<SimOp<'_>> { self.op.sim() }
        // coil_arch::sim::is_virtual_fd(fd), "crate::rt::sim"
        fn g(d: &mut Driver) { d.as_sim(); }
    "#;
    let names: Vec<String> = simulator_names(&tokenize(src))
        .into_iter()
        .map(|(n, line)| format!("{line}:{n}"))
        .collect();
    assert_eq!(
        names,
        ["2:sim", "2:is_virtual_fd", "3:sim", "4:sim", "7:as_sim"]
    );
}

// ----- the parser's own tests -------------------------------------------------

fn paths_of(src: &str, base: &[&str]) -> Vec<String> {
    let base: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    crate_paths(&tokenize(src), &base)
        .into_iter()
        .map(|(from, p, _)| format!("{}:{}", from.unwrap_or_default(), p.join("::")))
        .collect()
}

#[test]
fn parser_reads_use_trees_and_code_paths() {
    let src = r#"
        use crate::rt::{self, Shared};
        use crate::{io::{fd::SharedFd, traits::AsyncRead}, op, time::Instant as I};
        use super::sibling::Thing;
        fn f() { crate::rt::schedule(t); let x = crate::time::wheel::Wheel::<u8>::new(); }
        macro_rules! m { () => { $crate::op::OnFd } }
    "#;
    assert_eq!(
        paths_of(src, &["net", "tcp"]),
        [
            "net:rt",
            "net:rt::Shared",
            "net:io::fd",
            "net:io::traits",
            "net:op",
            "net:time::Instant",
            "net:rt::schedule",
            "net:time::wheel",
            "net:op::OnFd",
        ]
    );
    // `super::` from a top-level file reaches the root; from a submodule it
    // does not.
    assert_eq!(paths_of("use super::net::X;", &["sim"]), ["sim:net::X"]);
    assert_eq!(
        paths_of("use super::super::net::X;", &["io", "fd"]),
        ["io:net::X"]
    );
    assert!(paths_of("use super::X;", &["io", "fd"]).is_empty());
    // Inside an inline module, `super::` climbs one level less.
    assert!(paths_of("mod tests { use super::X; }", &["io"]).is_empty());
    assert_eq!(
        paths_of("mod t { use super::super::net::X; }", &["io"]),
        ["io:net::X"]
    );
}

#[test]
fn parser_skips_comments_strings_and_chars() {
    let src = r##"
        // use crate::net::A;
        /* crate::net::B /* nested crate::net::C */ crate::net::D */
        /// [`X`](crate::net::E)
        const S: &str = "crate::net::F \" crate::net::G";
        const R: &str = r#"crate::net::H " crate::net::I"#;
        const B: &[u8] = b"crate::net::J";
        const C: char = '"'; const Q: char = '\''; fn l<'a>(x: &'a u8) {}
        use crate::time::K;
    "##;
    assert_eq!(paths_of(src, &["io"]), ["io:time::K"]);
}

#[test]
fn lib_rs_re_exports_resolve_to_their_module() {
    let toks = tokenize("pub use task::group::{GroupTask, TaskGroup as TG}; pub use rt::run;");
    let semi = toks
        .iter()
        .position(|(t, _)| *t == Tok::Semi)
        .expect("a `;`");
    assert_eq!(
        use_leaves(&toks, 2),
        [
            ("task".to_string(), "GroupTask".to_string()),
            ("task".to_string(), "TG".to_string())
        ]
    );
    assert_eq!(
        use_leaves(&toks, semi + 3),
        [("rt".to_string(), "run".to_string())]
    );
}
