//! The one-line JSON result (benches/WORKLOADS.md §0), percentiles, and the small
//! amount of JSON reading the parent needs to collect its children's lines.

use std::fmt::Write as _;

/// A JSON value, enough for the flat result objects of the spec.
#[derive(Debug, Clone)]
pub enum Json {
    Num(f64),
    Int(i64),
    Bool(bool),
    Str(String),
    Obj(Vec<(String, Json)>),
    Null,
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Num(x) if x.is_finite() => {
                let _ = write!(out, "{}", round3(*x));
            }
            Json::Num(_) | Json::Null => out.push_str("null"),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Json::Str(s) => write_str(out, s),
            Json::Obj(fields) => write_object(out, fields),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_object(out: &mut String, fields: &[(String, Json)]) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        v.write(out);
    }
    out.push('}');
}

/// The result of one run of one workload for one peer.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub peer: String,
    pub workload: String,
    pub params: Vec<(String, Json)>,
    pub metric: String,
    pub value: Option<f64>,
    pub unit: String,
    pub ok: bool,
    pub elapsed_ms: f64,
    pub extra: Vec<(String, Json)>,
    pub error: Option<String>,
}

impl Outcome {
    /// The line written when no result could be had.
    pub fn error(peer: &str, workload: &str, msg: &str) -> Outcome {
        Outcome {
            peer: peer.to_string(),
            workload: workload.to_string(),
            params: Vec::new(),
            metric: "error".to_string(),
            value: None,
            unit: String::new(),
            ok: false,
            elapsed_ms: 0.0,
            extra: Vec::new(),
            error: Some(msg.to_string()),
        }
    }

    /// Prints the JSON line on stdout; the exit code of a single run (0 only if `ok`).
    pub fn emit(&self) -> std::process::ExitCode {
        println!("{}", self.to_json());
        if self.ok {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        }
    }

    pub fn to_json(&self) -> String {
        let mut f = vec![
            ("peer".to_string(), Json::Str(self.peer.clone())),
            ("workload".to_string(), Json::Str(self.workload.clone())),
        ];
        if let Some(e) = &self.error {
            f.push(("metric".into(), Json::Str("error".into())));
            f.push(("value".into(), Json::Null));
            f.push(("error".into(), Json::Str(e.clone())));
        } else {
            f.push(("params".into(), Json::Obj(self.params.clone())));
            f.push(("metric".into(), Json::Str(self.metric.clone())));
            f.push(("value".into(), self.value.map_or(Json::Null, Json::Num)));
            f.push(("unit".into(), Json::Str(self.unit.clone())));
            f.push(("ok".into(), Json::Bool(self.ok)));
            f.push(("elapsed_ms".into(), Json::Num(self.elapsed_ms)));
            f.extend(self.extra.iter().cloned());
        }
        let mut s = String::new();
        write_object(&mut s, &f);
        s
    }
}

/// Nearest-rank percentile of an ascending-sorted slice: element
/// `ceil(p/100 * n)` (1-based), clamped to `[1, n]`.
pub fn nearest_rank(sorted: &[i64], p: f64) -> i64 {
    assert!(!sorted.is_empty());
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Median of a non-empty list (the lower middle for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// The raw text after `"key":` in a flat JSON line (first occurrence outside
/// the `params` object), up to the next `,` or `}`; strings lose their quotes.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let body = match line.find("\"params\":{") {
        Some(p) => {
            let end = line[p..].find('}')? + p;
            format!("{}{}", &line[..p], &line[end + 1..])
        }
        None => line.to_string(),
    };
    let pat = format!("\"{key}\":");
    let start = body.find(&pat)? + pat.len();
    let rest = &body[start..];
    let raw = if let Some(r) = rest.strip_prefix('"') {
        &r[..r.find('"')?]
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim()
    };
    // Map back into `line` so that the lifetime is the input's.
    let pos = line.find(raw)?;
    Some(&line[pos..pos + raw.len()])
}

pub fn field_f64(line: &str, key: &str) -> Option<f64> {
    field(line, key)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_follows_the_spec() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 50.0), 50);
        assert_eq!(nearest_rank(&v, 99.0), 99);
        assert_eq!(nearest_rank(&v, 100.0), 100);
        assert_eq!(nearest_rank(&v, 0.0), 1);
        assert_eq!(nearest_rank(&[7], 99.0), 7);
    }

    #[test]
    fn json_round_trip_of_fields() {
        let o = Outcome {
            peer: "coil/uring".into(),
            workload: "spawn".into(),
            params: vec![("n".into(), Json::Int(10))],
            metric: "ns_per_task".into(),
            value: Some(12.5),
            unit: "ns".into(),
            ok: true,
            elapsed_ms: 0.125,
            extra: vec![("early_wakes".into(), Json::Int(0))],
            error: None,
        };
        let line = o.to_json();
        assert!(
            line.starts_with(
                "{\"peer\":\"coil/uring\",\"workload\":\"spawn\",\"params\":{\"n\":10},"
            )
        );
        assert_eq!(field(&line, "metric"), Some("ns_per_task"));
        assert_eq!(field_f64(&line, "value"), Some(12.5));
        assert_eq!(field(&line, "ok"), Some("true"));
        assert_eq!(field_f64(&line, "early_wakes"), Some(0.0));
        let e = Outcome::error("tokio", "yield", "boom").to_json();
        assert_eq!(field(&e, "metric"), Some("error"));
        assert_eq!(field(&e, "error"), Some("boom"));
    }
}
