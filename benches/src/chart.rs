//! `coil-benches report`: one self-contained HTML page with a bar chart per
//! workload (coil beside every peer, each bar labelled with its value and its
//! ratio to coil), and the raw JSON lines beside it.
//!
//! * `coil-benches report [out=DIR] [--quick]` runs the suites listed in
//!   [`SUITES`] as child processes of this binary (each one as its own
//!   command would: pinned children, interleaved repetitions), collects every
//!   JSON result line they print, and writes `DIR/report.html` and
//!   `DIR/results.jsonl` (default `DIR`: `coil-bench-report`).
//! * `coil-benches report in=a.txt,b.txt [out=DIR]` renders saved output
//!   instead: any text in which result lines appear (a suite's stderr with
//!   its `[spawn 1/3 coil/uring] {...}` prefixes, or bare JSON lines).
//!
//! A chart is one (workload, metric) and, for W8, one (part, loops); W3's rows
//! and W9's are `peer@impl`, W7's gate rows and own-primitive rows are two charts. A
//! bar is the median of the peer's repetitions. The ratio printed beside a
//! peer's bar is how many times coil/uring's result is better than it
//! (> 1: coil ahead), whichever way the metric points.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use crate::opts::Opts;
use crate::report::{field, field_f64, median};

/// The suites `report` runs, as argument lists of this binary.
pub const SUITES: &[&[&str]] = &[&[], &["echo"], &["file"], &["multicore"], &["idle"]];

/// Metrics where more is better; every other metric is a cost.
const HIGHER_IS_BETTER: &[&str] = &["rps", "reads_per_s", "tasks_per_s"];

/// Extra fields charted beside a workload's metric: (workload, field, unit).
const EXTRA: &[(&str, &str, &str)] = &[
    ("echo", "server_cpu_us_per_req", "µs"),
    ("timers", "late_p99_us", "µs"),
    ("idle", "wake_ms", "ms"),
    ("idle", "server_cpu_ms", "ms"),
];

/// One parsed result line.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    chart: String,
    unit: String,
    higher_better: bool,
    label: String,
    value: f64,
}

/// The value of `key` inside the line's `params` object.
fn param<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let p = line.find("\"params\":{")? + "\"params\":".len();
    let end = line[p..].find('}')? + p;
    let obj = &line[p..=end];
    let pat = format!("\"{key}\":");
    let start = obj.find(&pat)? + pat.len() + p;
    let rest = &line[start..=end];
    Some(match rest.strip_prefix('"') {
        Some(r) => &r[..r.find('"')?],
        None => rest[..rest.find([',', '}'])?].trim(),
    })
}

/// The rows one result line gives (none for errors and non-result text).
fn rows_of(text: &str) -> Vec<Row> {
    let Some(at) = text.find("{\"peer\":") else {
        return Vec::new();
    };
    let line = &text[at..];
    let (Some(peer), Some(workload), Some(metric), Some(value)) = (
        field(line, "peer"),
        field(line, "workload"),
        field(line, "metric"),
        field_f64(line, "value"),
    ) else {
        return Vec::new();
    };
    if field(line, "ok") != Some("true") {
        return Vec::new();
    }
    let imp = param(line, "impl");
    let mut label = peer.to_string();
    let mut chart = format!("{workload}: {metric}");
    match workload {
        "channel" | "idle" => label = format!("{peer}@{}", imp.unwrap_or("?")),
        "memory" if imp == Some("gate") => chart.push_str(" (gate)"),
        "memory" => chart.push_str(" (own primitive)"),
        _ => {}
    }
    for key in ["part", "loops"] {
        if let Some(v) = param(line, key) {
            let _ = write!(chart, " {key}={v}");
        }
    }
    let unit = field(line, "unit").unwrap_or("").to_string();
    let mut out = vec![Row {
        chart,
        unit,
        higher_better: HIGHER_IS_BETTER.contains(&metric),
        label: label.clone(),
        value,
    }];
    for &(w, f, unit) in EXTRA {
        if w == workload
            && let Some(v) = field_f64(line, f)
        {
            out.push(Row {
                chart: format!("{workload}: {f}"),
                unit: unit.to_string(),
                higher_better: false,
                label: label.clone(),
                value: v,
            });
        }
    }
    out
}

/// A chart: its bars (label, median), sorted best first.
struct Chart {
    title: String,
    unit: String,
    higher_better: bool,
    bars: Vec<(String, f64)>,
}

fn charts(rows: &[Row]) -> Vec<Chart> {
    let mut by: BTreeMap<&str, (&Row, BTreeMap<&str, Vec<f64>>)> = BTreeMap::new();
    for r in rows {
        let e = by.entry(&r.chart).or_insert((r, BTreeMap::new()));
        e.1.entry(&r.label).or_default().push(r.value);
    }
    by.into_values()
        .map(|(first, vals)| {
            let mut bars: Vec<(String, f64)> = vals
                .into_iter()
                .map(|(l, v)| (l.to_string(), median(&v)))
                .collect();
            bars.sort_by(|a, b| {
                let o = a.1.total_cmp(&b.1);
                if first.higher_better { o.reverse() } else { o }
            });
            Chart {
                title: first.chart.clone(),
                unit: first.unit.clone(),
                higher_better: first.higher_better,
                bars,
            }
        })
        .collect()
}

