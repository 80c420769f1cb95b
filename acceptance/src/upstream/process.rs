//! The upstream target's child processes: started from one long-lived thread under
//! `setpriv --pdeathsig KILL`, so they die with the harness process even when it panics or is
//! killed; output goes to a log file per process; readiness is polled over loopback HTTP(S).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why a process did not start or become ready.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("starting {name} ({program}): {source}")]
    Spawn {
        name: String,
        program: String,
        source: std::io::Error,
    },
    #[error("{name} exited with {status} before it was ready; last lines of {log}:\n{tail}")]
    Exited {
        name: String,
        status: String,
        log: String,
        tail: String,
    },
    #[error("{name} was not ready after {waited:?} ({last}); last lines of {log}:\n{tail}")]
    NotReady {
        name: String,
        waited: Duration,
        last: String,
        log: String,
        tail: String,
    },
    #[error("the process supervisor thread is gone")]
    Supervisor,
    #[error("creating the log file {0}: {1}")]
    Log(PathBuf, std::io::Error),
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns every child from one thread that lives as long as the harness process: a child's
/// parent-death signal fires when the *thread* that forked it ends, so spawning from a
/// short-lived runtime thread would kill the stack with that thread.
fn spawner() -> &'static std::sync::Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<SpawnRequest>>> =
        std::sync::OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let spawned = std::thread::Builder::new()
            .name("upstream-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the upstream process spawner");
        }
        std::sync::Mutex::new(tx)
    })
}

/// One running upstream program.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Process {
    /// Starts `program args` with its output in `<log_dir>/<name>.log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        log_dir: &Path,
        envs: &[(&str, &str)],
    ) -> Result<Self, ProcessError> {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| ProcessError::Log(log.clone(), e))?;
        let err = out
            .try_clone()
            .map_err(|e| ProcessError::Log(log.clone(), e))?;
        let mut command = Command::new("setpriv");
        command
            .arg("--pdeathsig")
            .arg("KILL")
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Nothing of the harness's environment that could point a component elsewhere.
        command.env_remove("KUBECONFIG");
        for (key, value) in envs {
            command.env(key, value);
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        spawner()
            .lock()
            .map_err(|_| ProcessError::Supervisor)?
            .send((command, reply_tx))
            .map_err(|_| ProcessError::Supervisor)?;
        let child = reply_rx
            .recv()
            .map_err(|_| ProcessError::Supervisor)?
            .map_err(|source| ProcessError::Spawn {
                name: name.into(),
                program: program.display().to_string(),
                source,
            })?;
        tracing::info!(
            component = name,
            pid = child.id(),
            "upstream process started"
        );
        Ok(Self {
            name: name.into(),
            log,
            child,
        })
    }

    /// The operating-system process id (of `setpriv`, which execs the program).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The last `lines` lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ProcessError::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log: self.log.display().to_string(),
                tail: self.tail(30),
            }),
            _ => Ok(()),
        }
    }

    /// Polls `probe` every 200 ms until it succeeds, the process exits or `timeout` passes.
    pub async fn wait_ready<F, Fut>(
        &mut self,
        timeout: Duration,
        mut probe: F,
    ) -> Result<Duration, ProcessError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < timeout {
            self.check_running()?;
            match probe().await {
                Ok(()) => return Ok(started.elapsed()),
                Err(seen) => last = seen,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ProcessError::NotReady {
            name: self.name.clone(),
            waited: timeout,
            last,
            log: self.log.display().to_string(),
            tail: self.tail(30),
        })
    }

    /// Kills the process and reaps it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A free loopback TCP port (bound and released: a later bind by the component may race, which
/// start-up reports as a failed process).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A plain-HTTP GET on loopback; Ok when the status is 200.
pub async fn http_ok(port: u16, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .map_err(|_| "read timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or_default().to_string();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(status)
    }
}
