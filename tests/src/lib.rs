//! Support for the end-to-end tests: find the real `omnigate` binary and the
//! packaged plugins, start `omnigate serve` on a loopback port, stop it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `target/` (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The `omnigate` binary that `cargo test --workspace` built next to this
/// test.
pub fn omnigate() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/e2e_serve-1234 -> target/debug/omnigate (cargo builds
    // the binary before the integration tests of its package)
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bin = profile_dir.join("omnigate");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// The folder of packaged bundled plugins.
pub fn packaged_plugins() -> PathBuf {
    let dir = target_dir().join("plugins");
    assert!(
        dir.join("email-adapter.toml").is_file(),
        "{} has no packaged plugins: run `cargo xtask plugins`",
        dir.display()
    );
    dir
}

/// Copies the `.toml` and `.wasm` files of `from` into `to`.
pub fn copy_plugins(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_default();
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml" || e == "wasm")
            && let Some(name) = path.file_name()
        {
            let _ = std::fs::copy(&path, to.join(name));
        }
    }
}

/// A running `omnigate serve`, killed when dropped.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `omnigate serve` on a free loopback port with `args`, and
    /// waits until it prints the address it listens on.
    pub fn start(args: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(omnigate())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start omnigate: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(line)) if line.starts_with("omnigate listening on ") => {
                let base = line.trim_start_matches("omnigate listening on ").to_owned();
                Ok(Server { child, base })
            }
            other => {
                let _ = child.kill();
                let output = child.wait_with_output().map_err(|e| e.to_string())?;
                Err(format!(
                    "omnigate did not start (first line {other:?}, {}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        }
    }

    /// `GET path` as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        reqwest::blocking::get(format!("{}{path}", self.base))
            .and_then(|r| r.json())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Sends a signal by name (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// Polls `check` on `GET path` until it holds or `timeout` passes.
    pub fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check(&self.get(path)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a command-line run ended with.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit status (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `omnigate ARGS --data-dir DATA` from the workspace root, with
/// `stdin` as standard input, `OMNIGATE_ACTOR` unset.
///
/// # Panics
///
/// If the binary cannot be started or waited for (a broken test set-up).
#[expect(
    clippy::expect_used,
    reason = "test support: a failure to spawn is a broken set-up"
)]
pub fn run_cli(data: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write as _;
    let mut child = Command::new(omnigate())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .current_dir(repo())
        .env_remove("OMNIGATE_ACTOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start omnigate");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait for omnigate");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fixed-offset IANA zone (`Etc/GMT-3` is UTC+3) where it is about midday
/// now, so that quiet-hours caps never decide a test whatever the clock says.
pub fn midday_zone() -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let hour = i64::try_from((now_ms / 3_600_000) % 24).unwrap_or(0);
    match 12 - hour {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}
