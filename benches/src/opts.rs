//! Command line: `coil-benches [workload] [peer=<name>] [key=value ...] [--quick]`.

use std::collections::BTreeMap;

/// Parsed arguments.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// The workload to run (none: all of them).
    pub workload: Option<String>,
    /// `key=value` pairs, `peer` included.
    pub keys: BTreeMap<String, String>,
    /// `--quick` or `quick=1`: N ÷ 10 and one repetition.
    pub quick: bool,
}

pub const USAGE: &str = "\
usage: coil-benches [--quick]                       every workload, every peer: table + ratios
       coil-benches <workload> peer=<name> [k=v...]  one run, one JSON line on stdout
       coil-benches <workload> [k=v...]              one workload, every peer: table
       coil-benches report [out=DIR] [in=FILES]      every suite (or saved output): DIR/report.html
workloads: spawn (n=500000), yield (tasks=1000 iters=1000), channel (n=2000000 cap=1024 impl=mpsc|queue;
           suite rows peer@impl), timers (tasks=100000),
           memory (W7: n=100000 impl=gate|<the peer's own primitive>; suite rows peer@impl),
           multicore (W8: part=w8a|w8b loops=1|2 n=...; peers coil/uring coil/epoll, tokio for w8b)
keys: peer=<name> reps=<k, default 3> quick=1 (same as --quick: N/10, reps=1) timeout_s=60";

impl Opts {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts::default();
        for a in args {
            if a == "--quick" || a == "quick" {
                o.quick = true;
            } else if a == "-h" || a == "--help" {
                return Err(USAGE.to_string());
            } else if let Some((k, v)) = a.split_once('=') {
                if k == "quick" {
                    o.quick = v != "0";
                } else {
                    o.keys.insert(k.to_string(), v.to_string());
                }
            } else if a.starts_with('-') || o.workload.is_some() {
                return Err(format!("unexpected argument {a:?}\n{USAGE}"));
            } else {
                o.workload = Some(a);
            }
        }
        Ok(o)
    }

    pub fn peer(&self) -> Option<&str> {
        self.keys.get("peer").map(String::as_str)
    }

    /// `key` as a number, or `default` when absent.
    pub fn get_u64(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.keys.get(key) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|e| format!("{key}={v}: {e}")),
        }
    }

    /// A default size, divided by 10 in quick mode.
    pub fn shrink(&self, n: u64) -> u64 {
        if self.quick { (n / 10).max(1) } else { n }
    }

    /// Repetitions per (workload, peer): `reps=`, else 1 when quick, else 3.
    pub fn reps(&self) -> Result<u64, String> {
        Ok(self.get_u64("reps", if self.quick { 1 } else { 3 })?.max(1))
    }

    /// The arguments to hand a child for one run of `workload` on `peer`.
    pub fn child_args(&self, workload: &str, peer: &str) -> Vec<String> {
        let mut v = vec![workload.to_string(), format!("peer={peer}")];
        for (k, val) in &self.keys {
            if !matches!(k.as_str(), "peer" | "reps" | "timeout_s") {
                v.push(format!("{k}={val}"));
            }
        }
        if self.quick {
            v.push("quick=1".to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Opts {
        Opts::parse(s.split_whitespace().map(String::from)).unwrap()
    }

    #[test]
    fn parses_workload_keys_and_quick() {
        let o = parse("spawn peer=tokio n=1_000 --quick");
        assert_eq!(o.workload.as_deref(), Some("spawn"));
        assert_eq!(o.peer(), Some("tokio"));
        assert_eq!(o.get_u64("n", 5).unwrap(), 1000);
        assert!(o.quick);
        assert_eq!(o.reps().unwrap(), 1);
        assert_eq!(o.shrink(500_000), 50_000);
        assert_eq!(
            o.child_args("yield", "coil/epoll"),
            ["yield", "peer=coil/epoll", "n=1_000", "quick=1"]
        );
        assert_eq!(parse("").reps().unwrap(), 3);
        assert!(Opts::parse(["a".into(), "b".into()]).is_err());
    }
}
