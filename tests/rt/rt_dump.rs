//! `Handle::dump` (issue 17 item 2): every task of a loop with what it
//! waits on, as a tree, taken from another thread while the loop is held.
//! Checked by structure (the `Awaiting` nodes), and once by the `Display`
//! format.

use crate::support;

use std::rc::Rc;
use std::time::Duration;

use coil::runtime::{AwaitNode, Awaiting, Builder, TaskDump, TaskState};

fn debug_runtime(rt: &coil::Runtime) -> coil::Runtime {
    Builder::new()
        .driver(support::choice_like(rt))
        .debug(true)
        .build()
        .unwrap()
}

#[track_caller]
fn spawn_named<F: std::future::Future + 'static>(name: &str, f: F) -> coil::Task<F::Output> {
    coil::task::Builder::new().name(name).spawn(f)
}

/// `node`'s children, as `what`s only.
fn kinds(nodes: &[AwaitNode]) -> Vec<&Awaiting> {
    nodes.iter().map(|n| &n.what).collect()
}

/// The awaited tree of the task named `name`.
fn tree<'a>(dump: &'a TaskDump, name: &str) -> &'a [AwaitNode] {
    let t = dump
        .named(name)
        .unwrap_or_else(|| panic!("no task {name:?} in\n{dump}"));
    &t.awaiting
}

/// Runs a program whose tasks wait on a sleep, a queue, a lock, an I/O
/// op, and a gather of a sleep, a timeout around an event and a TaskGroup
/// with a child; dumps it from another thread once every task waits.
fn dump_of_program(rt: &coil::Runtime) -> (TaskDump, u64, i32) {
    let rt = debug_runtime(rt);
    let handle = rt.handle();
    rt.block_on(async move {
        let queue = Rc::new(coil::queue::Queue::<u32>::new(0));
        let lock = Rc::new(coil::sync::Mutex::new(()));
        let event = Rc::new(coil::sync::Event::new());
        let listener = coil::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listener_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let held = lock.lock().await;

        let _sleeper = spawn_named("sleeper", coil::time::sleep(Duration::from_secs(60)));
        let q = queue.clone();
        let _getter = spawn_named("getter", async move { q.get().await });
        let l = lock.clone();
        let _locker = spawn_named("locker", async move { drop(l.lock().await) });
        let _acceptor = spawn_named("acceptor", async move { listener.accept().await.is_ok() });
        let e = event.clone();
        let parent = spawn_named("parent", async move {
            let waits = async { coil::time::timeout(Duration::from_secs(60), e.wait()).await };
            let group = coil::task_group(|tg: coil::TaskGroup| async move {
                tg.builder()
                    .name("grandchild")
                    .spawn(coil::time::sleep(Duration::from_secs(60)))
                    .unwrap();
                Ok(())
            });
            coil::gather!(coil::time::sleep(Duration::from_secs(60)), waits, group).await
        });
        let parent_id = parent.id().as_u64();
        // Every task polled at least once and waiting: the program's own
        // turns, bounded (each yield is one turn of the loop).
        let mut dump = handle.dump();
        for _ in 0..100 {
            let spawned = || dump.tasks.iter().filter(|t| t.id != 0);
            if spawned().count() == 6 && spawned().all(|t| t.state == TaskState::Waiting) {
                break;
            }
            coil::task::yield_now().await;
            // From another thread, while this loop waits for it: the loop
            // does not have to answer.
            let h = handle.clone();
            dump = std::thread::spawn(move || h.dump()).join().unwrap();
        }
        drop(held);
        (dump, parent_id, listener_fd)
    })
}

