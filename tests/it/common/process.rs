//! The `hearth` binary as a child process: a clean environment, and a server on an ephemeral
//! port whose address is read from its start-up line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub const BIN: &str = env!("CARGO_BIN_EXE_hearth");

/// The command line that starts `hearth`: this build's binary, unless TEST_HEARTH_BINARY names
/// another (the aarch64 build), started through TEST_HEARTH_RUNNER when that is set (e.g.
/// `qemu-aarch64-static -L /usr/aarch64-linux-gnu`). packaging/test-aarch64.sh runs the process
/// tests so, against the cross-built binary under emulation.
pub fn argv() -> Vec<String> {
    let mut argv: Vec<String> = std::env::var("TEST_HEARTH_RUNNER")
        .map(|runner| runner.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    argv.push(std::env::var("TEST_HEARTH_BINARY").unwrap_or_else(|_| BIN.to_string()));
    argv
}

/// A `hearth` command with a clean environment: no HEARTH_* leaks in from the caller, and a
/// working directory without a config.toml.
pub fn hearth(dir: &Path) -> Command {
    let argv = argv();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    clean(cmd, dir)
}

/// Like [`hearth`], started under `umask` by a shell, so that the umask is the child's alone
/// (every test in this binary shares one process umask).
pub fn hearth_under_umask(dir: &Path, umask: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .args(argv());
    clean(cmd, dir)
}

/// Runs `cmd` in `dir` with no HEARTH_* variable of the caller's.
fn clean(mut cmd: Command, dir: &Path) -> Command {
    cmd.current_dir(dir).env("NO_COLOR", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("HEARTH_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A `hearth` process serving on an ephemeral port, its address read from its start-up line.
/// Dropping it kills the process, so a failed test leaves no server behind.
pub struct Running {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Every line the server wrote to stdout and stderr so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

pub fn start(dir: &Path, data: &Path) -> Running {
    start_with_env(dir, data, &[])
}

/// Like [`start`], with `HEARTH_*` variables for the configuration.
pub fn start_with_env(dir: &Path, data: &Path, env: &[(&str, &str)]) -> Running {
    let mut cmd = hearth(dir);
    cmd.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(data);
    for (key, value) in env {
        cmd.env(key, value);
    }
    start_command(cmd).unwrap_or_else(|logs| panic!("server exited before serving:\n{logs}"))
}

/// Starts `cmd` (a [`hearth`] command with whatever arguments the caller chose) and waits
/// for its "serving on" line. A server that exits first is an `Err` with everything it
/// printed.
pub fn start_command(mut cmd: Command) -> Result<Running, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let keep = |logs: &Arc<Mutex<Vec<String>>>, line: &str| {
        logs.lock().unwrap().push(line.to_string());
    };
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let Some(line) = lines.next() else {
            let _ = child.wait();
            let mut said = logs.lock().unwrap().join("\n");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                said.push('\n');
                said.push_str(&line);
            }
            return Err(said);
        };
        let line = line.unwrap();
        keep(&logs, &line);
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    // Keep draining the logs so the server never blocks on a full pipe.
    let out = logs.clone();
    let err = logs.clone();
    let readers = vec![
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep(&out, &line);
            }
        }),
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep(&err, &line);
            }
        }),
    ];
    Ok(Running {
        child,
        base,
        logs,
        readers,
    })
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

impl Running {
    /// SIGTERM, and the clean stop the contract promises: exit status 0.
    pub fn stop(mut self) {
        signal(&self.child, "TERM");
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "clean stop after SIGTERM");
    }

    /// Stops the server cleanly (SIGTERM, exit 0) and hands everything it logged, to its
    /// last line, to `check`.
    pub fn stop_keeping_logs_into(mut self, check: impl FnOnce(&str)) {
        let readers = std::mem::take(&mut self.readers);
        let logs = self.logs.clone();
        self.stop();
        for reader in readers {
            reader.join().unwrap();
        }
        let text = logs.lock().unwrap().join("\n");
        check(&text);
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
