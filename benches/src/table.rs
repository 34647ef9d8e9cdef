//! Medians over repetitions, the results table and the RATIOS.

use std::fmt::Write as _;

use crate::report::{field, field_f64, median};

/// The W4 fields shown in the table (medians over repetitions, except
/// `early_wakes`, which is the maximum: one early wake is one too many).
const W4_FIELDS: [&str; 4] = ["wall_ms", "late_p50_us", "late_p99_us", "late_max_us"];

/// One (workload, peer) cell after aggregation.
#[derive(Debug, Clone)]
pub struct Cell {
    pub workload: String,
    pub peer: String,
    /// Every repetition produced a line whose `ok` is true.
    pub ok: bool,
    /// Median of `value` over the repetitions that produced one.
    pub value: Option<f64>,
    /// W4 medians, in `W4_FIELDS` order.
    pub w4: [Option<f64>; 4],
    pub early_max: Option<f64>,
    pub error: Option<String>,
}

fn med(lines: &[String], key: &str) -> Option<f64> {
    let v: Vec<f64> = lines.iter().filter_map(|l| field_f64(l, key)).collect();
    (!v.is_empty()).then(|| median(&v))
}

pub fn aggregate(results: &[(String, String, Vec<String>)]) -> Vec<Cell> {
    results
        .iter()
        .map(|(w, p, lines)| Cell {
            workload: w.clone(),
            peer: p.clone(),
            ok: lines.iter().all(|l| field(l, "ok") == Some("true")),
            value: med(lines, "value"),
            w4: W4_FIELDS.map(|k| med(lines, k)),
            early_max: lines
                .iter()
                .filter_map(|l| field_f64(l, "early_wakes"))
                .reduce(f64::max),
            error: lines
                .iter()
                .find_map(|l| field(l, "error").map(str::to_string)),
        })
        .collect()
}

pub fn num(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

fn cell<'a>(cells: &'a [Cell], w: &str, p: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.workload == w && c.peer == p)
}

/// The results table: one section per workload, one row per peer.
pub fn render(cells: &[Cell], peers: &[&str], reps: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nRESULTS (median of {reps} run(s) per cell, each in its own pinned process)"
    );
    for (w, title, unit) in [
        ("spawn", "W1 spawn", "ns/task"),
        ("yield", "W2 yield", "ns/yield"),
    ] {
        if !cells.iter().any(|c| c.workload == w) {
            continue;
        }
        let _ = writeln!(s, "\n{title:<16} {unit:>10}  ok");
        for p in peers {
            if let Some(c) = cell(cells, w, p) {
                let _ = writeln!(
                    s,
                    "{p:<16} {:>10}  {}{}",
                    num(c.value, 1),
                    c.ok,
                    err_note(c)
                );
            }
        }
    }
    if cells.iter().any(|c| c.workload == "timers") {
        let _ = writeln!(
            s,
            "\n{:<16} {:>11} {:>9} {:>10} {:>10} {:>10} {:>6}  ok",
            "W4 timers", "overhead_ms", "wall_ms", "p50_us", "p99_us", "max_us", "early"
        );
        for p in peers {
            if let Some(c) = cell(cells, "timers", p) {
                let _ = writeln!(
                    s,
                    "{p:<16} {:>11} {:>9} {:>10} {:>10} {:>10} {:>6}  {}{}",
                    num(c.value, 1),
                    num(c.w4[0], 1),
                    num(c.w4[1], 0),
                    num(c.w4[2], 0),
                    num(c.w4[3], 0),
                    num(c.early_max, 0),
                    c.ok,
                    err_note(c)
                );
            }
        }
    }
    s
}

pub fn err_note(c: &Cell) -> String {
    c.error
        .as_ref()
        .map_or_else(String::new, |e| format!("  error: {e}"))
}