driver_test! {
    fn dump_shows_each_task_and_its_await_tree(rt) {
        let (dump, parent_id, listener_fd) = dump_of_program(rt);
        assert!(dump.debug);
        // The six tasks, and the block_on future (id 0), polling now: the
        // dump was taken inside its poll.
        assert_eq!(dump.tasks.len(), 7, "{dump}");
        let main = dump.task(0).unwrap();
        assert_eq!(main.state, TaskState::Running, "{dump}");
        assert_eq!((main.name.as_deref(), main.spawned_at), (Some("block_on"), None));
        for t in dump.tasks.iter().filter(|t| t.id != 0) {
            assert_eq!(t.state, TaskState::Waiting, "{dump}");
            assert!(t.spawned_at.unwrap().file().ends_with("rt_dump.rs"), "{dump}");
            assert!(t.since_last_poll.is_some());
        }

        let sleeper = kinds(tree(&dump, "sleeper"));
        assert!(
            matches!(sleeper[..], [Awaiting::Sleep { deadline }]
                if *deadline > dump.taken + Duration::from_secs(50)),
            "{dump}"
        );
        assert_eq!(kinds(tree(&dump, "getter")), [&Awaiting::Sync("queue get")]);
        assert_eq!(kinds(tree(&dump, "locker")), [&Awaiting::Sync("lock")]);
        assert!(
            matches!(kinds(tree(&dump, "acceptor"))[..],
                [Awaiting::Io { op: "Accept", fd: Some(fd) }] if *fd == listener_fd),
            "{dump}"
        );

        // parent: gather [sleep, timeout [event wait], task_group [task]]
        let parent = tree(&dump, "parent");
        assert_eq!(dump.named("parent").unwrap().id, parent_id);
        assert_eq!(kinds(parent), [&Awaiting::Combinator("gather")], "{dump}");
        let gather = &parent[0].children;
        assert_eq!(gather.len(), 3, "{dump}");
        assert!(matches!(gather[0].what, Awaiting::Sleep { .. }), "{dump}");
        assert!(matches!(gather[1].what, Awaiting::Timeout { .. }), "{dump}");
        assert_eq!(kinds(&gather[1].children), [&Awaiting::Sync("event wait")]);
        assert_eq!(gather[2].what, Awaiting::Combinator("task_group"), "{dump}");
        let grandchild = dump.named("grandchild").unwrap();
        assert_eq!(
            kinds(&gather[2].children),
            [&Awaiting::Task { id: grandchild.id }],
            "{dump}"
        );
        assert!(matches!(kinds(&grandchild.awaiting)[..], [Awaiting::Sleep { .. }]));
    }
}

#[test]
fn dump_display_is_a_tree_with_awaited_tasks_nested() {
    let rt = coil::Runtime::new().unwrap();
    let (dump, _, _) = dump_of_program(&rt);
    let text = dump.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("loop {}: 7 tasks", dump.loop_id)),
        "{text}"
    );
    assert!(
        lines[1].starts_with("block_on future [running, polled "),
        "{text}"
    );
    let line = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in\n{text}"))
    };
    let parent = line("\"parent\" [waiting");
    assert!(lines[parent].starts_with("task "), "{text}");
    assert!(
        lines[parent].contains("spawned at tests/rt/rt_dump.rs:"),
        "{text}"
    );
    // The grandchild, awaited by the group, is printed under it, once.
    let group = line("└── task_group");
    let grandchild = line("awaits task");
    assert!(
        grandchild > group && lines[grandchild].contains("\"grandchild\""),
        "{text}"
    );
    assert_eq!(text.matches("\"grandchild\"").count(), 1, "{text}");
    assert!(lines[grandchild].starts_with("        └── "), "{text}");
    assert!(text.contains("├── timeout (due in "), "{text}");
    assert!(text.contains("└── queue get\n"), "{text}");
    assert!(text.contains("Accept on fd "), "{text}");
    // Without debug mode the dump says why it is empty.
    let plain = coil::Runtime::new().unwrap();
    let off = plain.handle().dump();
    assert!(!off.debug && off.tasks.is_empty());
    assert!(off.to_string().contains("debug mode is off"));
}
