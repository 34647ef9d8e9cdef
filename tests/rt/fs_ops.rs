//! `coil::fs` free functions under every driver: read/write, rename,
//! remove, directories, metadata, and their errors with the OS errno.

use crate::support;
use std::io::ErrorKind;
use support::TempDir;

use coil::fs;

driver_test! {
    fn cached_reads_in_a_loop_let_other_tasks_run(rt) {
        // Under epoll a page-cached read finishes inline, without a wake:
        // it must still take coop budget, or this loop would never yield.
        let dir = TempDir::new("fsops-coop");
        rt.block_on(async {
            let p = dir.path("f");
            fs::write(&p, vec![7u8; 64]).await.unwrap();
            let f = fs::File::open(&p).await.unwrap();
            let (flag, other) = support::spawn_flag_setter();
            let mut buf = Vec::with_capacity(64);
            let mut seen_at = None;
            for i in 0..1000 {
                buf.clear();
                let coil::io::BufResult(n, b) = f.read_at(buf, 0).await;
                assert_eq!(n.unwrap(), 64);
                buf = b;
                if seen_at.is_none() && flag.get() {
                    seen_at = Some(i);
                }
            }
            assert!(seen_at.is_some(), "1000 cached reads never let the other task run");
            other.await.unwrap();
        });
    }

    fn write_then_read(rt) {
        let dir = TempDir::new("fsops-write_read");
        rt.block_on(async {
            let p = dir.path("f");
            fs::write(&p, "hello").await.unwrap();
            assert_eq!(fs::read(&p).await.unwrap(), b"hello");
            // Replaces (truncates) the old contents.
            fs::write(&p, String::from("hi")).await.unwrap();
            assert_eq!(fs::read_to_string(&p).await.unwrap(), "hi");
            fs::write(&p, vec![0xff, 0xfe]).await.unwrap();
            let e = fs::read_to_string(&p).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidData);
            fs::write(&p, b"".as_slice()).await.unwrap();
            assert!(fs::read(&p).await.unwrap().is_empty());
            // std agrees.
            fs::write(&p, "agreed").await.unwrap();
            assert_eq!(std::fs::read_to_string(&p).unwrap(), "agreed");
        });
    }

    fn rename_and_remove_file(rt) {
        let dir = TempDir::new("fsops-rename");
        rt.block_on(async {
            let (a, b) = (dir.path("a"), dir.path("b"));
            fs::write(&a, "A").await.unwrap();
            fs::write(&b, "B").await.unwrap();
            fs::rename(&a, &b).await.unwrap();
            assert_eq!(fs::read_to_string(&b).await.unwrap(), "A", "rename replaces");
            assert_eq!(fs::metadata(&a).await.unwrap_err().raw_os_error(), Some(libc::ENOENT));
            fs::remove_file(&b).await.unwrap();
            let e = fs::remove_file(&b).await.unwrap_err();
            assert_eq!((e.kind(), e.raw_os_error()), (ErrorKind::NotFound, Some(libc::ENOENT)));
            let e = fs::rename(&a, &b).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
            // remove_file on a directory: EISDIR.
            let e = fs::remove_file(dir.dir()).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
        });
    }

    fn directories(rt) {
        let dir = TempDir::new("fsops-dirs");
        rt.block_on(async {
            let d = dir.path("d");
            fs::create_dir(&d).await.unwrap();
            assert!(fs::metadata(&d).await.unwrap().is_dir());
            let e = fs::create_dir(&d).await.unwrap_err();
            assert_eq!((e.kind(), e.raw_os_error()), (ErrorKind::AlreadyExists, Some(libc::EEXIST)));
            let e = fs::create_dir(dir.path("no/such/parent")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
            fs::write(d.join("f"), "x").await.unwrap();
            let e = fs::remove_dir(&d).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
            let e = fs::remove_dir(d.join("f")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
            fs::remove_file(d.join("f")).await.unwrap();
            fs::remove_dir(&d).await.unwrap();
            assert_eq!(fs::remove_dir(&d).await.unwrap_err().raw_os_error(), Some(libc::ENOENT));

            // create_dir_all: nested, idempotent, relative to nothing odd.
            let deep = dir.path("x/y/z/w");
            fs::create_dir_all(&deep).await.unwrap();
            assert!(fs::metadata(&deep).await.unwrap().is_dir());
            fs::create_dir_all(&deep).await.unwrap();
            fs::create_dir_all(dir.path("x/y")).await.unwrap();
            fs::create_dir_all(dir.path("x/y/z/w/v/")).await.unwrap();
            assert!(std::fs::metadata(dir.path("x/y/z/w/v")).unwrap().is_dir());
            // A file in the way: AlreadyExists (or ENOTDIR below it).
            fs::write(dir.path("file"), "").await.unwrap();
            let e = fs::create_dir_all(dir.path("file")).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
            let e = fs::create_dir_all(dir.path("file/sub")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
            // Concurrent create_dir_all of overlapping trees all succeed.
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let p = dir.path(&format!("c/d/e{}", i % 2));
                    coil::spawn(async move { fs::create_dir_all(p).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        });
    }

    fn metadata_and_symlink_metadata(rt) {
        let dir = TempDir::new("fsops-md");
        rt.block_on(async {
            let f = dir.path("f");
            fs::write(&f, vec![0u8; 777]).await.unwrap();
            let link = dir.path("link");
            std::os::unix::fs::symlink(&f, &link).unwrap();
            let md = fs::metadata(&link).await.unwrap();
            assert!(md.is_file() && !md.is_symlink());
            assert_eq!(md.len(), 777);
            let lmd = fs::symlink_metadata(&link).await.unwrap();
            assert!(lmd.is_symlink() && !lmd.is_file());
            assert_eq!(lmd.len(), f.as_os_str().len() as u64);
            // A dangling link: metadata NotFound, symlink_metadata fine.
            fs::remove_file(&f).await.unwrap();
            assert_eq!(fs::metadata(&link).await.unwrap_err().kind(), ErrorKind::NotFound);
            assert!(fs::symlink_metadata(&link).await.unwrap().is_symlink());
            // ENOTDIR through a file used as a directory.
            fs::write(&f, "").await.unwrap();
            let e = fs::metadata(f.join("x")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
            let e = fs::metadata("nul\0byte").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        });
    }

    fn many_files_concurrently(rt) {
        let dir = TempDir::new("fsops-many");
        rt.block_on(async {
            let root = std::rc::Rc::new(dir.dir().to_path_buf());
            let tasks: Vec<_> = (0..64)
                .map(|i| {
                    let root = root.clone();
                    coil::spawn(async move {
                        let p = root.join(format!("f{i}"));
                        fs::write(&p, format!("file {i}")).await.unwrap();
                        let back = fs::read_to_string(&p).await.unwrap();
                        assert_eq!(back, format!("file {i}"));
                        fs::rename(&p, root.join(format!("g{i}"))).await.unwrap();
                        fs::remove_file(root.join(format!("g{i}"))).await.unwrap();
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(std::fs::read_dir(dir.dir()).unwrap().count(), 0);
        });
    }
}

driver_test! {
    fn read_dir_of_a_hundred_entries(rt) {
        let dir = TempDir::new("fsops-read_dir");
        rt.block_on(async {
            use coil::stream::StreamExt;
            for i in 0..98 {
                fs::write(dir.path(&format!("f{i:03}")), vec![0u8; i]).await.unwrap();
            }
            fs::create_dir(dir.path("sub")).await.unwrap();
            fs::symlink("f000", dir.path("link")).await.unwrap();
            let mut entries = fs::read_dir(dir.dir()).await.unwrap();
            let mut seen = Vec::new();
            while let Some(e) = entries.next().await {
                let e = e.unwrap();
                assert_eq!(e.path(), dir.path(e.file_name().to_str().unwrap()));
                let name = e.file_name().into_string().unwrap();
                let ft = e.file_type();
                let md = e.metadata().await.unwrap();
                match name.as_str() {
                    "sub" => assert!(ft.is_dir() && md.is_dir()),
                    "link" => assert!(ft.is_symlink() && md.is_symlink(), "not followed"),
                    f => {
                        assert!(ft.is_file());
                        assert_eq!(md.len(), f[1..].parse::<u64>().unwrap());
                    }
                }
                seen.push(name);
            }
            assert_eq!(seen.len(), 100);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 100, "each entry once");
            assert!(entries.next().await.is_none(), "stays ended");
            let e = fs::read_dir(dir.path("missing")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
            let e = fs::read_dir(dir.path("f001")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        });
    }

    fn links_copy_canonicalize_exists(rt) {
        let dir = TempDir::new("fsops-links");
        rt.block_on(async {
            let f = dir.path("file");
            fs::write(&f, "contents").await.unwrap();
            fs::hard_link(&f, dir.path("hard")).await.unwrap();
            assert_eq!(fs::metadata(&f).await.unwrap().nlink(), 2);
            assert_eq!(fs::read_to_string(dir.path("hard")).await.unwrap(), "contents");
            let e = fs::hard_link(&f, dir.path("hard")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
            let e = fs::hard_link(dir.path("missing"), dir.path("h2")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

            fs::symlink("file", dir.path("soft")).await.unwrap();
            assert_eq!(std::fs::read_link(dir.path("soft")).unwrap(), std::path::Path::new("file"));
            let e = fs::symlink("file", dir.path("soft")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EEXIST));

            assert_eq!(fs::copy(&f, dir.path("copy")).await.unwrap(), 8);
            assert_eq!(fs::read(dir.path("copy")).await.unwrap(), b"contents");
            let e = fs::copy(dir.path("missing"), dir.path("c2")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

            let canon = fs::canonicalize(dir.path("soft")).await.unwrap();
            assert_eq!(canon, std::fs::canonicalize(&f).unwrap());
            let e = fs::canonicalize(dir.path("missing/x")).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));

            assert!(fs::try_exists(&f).await.unwrap());
            assert!(fs::try_exists(dir.path("soft")).await.unwrap());
            assert!(!fs::try_exists(dir.path("missing")).await.unwrap());
            fs::symlink("nowhere", dir.path("dangling")).await.unwrap();
            assert!(!fs::try_exists(dir.path("dangling")).await.unwrap(), "followed");
        });
    }

    fn symlink_loop_metadata_vs_symlink_metadata(rt) {
        let dir = TempDir::new("fsops-loop");
        rt.block_on(async {
            let (a, b) = (dir.path("a"), dir.path("b"));
            fs::symlink(&b, &a).await.unwrap();
            fs::symlink(&a, &b).await.unwrap();
            let e = fs::metadata(&a).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
            assert!(fs::symlink_metadata(&a).await.unwrap().is_symlink());
            let e = fs::try_exists(&a).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
            let e = fs::canonicalize(&a).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        });
    }

    fn remove_dir_all_removes_a_tree(rt) {
        let dir = TempDir::new("fsops-rmtree");
        rt.block_on(async {
            let top = dir.path("top");
            fs::create_dir_all(top.join("a/b/c")).await.unwrap();
            for p in ["x", "a/y", "a/b/z", "a/b/c/w"] {
                fs::write(top.join(p), "data").await.unwrap();
            }
            // A link out of the tree is removed, not followed.
            let outside = dir.path("outside");
            fs::write(&outside, "keep").await.unwrap();
            fs::symlink(&outside, top.join("a/out")).await.unwrap();
            fs::remove_dir_all(&top).await.unwrap();
            assert!(!fs::try_exists(&top).await.unwrap());
            assert_eq!(fs::read_to_string(&outside).await.unwrap(), "keep");
            let e = fs::remove_dir_all(&top).await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        });
    }
}