/// RATIOS: peer ns ÷ coil ns for W1/W2 (> 1 means coil is faster), against
/// both coil drivers; W4 overhead and lateness p50/p99 side by side.
pub fn ratios(cells: &[Cell], peers: &[&str]) -> String {
    let mut s = String::new();
    let coils: Vec<&str> = peers
        .iter()
        .copied()
        .filter(|p| p.starts_with("coil/"))
        .collect();
    if coils.is_empty() {
        return s;
    }
    // The W1/W2 block only when one of them ran (not for a `memory` or
    // `channel` run alone, where it would be all dashes).
    let w12 = cells
        .iter()
        .any(|c| c.workload == "spawn" || c.workload == "yield");
    if w12 {
        let _ = writeln!(
            s,
            "\nRATIOS  W1/W2: peer ns / coil ns (> 1.00 means coil is faster)"
        );
    }
    let mut head = format!("{:<16}", "peer");
    for c in &coils {
        for w in ["W1", "W2"] {
            head += &format!(" {:>16}", format!("{w} vs {c}"));
        }
    }
    if w12 {
        let _ = writeln!(s, "{head}");
    }
    for p in peers.iter().filter(|p| w12 && !p.starts_with("coil/")) {
        let mut row = format!("{p:<16}");
        for c in &coils {
            for w in ["spawn", "yield"] {
                let r = match (
                    cell(cells, w, p).and_then(|x| x.value),
                    cell(cells, w, c).and_then(|x| x.value),
                ) {
                    (Some(pv), Some(cv)) if cv > 0.0 => Some(pv / cv),
                    _ => None,
                };
                row += &format!(" {:>16}", num(r, 2));
            }
        }
        let _ = writeln!(s, "{row}");
    }
    if cells.iter().any(|c| c.workload == "timers") {
        let _ = writeln!(
            s,
            "\nW4 side by side    overhead_ms    late p50/p99 us    early"
        );
        for p in peers {
            if let Some(c) = cell(cells, "timers", p) {
                let _ = writeln!(
                    s,
                    "{p:<16} {:>14} {:>18} {:>8}",
                    num(c.value, 1),
                    format!("{}/{}", num(c.w4[1], 0), num(c.w4[2], 0)),
                    num(c.early_max, 0)
                );
            }
        }
    }
    s
}

/// The rows of a workload measured per `peer@impl` (W3, W7): the cells of
/// `workload` and their table under `title` (empty when there are none).
pub fn impl_rows<'a>(
    cells: &'a [Cell],
    workload: &str,
    title: &str,
    unit: &str,
    reps: u64,
) -> (Vec<&'a Cell>, String) {
    let mut s = String::new();
    let rows: Vec<&Cell> = cells.iter().filter(|c| c.workload == workload).collect();
    if rows.is_empty() {
        return (rows, s);
    }
    let _ = writeln!(s, "\n{title:<22} {unit:>10}  ok   (median of {reps})");
    for c in &rows {
        let _ = writeln!(
            s,
            "{:<22} {:>10}  {}{}",
            c.peer,
            num(c.value, 1),
            c.ok,
            err_note(c)
        );
    }
    (rows, s)
}

/// W3: one row per `peer@impl`, then tokio mpsc ÷ each coil row.
pub fn channel(cells: &[Cell], reps: u64) -> String {
    let (rows, mut s) = impl_rows(cells, "channel", "W3 channel", "ns/msg", reps);
    let tokio = rows
        .iter()
        .find(|c| c.peer == "tokio@mpsc")
        .and_then(|c| c.value);
    if let Some(t) = tokio {
        let _ = writeln!(
            s,
            "\nRATIOS W3: tokio mpsc ns / coil ns (> 1.00 means coil is faster)"
        );
        for c in rows.iter().filter(|c| c.peer.starts_with("coil/")) {
            let r = c.value.filter(|&v| v > 0.0).map(|v| t / v);
            let _ = writeln!(s, "{:<18} {:>10}", c.peer, num(r, 2));
        }
    }
    s
}
