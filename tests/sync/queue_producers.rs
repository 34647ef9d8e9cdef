//! The asyncio notes' producer/consumer program: N producers put random
//! items after seeded random delays, M consumers get and `task_done`;
//! `queue.join()` then cancels the consumers.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coil::queue::Queue;
use coil::spawn;
use coil::time::sleep;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn program(rt: &coil::Runtime, nprod: usize, ncon: usize, maxsize: usize) {
    let produced = Rc::new(RefCell::new(Vec::new()));
    let consumed = Rc::new(RefCell::new(Vec::new()));
    let (p2, c2) = (produced.clone(), consumed.clone());
    rt.block_on(async move {
        let q: Queue<(usize, u64)> = Queue::new(maxsize);
        let producers: Vec<_> = (0..nprod)
            .map(|id| {
                let (q, log) = (q.clone(), p2.clone());
                spawn(async move {
                    let mut rng = Rng(id as u64);
                    let n = 1 + rng.next() % 10;
                    for _ in 0..n {
                        sleep(Duration::from_millis(rng.next() % 3)).await;
                        let item = (id, rng.next() % 1000);
                        log.borrow_mut().push(item);
                        q.put(item).await.unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..ncon)
            .map(|id| {
                let (q, log) = (q.clone(), c2.clone());
                spawn(async move {
                    let mut rng = Rng(1000 + id as u64);
                    loop {
                        let item = q.get().await.unwrap();
                        sleep(Duration::from_millis(rng.next() % 3)).await;
                        log.borrow_mut().push(item);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.await.unwrap();
        }
        q.join().await;
        assert_eq!(q.unfinished_tasks(), 0);
        for c in &consumers {
            c.cancel();
        }
        for c in consumers {
            assert!(c.await.unwrap_err().is_cancelled());
        }
    });
    let mut p = produced.borrow().clone();
    let mut c = consumed.borrow().clone();
    assert!(!p.is_empty());
    p.sort();
    c.sort();
    assert_eq!(p, c, "every produced item was consumed exactly once");
}

driver_test! {
    fn five_producers_ten_consumers_unbounded(rt) {
        program(rt, 5, 10, 0);
    }

    fn five_producers_three_consumers_bounded(rt) {
        program(rt, 5, 3, 2);
    }
}
