//! Running child processes: asyncio's `create_subprocess_exec` and
//! `create_subprocess_shell` with `coil::process`.
//!
//! Lists the current directory with `ls`, pipes text through `tr` with the
//! streams by hand, and runs a shell command whose exit code it reports.
//!
//! ```sh
//! cargo run --example subprocess
//! ```

use coil::io::BufResult;
use coil::process::{Command, Stdio};

#[coil::main]
async fn main() -> std::io::Result<()> {
    // `await create_subprocess_exec("ls", ...)` + `communicate()`.
    let out = Command::new("ls").arg("-1").output().await?;
    let listing = String::from_utf8_lossy(&out.stdout);
    println!(
        "ls found {} entries ({}):",
        listing.lines().count(),
        out.status
    );
    for name in listing.lines().take(5) {
        println!("  {name}");
    }

    // The streams by hand: write to the child's stdin, close it, read stdout.
    let mut tr = Command::new("tr")
        .arg("a-z")
        .arg("A-Z")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdin = tr.stdin.take().expect("piped");
    let BufResult(res, _) = stdin.write_all(&b"shouting through a pipe\n"[..]).await;
    res?;
    drop(stdin); // end of file for tr
    let stdout = tr.stdout.take().expect("piped");
    let BufResult(res, upper) = stdout.read_to_end(Vec::new()).await;
    res?;
    print!("tr says: {}", String::from_utf8_lossy(&upper));
    println!("tr exited: {}", tr.wait().await?);

    // `await create_subprocess_shell("...")`: `sh -c`.
    let status = Command::shell("echo from the shell; exit 3")
        .status()
        .await?;
    println!("the shell exited with code {:?}", status.code());
    Ok(())
}
