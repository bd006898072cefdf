//! The control socket: how `hearth backup` and `hearth export` reach a running server.
//!
//! A running hearth holds sled's lock on its database, so no other process can read it. The
//! server therefore listens on a Unix socket, [`SOCKET_NAME`] in its data directory, and answers
//! one request: `snapshot`, a consistent copy of the database as a stream (see
//! [`super::format`]).
//!
//! Who may ask: the data directory's owner, i.e. the account hearth runs as, and root. Anyone
//! who can read the data directory can read the database files anyway (when hearth is stopped),
//! so a backup gives them nothing new; nobody else gets anything. The socket is created with mode
//! 0600, and every connection's peer credentials (`SO_PEERCRED`) are checked against the
//! socket's owner, so a loose umask or a permissive directory cannot widen it. Nothing of it
//! is reachable over the network, and no password or token exists that could leak.
//!
//! The socket lives only while the server runs: a stale one (after a crash) is replaced at the
//! next start, which is safe because the start holds the database lock first.
//!
//! Protocol: the client sends `hearth-control/1 snapshot\n`; the server answers `ok\n` and the
//! stream, or `error MESSAGE\n`.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::format;
use crate::store::Store;

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "hearth.sock";

const REQUEST: &str = "hearth-control/1 snapshot";

/// How long a client may take to send its request, and a write may stall, before the server
/// gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the control socket of the server on `data_dir` is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// The listening socket; dropping it stops accepting and removes the socket file.
pub struct Control {
    path: PathBuf,
    stop: CancellationToken,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Control {
    /// Binds the socket and serves snapshots of `store` on it. The caller must hold the
    /// database lock (an open `store`), which makes removing a stale socket safe.
    pub fn start(data_dir: &Path, store: Store) -> io::Result<Control> {
        let path = socket_path(data_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!("removed a stale control socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let owner = std::fs::metadata(&path)?.uid();
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, store, owner, stop.clone()));
        Ok(Control { path, stop })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn accept(listener: UnixListener, store: Store, owner: u32, stop: CancellationToken) {
    // One snapshot at a time: each holds a copy of the database's index in memory.
    let one_at_a_time = Arc::new(Semaphore::new(1));
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (store, permits) = (store.clone(), one_at_a_time.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, store, owner, permits).await {
                tracing::warn!(error = %e, "control socket: request failed");
            }
        });
    }
}

async fn answer(
    stream: UnixStream,
    store: Store,
    owner: u32,
    permits: Arc<Semaphore>,
) -> io::Result<()> {
    let peer = stream.peer_cred()?.uid();
    let mut stream = tokio::io::BufStream::new(stream);
    // The request is read before anything is refused: a client whose request is still unread
    // when the server closes would see a broken pipe instead of the reason.
    let mut line = String::new();
    let mut limited = (&mut stream).take(256);
    let read = tokio::time::timeout(REQUEST_TIMEOUT, limited.read_line(&mut line)).await;
    let refusal = if peer != owner && peer != 0 {
        tracing::warn!(
            uid = peer,
            "control socket: refused a client of another user"
        );
        Some(format!(
            "only root and uid {owner} (which runs hearth) may ask"
        ))
    } else if !matches!(read, Ok(Ok(_))) || line.trim_end() != REQUEST {
        Some(format!("expected `{REQUEST}`"))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        stream
            .write_all(format!("error {refusal}\n").as_bytes())
            .await?;
        return stream.flush().await;
    }
    let _permit = permits.acquire_owned().await.map_err(io::Error::other)?;
    // The snapshot holds writers off while it copies, and the copy is written with blocking
    // I/O: both on a blocking thread, so that no runtime worker a writer needs is tied up.
    let stream = stream.into_inner().into_std()?;
    tokio::task::spawn_blocking(move || send_snapshot(stream, &store))
        .await
        .map_err(io::Error::other)?
}

fn send_snapshot(stream: std::os::unix::net::UnixStream, store: &Store) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut out = io::BufWriter::with_capacity(256 * 1024, stream);
    let snapshot = match store.snapshot() {
        Ok(snapshot) => snapshot,
        Err(e) => {
            writeln!(out, "error cannot take a snapshot: {e}")?;
            return out.flush();
        }
    };
    tracing::info!(
        records = snapshot.records(),
        paused_ms = snapshot.paused.as_secs_f64() * 1000.0,
        "backup: snapshot taken, writes were paused meanwhile"
    );
    out.write_all(b"ok\n")?;
    format::write_stream(&snapshot, &mut out)?;
    out.flush()
}

/// What a client finds at the socket path.
pub enum Reached {
    /// A server answered; the stream follows.
    Stream(BufReader<std::os::unix::net::UnixStream>),
    /// No socket, or nobody listening on it: no server is running on this data directory.
    NoServer,
}

/// Asks the server on `data_dir` for a snapshot.
pub fn request_snapshot(data_dir: &Path) -> io::Result<Reached> {
    let path = socket_path(data_dir);
    let stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Reached::NoServer)
        }
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot connect to {}: {e}", path.display()),
            ))
        }
    };
    stream.set_read_timeout(Some(WRITE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    if let Err(e) = writer.write_all(format!("{REQUEST}\n").as_bytes()) {
        // A server that refused at once may have closed already; its reason is still there
        // to read.
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e);
        }
    }
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    match line.trim_end() {
        "ok" => Ok(Reached::Stream(reader)),
        other => {
            let message = other.strip_prefix("error ").unwrap_or(other);
            let message = if message.is_empty() {
                "it closed the connection without an answer"
            } else {
                message
            };
            Err(io::Error::other(format!(
                "the running hearth refused: {message}"
            )))
        }
    }
}
