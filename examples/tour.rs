//! A tour of coil through the classic asyncio programs, with wall times.
//!
//! Run it with `cargo run --release --example tour`. Each section is one
//! chapter of the guide (docs/guide/), running the same program as the
//! chapter's own example (`examples/guide_*.rs`, included below as modules):
//! Python asyncio programs rewritten with coil, their sleeps shortened (one
//! asyncio second is 100 ms here, 20 ms in the queues section; each section
//! says which) so the tour is quick. Every time printed is the real one.

use coil::time::Instant;

#[path = "guide_04_chained.rs"]
#[allow(dead_code)]
mod chained;
#[path = "guide_07_context_managers.rs"]
#[allow(dead_code)]
mod context_managers;
#[path = "guide_01_coroutines.rs"]
#[allow(dead_code)]
mod coroutines;
#[path = "echo.rs"]
#[allow(dead_code)]
mod echo;
#[path = "guide_02_event_loop.rs"]
#[allow(dead_code)]
mod event_loop;
#[path = "guide_06_generators.rs"]
#[allow(dead_code)]
mod generators;
#[path = "http_fetch.rs"]
#[allow(dead_code)]
mod http_fetch;
#[path = "guide_05_queues.rs"]
#[allow(dead_code)]
mod queues;
#[path = "guide_03_tasks_gather.rs"]
#[allow(dead_code)]
mod tasks_gather;

fn section(title: &str) {
    println!("\n== {title} ==");
}

fn main() {
    let rt = coil::Runtime::new().expect("start the event loop");
    println!("coil tour — event loop on the {} driver", rt.driver());
    let start = Instant::now();
    rt.block_on(async {
        section("1. coroutines and await: three awaits in a row (countsync)");
        coroutines::demo().await;

        section("2. the event loop: two 300 ms jobs, run concurrently");
        event_loop::two_jobs().await;

        section("3. tasks and gather: countasync");
        tasks_gather::countasync().await;
        section("3. gather order: results in argument order, not completion order");
        tasks_gather::gather_order().await;
        section("3. rand.py: makerandom with seeded draws");
        tasks_gather::rand().await;
        section("3. create_task");
        tasks_gather::create_task().await;

        section("4. chained coroutines (seeded random delays)");
        chained::demo().await;

        section("5. queues: producers and consumers (asyncq)");
        queues::demo().await;

        section("6. async generators and comprehensions (mygen)");
        generators::demo().await;

        section("7. async context managers: lock, semaphore, TaskGroup");
        context_managers::demo().await;

        section("8. streams: an echo server and 20 clients (echo)");
        let s = echo::demo(20, 50).await.expect("echo");
        println!("{} clients echoed {} lines", s.clients, s.lines);

        section("9. asynchronous requests: crawling a local server (http_fetch; areq.py itself: examples/areq)");
        let r = http_fetch::demo(100, 8).await.expect("http_fetch");
        println!(
            "fetched {} pages, {} links ({} lines written and read back)",
            r.fetched, r.links, r.lines
        );
    });
    println!("\ntour finished in {} ms", start.elapsed().as_millis());
}
