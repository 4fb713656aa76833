//! A local control-plane process, remembered so that it can be started again if it exits.
//!
//! kube-controller-manager and kube-scheduler exit when they cannot renew their leader lease
//! for their renew deadline (10 s), which a kube-apiserver or etcd restart can take; on a
//! real node the kubelet starts them again. kwokctl's binary runtime does not, so a test that
//! restarts the API server or etcd plays the kubelet for them.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, anyhow};

/// One component's command line, environment and directory, read from `/proc` while it ran.
pub struct Component {
    name: String,
    pid_file: PathBuf,
    log: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
}

/// A `/proc` file of NUL-separated strings (`cmdline`, `environ`), split.
pub(crate) fn split_nul(bytes: Vec<u8>) -> Vec<OsString> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect()
}

/// A process's environment from its `/proc/<pid>/environ`, as name and value pairs (bytes
/// kept as they are: a value need not be UTF-8).
pub(crate) fn read_environ(proc: &Path) -> anyhow::Result<Vec<(OsString, OsString)>> {
    let path = proc.join("environ");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(split_nul(bytes)
        .into_iter()
        .filter_map(|kv| {
            let kv = kv.into_vec();
            let eq = kv.iter().position(|b| *b == b'=')?;
            Some((
                OsString::from_vec(kv[..eq].to_vec()),
                OsString::from_vec(kv[eq + 1..].to_vec()),
            ))
        })
        .collect())
}

/// The directory of the kubeconfig in `KUBECONFIG`: cluster.sh keeps the cluster's kwokctl
/// work directory (`kwok/`) beside it.
pub(crate) fn kubeconfig_dir() -> anyhow::Result<PathBuf> {
    let kubeconfig =
        PathBuf::from(std::env::var_os("KUBECONFIG").ok_or_else(|| anyhow!("KUBECONFIG unset"))?);
    kubeconfig
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("KUBECONFIG has no directory"))
}

/// The kwokctl cluster directory (`.../kwok/clusters/<name>`) of the cluster whose
/// kubeconfig is `KUBECONFIG`.
fn cluster_dir() -> anyhow::Result<PathBuf> {
    let clusters = kubeconfig_dir()?.join("kwok").join("clusters");
    std::fs::read_dir(&clusters)
        .with_context(|| format!("reading {}", clusters.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("pids").is_dir())
        .ok_or_else(|| anyhow!("no cluster with pids under {}", clusters.display()))
}

/// Starts `args` with exactly `env`, in `cwd`, detached (its own process group, as kwokctl
/// leaves its daemons), appending to `log`, and records its pid in `pid_file` where kwokctl
/// and cluster.sh look for it.
pub(crate) fn spawn_detached(
    args: &[OsString],
    env: &[(OsString, OsString)],
    cwd: &Path,
    log: &Path,
    pid_file: &Path,
) -> anyhow::Result<u32> {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| anyhow!("no command line to start"))?;
    let log = OpenOptions::new().create(true).append(true).open(log)?;
    let child = Command::new(program)
        .args(rest)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    std::fs::write(pid_file, child.id().to_string())?;
    Ok(child.id())
}

/// The state letter of a `/proc/<pid>/stat` line: the field after the command name, which
/// is in parentheses and may itself hold spaces or parentheses.
fn process_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn pid_of(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

impl Component {
    /// Remembers the running component `name` (its pid file's name, e.g.
    /// `kube-controller-manager`).
    pub fn snapshot(name: &str) -> anyhow::Result<Self> {
        let dir = cluster_dir()?;
        let pid_file = dir.join("pids").join(format!("{name}.pid"));
        let pid = pid_of(&pid_file).ok_or_else(|| anyhow!("no pid in {}", pid_file.display()))?;
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let args = split_nul(
            std::fs::read(proc.join("cmdline")).with_context(|| format!("{name} (pid {pid})"))?,
        );
        anyhow::ensure!(!args.is_empty(), "{name} (pid {pid}) has no command line");
        Ok(Component {
            name: name.to_owned(),
            log: dir.join("logs").join(format!("{name}.log")),
            pid_file,
            args,
            env: read_environ(&proc)?,
            cwd: std::fs::read_link(proc.join("cwd"))?,
        })
    }

    /// The pid file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process in the pid file runs. A process this test started again and that
    /// exited since stays a zombie of the test (nothing reaps it until the test process ends),
    /// so its `/proc` entry alone does not say it runs: its state must not be `Z` or `X`.
    pub fn is_running(&self) -> bool {
        pid_of(&self.pid_file).is_some_and(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| process_state(&stat))
                .is_some_and(|state| !matches!(state, 'Z' | 'X'))
        })
    }

    /// Starts it again as it was, detached, if it is not running; says whether it had to.
    pub fn revive(&self) -> anyhow::Result<bool> {
        if self.is_running() {
            return Ok(false);
        }
        let pid = spawn_detached(&self.args, &self.env, &self.cwd, &self.log, &self.pid_file)
            .with_context(|| format!("starting {} again", self.name))?;
        eprintln!("{} had exited; started it again (pid {pid})", self.name);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_read_from_proc_is_this_process_s_own() {
        let env = read_environ(Path::new("/proc/self")).expect("own environ");
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        assert_eq!(path, std::env::var_os("PATH"));
        assert!(env.iter().all(|(k, _)| !k.is_empty()));
    }

    #[test]
    fn a_zombie_is_not_running_and_a_command_name_with_parentheses_is_skipped() {
        assert_eq!(
            process_state("3451 (kube-controller) Z 1 3451 3451 0 -1"),
            Some('Z')
        );
        assert_eq!(process_state("12 (a) b) S 1 12"), Some('S'));
        assert_eq!(process_state("garbage"), None);
    }

    #[test]
    fn this_process_is_running_by_its_stat() {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
        assert!(process_state(&stat).is_some_and(|s| !matches!(s, 'Z' | 'X')));
    }
}
