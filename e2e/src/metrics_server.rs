//! The local cluster's metrics-server process (kwokctl's binary runtime runs it as a daemon),
//! for the disruptive tests that stop it and start it again exactly as it was.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::component::{kubeconfig_dir, read_environ, spawn_detached, split_nul};

/// The cluster's metrics-server process, as kwokctl's binary runtime
/// started it (a daemon whose arguments name the cluster's directory).
/// Stopping it keeps what is needed to start it again exactly so; dropping
/// the guard starts it again if the test did not.
pub struct MetricsServer {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    stopped: bool,
}

impl MetricsServer {
    /// Finds the process of the cluster whose kubeconfig is `KUBECONFIG`.
    fn find() -> anyhow::Result<(u32, Self)> {
        let needle = kubeconfig_dir()?.join("kwok").display().to_string();
        for entry in std::fs::read_dir("/proc")? {
            let entry = entry?;
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args = split_nul(cmdline);
            let Some(exe) = args.first() else { continue };
            let is_ms = Path::new(exe)
                .file_name()
                .is_some_and(|n| n == "metrics-server");
            let ours = args.iter().any(|a| a.to_string_lossy().contains(&needle));
            if !(is_ms && ours) {
                continue;
            }
            let env = read_environ(&entry.path())?;
            let cwd = std::fs::read_link(entry.path().join("cwd"))?;
            let clusters = Path::new(&needle).join("clusters");
            let name = std::fs::read_dir(&clusters)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.join("pids").join("metrics-server.pid").is_file())
                .ok_or_else(|| anyhow!("no metrics-server.pid under {}", clusters.display()))?;
            return Ok((
                pid,
                MetricsServer {
                    args,
                    env,
                    cwd,
                    pid_file: name.join("pids").join("metrics-server.pid"),
                    log: name.join("logs").join("metrics-server.log"),
                    stopped: false,
                },
            ));
        }
        bail!("no metrics-server process under {needle}")
    }

    /// Stops the running metrics-server (SIGTERM, then waits for it to go).
    pub fn stop() -> anyhow::Result<Self> {
        let (pid, mut ms) = Self::find()?;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        let start = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("metrics-server {pid} did not exit");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        ms.stopped = true;
        eprintln!("stopped metrics-server (pid {pid})");
        Ok(ms)
    }

    /// Starts it again with the same arguments, environment and directory,
    /// detached (its own process group, as kwokctl left it), and records
    /// the new pid where kwokctl and cluster.sh look for it.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if !self.stopped {
            return Ok(());
        }
        let pid = spawn_detached(&self.args, &self.env, &self.cwd, &self.log, &self.pid_file)
            .context("restarting metrics-server")?;
        eprintln!("started metrics-server again (pid {pid})");
        self.stopped = false;
        Ok(())
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Err(e) = self.start() {
            eprintln!("COULD NOT RESTART metrics-server: {e:#}; run e2e/cluster/cluster.sh up");
        }
    }
}
