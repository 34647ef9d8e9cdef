//! areq.py, the "full program: asynchronous requests" of Real Python's
//! asyncio walkthrough, ported to coil: reads a file of URLs, fetches them
//! all concurrently, extracts every `href` of each page, resolves it against
//! the page's URL (Python's `urljoin`) and appends `source<TAB>found` lines
//! to an output file. A URL that fails (timeout, HTTP error, reset,
//! `https://`, ...) is logged on stderr and the run goes on.
//!
//! ```text
//! cargo run --release --example areq -- urls.txt [foundurls.txt] [--timeout SECS]
//! ```
//!
//! `urls.txt` holds one URL per line (blank lines and `#` comments are
//! skipped); the output (default `foundurls.txt`) is replaced, starting with
//! areq.py's header line `source_url<TAB>parsed_url`. The program creates no
//! other file. The client speaks plain HTTP/1.1 only (no TLS): see
//! `crawler/http.rs` for what it handles, `crawler/mod.rs` for the mapping
//! from areq.py and where the port differs, `crawler/urljoin.rs` for the
//! `urljoin` rules (fragments included) and `crawler/html.rs` for what
//! counts as an href.

mod crawler;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crawler::Config;

/// How to call the program.
const USAGE: &str = "usage: areq URLS_FILE [OUT_FILE (default foundurls.txt)] [--timeout SECS]";

fn main() -> ExitCode {
    let mut config = Config::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--timeout" {
            match args.next().and_then(|s| s.parse::<f64>().ok()) {
                Some(secs) if secs > 0.0 => config.timeout = Duration::from_secs_f64(secs),
                _ => {
                    eprintln!("--timeout needs a number of seconds\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
        } else {
            files.push(PathBuf::from(arg));
        }
    }
    let (urls, out) = match files.as_slice() {
        [urls] => (urls.clone(), PathBuf::from("foundurls.txt")),
        [urls, out] => (urls.clone(), out.clone()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match coil::run(crawler::run(&urls, &out, &config)) {
        Ok(outcomes) => {
            let mut failed = 0;
            for o in &outcomes {
                if let Err(e) = &o.result {
                    failed += 1;
                    eprintln!("failed: {}: {e}", o.url);
                }
            }
            let lines: usize = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).sum();
            println!(
                "{} URLs: {} fetched, {failed} failed; {lines} links written to {}",
                outcomes.len(),
                outcomes.len() - failed,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("areq: {e}");
            ExitCode::FAILURE
        }
    }
}