/// The coil row the chart's ratios are taken against: `coil/uring` itself,
/// else its best `coil/uring@impl` row (W3, W9), else the best coil row (a
/// variant such as `coil/uring+spin` is never the baseline while the plain
/// row is there).
fn baseline(c: &Chart) -> Option<f64> {
    let find = |p: &dyn Fn(&str) -> bool| c.bars.iter().find(|(l, _)| p(l));
    find(&|l| l == "coil/uring")
        .or_else(|| find(&|l| l.starts_with("coil/uring@")))
        .or_else(|| find(&|l| l.starts_with("coil")))
        .map(|&(_, v)| v)
        .filter(|v| *v > 0.0)
}

/// How many times coil's result is better than `v` (> 1: coil ahead).
fn ratio(c: &Chart, base: f64, v: f64) -> f64 {
    if c.higher_better { base / v } else { v / base }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn svg(c: &Chart) -> String {
    const BAR_H: usize = 22;
    const LABEL_W: usize = 190;
    const PLOT_W: usize = 420;
    let h = BAR_H * c.bars.len() + 8;
    let width = LABEL_W + PLOT_W + 260;
    let max = c
        .bars
        .iter()
        .map(|b| b.1)
        .fold(0.0_f64, f64::max)
        .max(1e-12);
    let base = baseline(c);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    for (i, (label, v)) in c.bars.iter().enumerate() {
        let y = 4 + i * BAR_H;
        let w = ((v / max) * PLOT_W as f64).round().max(1.0);
        let coil = label.starts_with("coil");
        let fill = if coil { "#c0392b" } else { "#7f8c8d" };
        let note = match base {
            Some(b) if !coil && *v > 0.0 => {
                let r = ratio(c, b, *v);
                let who = if r >= 1.0 {
                    "coil ahead"
                } else {
                    "coil behind"
                };
                format!(" — {r:.2}× ({who})")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"{fill}\"/>\
             <text x=\"{}\" y=\"{}\">{} {}{}</text>",
            LABEL_W - 6,
            y + 15,
            esc(label),
            BAR_H - 6,
            LABEL_W as f64 + w + 6.0,
            y + 15,
            fmt_value(*v),
            esc(&c.unit),
            esc(&note)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_value(v: f64) -> String {
    if v >= 100_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The page: one chart per (workload, metric), then the raw lines.
fn html(charts: &[Chart], raw: &[String]) -> String {
    let mut s = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>coil-benches report</title>\
         <style>body{font-family:sans-serif;margin:2em}h2{font-size:15px;margin:1.4em 0 .3em}\
         pre{font-size:11px;background:#f4f4f4;padding:1em;overflow-x:auto}</style></head><body>\n\
         <h1>coil-benches</h1>\n<p>Medians of each peer's repetitions, best first. Beside each peer: \
         how many times coil/uring's result is better than the peer's (&gt; 1: coil ahead). \
         Workloads are defined in benches/WORKLOADS.md.</p>\n",
    );
    for c in charts {
        let dir = if c.higher_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(s, "<h2>{} ({dir})</h2>", esc(&c.title));
        s.push_str(&svg(c));
    }
    s.push_str("<h2>Raw results (one JSON line per run)</h2>\n<pre>");
    for l in raw {
        s.push_str(&esc(l));
        s.push('\n');
    }
    s.push_str("</pre></body></html>\n");
    s
}

/// Runs this binary with `args` and returns every line it printed (stdout
/// and stderr), echoing them to stderr as they come.
fn run_suite(args: &[String]) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the suite {args:?}: {e}"))?;
    let err = child.stderr.take().expect("piped stderr");
    let errs = std::thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .inspect(|l| eprintln!("{l}"))
            .collect::<Vec<_>>()
    });
    let out = child.stdout.take().expect("piped stdout");
    let mut lines: Vec<String> = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .inspect(|l| eprintln!("{l}"))
        .collect();
    lines.extend(errs.join().unwrap_or_default());
    let _ = child.wait();
    Ok(lines)
}

pub fn main(opts: &Opts) -> ExitCode {
    match report(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coil-benches report: {e}");
            ExitCode::from(2)
        }
    }
}

fn report(opts: &Opts) -> Result<(), String> {
    let mut text = Vec::new();
    match opts.keys.get("in") {
        Some(files) => {
            for f in files.split(',') {
                let s = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
                text.extend(s.lines().map(String::from));
            }
        }
        None => {
            for suite in SUITES {
                let mut args: Vec<String> = suite.iter().map(|s| s.to_string()).collect();
                if opts.quick {
                    args.push("--quick".into());
                }
                text.extend(run_suite(&args)?);
            }
        }
    }
    let raw: Vec<String> = text
        .iter()
        .filter_map(|l| l.find("{\"peer\":").map(|i| l[i..].to_string()))
        .collect();
    let rows: Vec<Row> = raw.iter().flat_map(|l| rows_of(l)).collect();
    if rows.is_empty() {
        return Err("no result lines found".into());
    }
    let charts = charts(&rows);
    let dir = PathBuf::from(
        opts.keys
            .get("out")
            .map_or("coil-bench-report", String::as_str),
    );
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let page = dir.join("report.html");
    std::fs::write(&page, html(&charts, &raw)).map_err(|e| format!("{}: {e}", page.display()))?;
    let json = dir.join("results.jsonl");
    std::fs::write(&json, raw.join("\n") + "\n").map_err(|e| format!("{}: {e}", json.display()))?;
    eprintln!(
        "coil-benches report: {} charts from {} results: {} and {}",
        charts.len(),
        raw.len(),
        page.display(),
        json.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAWN_C: &str = "[spawn 1/3 coil/uring] {\"peer\":\"coil/uring\",\"workload\":\"spawn\",\
        \"params\":{\"n\":500000,\"pin\":\"taskset\"},\"metric\":\"ns_per_task\",\"value\":200.0,\
        \"unit\":\"ns\",\"ok\":true,\"elapsed_ms\":1}";
    const SPAWN_T: &str = "{\"peer\":\"tokio\",\"workload\":\"spawn\",\"params\":{\"n\":500000},\
        \"metric\":\"ns_per_task\",\"value\":500.0,\"unit\":\"ns\",\"ok\":true,\"elapsed_ms\":1}";
    const FILE_R: &str = "{\"peer\":\"raw-uring\",\"workload\":\"file\",\"params\":{\"impl\":\"x\"},\
        \"metric\":\"reads_per_s\",\"value\":100.0,\"unit\":\"reads/s\",\"ok\":true,\"elapsed_ms\":1}";
    const FILE_C: &str = "{\"peer\":\"coil/uring\",\"workload\":\"file\",\"params\":{\"impl\":\"y\"},\
        \"metric\":\"reads_per_s\",\"value\":80.0,\"unit\":\"reads/s\",\"ok\":true,\"elapsed_ms\":1}";

    #[test]
    fn lines_become_rows_and_errors_are_skipped() {
        let r = rows_of(SPAWN_C);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].chart, "spawn: ns_per_task");
        assert_eq!((r[0].label.as_str(), r[0].value), ("coil/uring", 200.0));
        assert!(!r[0].higher_better);
        let chan = "{\"peer\":\"tokio\",\"workload\":\"channel\",\"params\":{\"impl\":\"mpsc\"},\
            \"metric\":\"ns_per_msg\",\"value\":9,\"unit\":\"ns\",\"ok\":true}";
        assert_eq!(rows_of(chan)[0].label, "tokio@mpsc");
        let w8 = "{\"peer\":\"coil/epoll\",\"workload\":\"multicore\",\"params\":{\"part\":\"w8a\",\
            \"loops\":2,\"n\":2000000},\"metric\":\"tasks_per_s\",\"value\":5,\"unit\":\"tasks/s\",\"ok\":true}";
        assert_eq!(
            rows_of(w8)[0].chart,
            "multicore: tasks_per_s part=w8a loops=2"
        );
        assert!(rows_of(w8)[0].higher_better);
        let err = "{\"peer\":\"smol\",\"workload\":\"spawn\",\"metric\":\"error\",\"value\":null,\"error\":\"x\"}";
        assert!(rows_of(err).is_empty());
        assert!(rows_of("total 12.9 s").is_empty());
    }

    #[test]
    fn ratios_say_how_far_coil_is_ahead_either_way() {
        let rows: Vec<Row> = [SPAWN_C, SPAWN_T, FILE_R, FILE_C]
            .iter()
            .flat_map(|l| rows_of(l))
            .collect();
        let cs = charts(&rows);
        assert_eq!(cs.len(), 2);
        let file = cs.iter().find(|c| c.title.starts_with("file")).unwrap();
        assert_eq!(file.bars[0].0, "raw-uring", "best first");
        let b = baseline(file).unwrap();
        assert!(
            (ratio(file, b, 100.0) - 0.8).abs() < 1e-9,
            "coil behind raw-uring"
        );
        let spawn = cs.iter().find(|c| c.title.starts_with("spawn")).unwrap();
        let b = baseline(spawn).unwrap();
        assert!(
            (ratio(spawn, b, 500.0) - 2.5).abs() < 1e-9,
            "coil ahead of tokio"
        );
        let spin = Chart {
            title: "w8b".into(),
            unit: "ns".into(),
            higher_better: false,
            bars: vec![("coil/uring+spin".into(), 2.0), ("coil/uring".into(), 16.0)],
        };
        assert_eq!(baseline(&spin), Some(16.0), "the plain row, not a variant");
        let page = html(&cs, &[SPAWN_T.to_string()]);
        assert!(page.contains("2.50× (coil ahead)"), "{page}");
        assert!(page.contains("0.80× (coil behind)"), "{page}");
        assert!(page.contains("&quot;peer&quot;:&quot;tokio&quot;"));
    }
}
