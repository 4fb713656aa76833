//! The real `tidal operator` as a child process of a test, and the AutoScaler
//! objects it acts on.
//!
//! Each test starts its own operator with `--namespace <test namespace>` and
//! its leader-election Lease in that namespace, so tests run side by side
//! without seeing each other's AutoScalers. The binary is built with cargo
//! into the target directory the test itself was built in (or taken from
//! [`BIN_ENV`]). Its logs go to a file under the artefacts directory; the
//! path is printed at start and again, with the last lines, when a test
//! panics while the operator is alive. Dropping an [`Operator`] kills it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
};
use k8s_openapi::api::core::v1::Event;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{oneshot, watch};

use crate::driver::{SharedDemand, TickReport};
use crate::timeline::{Sample, Timeline, artifacts_dir};

/// Path of a prebuilt `tidal` binary to use instead of building one.
pub const BIN_ENV: &str = "TIDAL_E2E_OPERATOR_BIN";

/// API group of the AutoScaler resource.
pub const GROUP: &str = "autoscaling.tidal.dev";
/// API version of the AutoScaler resource.
pub const VERSION: &str = "v1alpha1";
/// Kind of the AutoScaler resource.
pub const KIND: &str = "AutoScaler";

/// Lease name every test operator uses (each in its own namespace).
pub const LEASE: &str = "tidal-operator";

/// The `tidal` binary: [`BIN_ENV`] if set, else built once per test process
/// with the cargo that runs the tests, into the same target directory and
/// profile as the test executable.
pub fn binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(path) = std::env::var_os(BIN_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    BUILT
        .get_or_init(|| build_binary().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build_binary() -> anyhow::Result<PathBuf> {
    // Test executables live in <target>/<profile dir>/deps/.
    let exe = std::env::current_exe().context("locating the test executable")?;
    // The `tidal-e2e` binary itself lives in <target>/<profile dir>/: use the
    // `tidal` built beside it (`cargo build -p tidal -p tidal-e2e`).
    if exe
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d != "deps")
    {
        let sibling = exe.with_file_name("tidal");
        if sibling.is_file() {
            return Ok(sibling);
        }
        bail!(
            "no tidal binary beside {}: run `cargo build -p tidal` or set {BIN_ENV}",
            exe.display()
        );
    }
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected test executable path {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| anyhow!("no target directory above {}", profile_dir.display()))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => bail!("unexpected profile directory {}", profile_dir.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("the e2e crate has no parent directory"))?;
    let started = Instant::now();
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "tidal",
            "--bin",
            "tidal",
            "--profile",
        ])
        .arg(profile)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .context("running cargo build -p tidal")?;
    if !output.status.success() {
        bail!(
            "cargo build -p tidal failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let bin = profile_dir.join("tidal");
    if !bin.is_file() {
        bail!("cargo build succeeded but {} is missing", bin.display());
    }
    eprintln!(
        "operator binary {} (build check took {:?})",
        bin.display(),
        started.elapsed()
    );
    Ok(bin)
}

/// How to start an operator: flags on top of the per-test defaults.
#[derive(Debug, Clone)]
pub struct OperatorBuilder {
    namespace: String,
    identity: String,
    args: Vec<(String, String)>,
    env: Vec<(String, String)>,
    all_namespaces: bool,
}

impl OperatorBuilder {
    /// An operator watching only `namespace`, with its Lease there and the
    /// identity `tidal-0`. Flags not given keep the binary's defaults
    /// (which are kube-controller-manager's).
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            identity: "tidal-0".into(),
            args: Vec::new(),
            env: Vec::new(),
            all_namespaces: false,
        }
    }

    /// Watches every namespace (the scale harness spreads its objects over several); the
    /// Lease stays in the builder's namespace.
    pub fn all_namespaces(mut self) -> Self {
        self.all_namespaces = true;
        self
    }

    /// Sets `--<flag> <value>` (replacing an earlier value of the same flag).
    pub fn flag(mut self, flag: &str, value: impl Into<String>) -> Self {
        self.args.retain(|(f, _)| f != flag);
        self.args.push((flag.to_owned(), value.into()));
        self
    }

    /// Sets an environment variable of the process (e.g. `KUBECONFIG`, to reach the API server
    /// through a proxy).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// The Lease holder identity (distinct per replica when several run).
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    fn command_args(&self, admin: SocketAddr) -> Vec<String> {
        let mut args = vec!["operator".to_owned()];
        if !self.all_namespaces {
            args.extend(["--namespace".into(), self.namespace.clone()]);
        }
        args.extend([
            "--leader-election-namespace".into(),
            self.namespace.clone(),
            "--leader-election-lease".into(),
            LEASE.into(),
            "--identity".into(),
            self.identity.clone(),
            "--admin-addr".into(),
            admin.to_string(),
        ]);
        for (flag, value) in &self.args {
            args.push(format!("--{flag}"));
            args.push(value.clone());
        }
        args
    }

    /// Starts the operator and waits until its `/ready` answers 200 (caches
    /// synced, leader state known).
    pub async fn start(self) -> anyhow::Result<Operator> {
        let log =
            artifacts_dir().join(format!("operator-{}-{}.log", self.namespace, self.identity));
        std::fs::create_dir_all(artifacts_dir()).context("creating the artefacts directory")?;
        // Truncate a leftover of an earlier run with the same name.
        File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        eprintln!("operator {} log: {}", self.identity, log.display());
        let mut operator = Operator {
            builder: self,
            child: Arc::new(Mutex::new(None)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        operator.spawn()?;
        operator.wait_ready(Duration::from_secs(60)).await?;
        Ok(operator)
    }
}

/// A running (or killed) operator process.
pub struct Operator {
    builder: OperatorBuilder,
    /// The process, shared with the thread that reports an unexpected exit.
    child: Arc<Mutex<Option<Child>>>,
    admin: SocketAddr,
    log: PathBuf,
}

/// `kill -SIGNAL pid`.
fn send_signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// A free loopback port, chosen by the kernel and released for the child.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

impl Operator {
    fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = binary()?;
        self.admin = free_port()?;
        let args = self.builder.command_args(self.admin);
        let mut out = OpenOptions::new()
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        writeln!(out, "=== {} {}", bin.display(), args.join(" "))?;
        let err = out.try_clone()?;
        let child = Command::new(&bin)
            // Its own process group: a signal meant for the test runner's
            // group (Ctrl-C, `timeout`) is not also a signal to the operator.
            .process_group(0)
            .args(&args)
            .env(
                "RUST_LOG",
                std::env::var("TIDAL_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            // Plain text in the log file.
            .env("NO_COLOR", "1")
            .envs(self.builder.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        *self.lock_child() = Some(child);
        self.watch_exit();
        Ok(())
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reports on stderr and in the log when the process ends by itself (a
    /// crash, or a signal from outside the test), so that a test waiting
    /// for the operator to act says why it never did.
    fn watch_exit(&self) {
        let (child, log, identity) = (
            Arc::downgrade(&self.child),
            self.log.clone(),
            self.builder.identity.clone(),
        );
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let Some(child) = child.upgrade() else { return };
                let mut guard = child.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(process) = guard.as_mut() else {
                    return;
                };
                if let Ok(Some(status)) = process.try_wait() {
                    *guard = None;
                    eprintln!(
                        "operator {identity} exited unexpectedly ({status}); log {}",
                        log.display()
                    );
                    if let Ok(mut f) = OpenOptions::new().append(true).open(&log) {
                        let _ = writeln!(f, "=== exited unexpectedly: {status}");
                    }
                    return;
                }
            }
        });
    }

    /// Whether the process is running (it was started, not killed, and has
    /// not exited by itself).
    pub fn is_running(&self) -> bool {
        self.lock_child().is_some()
    }

    /// The file the operator's stdout and stderr go to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The Lease identity.
    pub fn identity(&self) -> &str {
        &self.builder.identity
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    /// GETs a path of the admin server; `None` when it does not answer.
    pub async fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        let (addr, path) = (self.admin, path.to_owned());
        tokio::task::spawn_blocking(move || http_get(addr, &path))
            .await
            .ok()
            .flatten()
    }

    /// Whether `/ready` answers 200.
    pub async fn is_ready(&self) -> bool {
        matches!(self.admin_get("/ready").await, Some((200, _)))
    }

    /// The value of a Prometheus sample from `/metrics` whose line starts
    /// with `series` (name plus, optionally, the opening of the labels).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.admin_get("/metrics").await?;
        body.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `/ready` answers 200; fails early if the process exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if !self.is_running() {
                bail!(
                    "operator exited before it was ready; log {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            if self.is_ready().await {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "operator not ready after {timeout:?}; log {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the process at once (SIGKILL: no graceful shutdown, no final
    /// status write), as a crash or an evicted pod would end it.
    pub fn kill(&mut self) {
        let taken = self.lock_child().take();
        if let Some(mut child) = taken {
            let _ = child.kill();
            let _ = child.wait();
            if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log) {
                let _ = writeln!(f, "=== killed by the test");
            }
        }
    }

    /// Sends `signal` (a name `kill` knows: TERM, STOP, CONT, ...) to the process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| anyhow!("operator is not running"))?;
        send_signal(pid, signal)
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit (a graceful shutdown, as
    /// a rolling update or `kubectl delete pod` ends it). Returns whether it exited.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        // Taken from the exit watcher first: this exit is expected, not one to report.
        let mut child = self
            .lock_child()
            .take()
            .ok_or_else(|| anyhow!("operator is not running"))?;
        if let Err(err) = send_signal(child.id(), "TERM") {
            *self.lock_child() = Some(child);
            self.watch_exit();
            return Err(err);
        }
        let start = Instant::now();
        while start.elapsed() < timeout {
            if matches!(child.try_wait(), Ok(Some(_))) {
                if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log) {
                    let _ = writeln!(f, "=== terminated by the test");
                }
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *self.lock_child() = Some(child);
        self.watch_exit();
        Ok(false)
    }

    /// Starts the process again with the same flags (after [`Operator::kill`])
    /// and waits until it is ready. The log file is appended to.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_ready(Duration::from_secs(60)).await
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let alive = self.is_running();
        self.kill();
        if alive && std::thread::panicking() {
            eprintln!(
                "operator {} log: {} (last lines below)\n{}",
                self.builder.identity,
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }
}

/// A minimal HTTP/1.1 GET with short timeouts: the admin server is on
/// loopback and answers small bodies.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Some((code, body))
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let Ok(f) = File::open(path) else {
        return String::new();
    };
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The AutoScaler resource for the dynamic client (the e2e crate does not
/// link the CRD types: it writes what a user's manifest would contain).
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, VERSION, KIND))
}

/// AutoScalers in `namespace`.
pub fn autoscalers(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &api_resource())
}

/// Creates an AutoScaler named `name` with `spec` (JSON, HPA v2 spec shape
/// plus the optional `tidal` block).
pub async fn create_autoscaler(
    client: &Client,
    namespace: &str,
    name: &str,
    spec: serde_json::Value,
) -> anyhow::Result<DynamicObject> {
    let mut obj = DynamicObject::new(name, &api_resource()).within(namespace);
    obj.data = serde_json::json!({ "spec": spec });
    Ok(autoscalers(client, namespace)
        .create(&PostParams::default(), &obj)
        .await?)
}

/// An AutoScaler's status: the HPA-shaped part and Tidal's own block.
#[derive(Debug, Clone, Default)]
pub struct AutoScalerView {
    /// `status` read as an autoscaling/v2 HPA status (absent before the
    /// first reconcile).
    pub status: Option<HorizontalPodAutoscalerStatus>,
    /// `status.tidal` as JSON (`reference`, `targets`, `history`).
    pub tidal: serde_json::Value,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
}

impl AutoScalerView {
    /// The condition of `type_`, if reported.
    pub fn condition(&self, type_: &str) -> Option<&HorizontalPodAutoscalerCondition> {
        condition(self.status.as_ref()?, type_)
    }

    /// `status.desiredReplicas`.
    pub fn desired(&self) -> Option<i32> {
        self.status.as_ref().map(|s| s.desired_replicas)
    }

    /// `status.currentReplicas`.
    pub fn current(&self) -> Option<i32> {
        self.status.as_ref().and_then(|s| s.current_replicas)
    }

    /// The first Resource/ContainerResource metric's current average
    /// utilization.
    pub fn utilization(&self) -> Option<i32> {
        utilization(self.status.as_ref()?)
    }
}

/// The condition of `type_` in an HPA-shaped status.
pub fn condition<'a>(
    status: &'a HorizontalPodAutoscalerStatus,
    type_: &str,
) -> Option<&'a HorizontalPodAutoscalerCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `type=status/reason` of a condition, for assertions and messages.
pub fn condition_text(c: Option<&HorizontalPodAutoscalerCondition>) -> String {
    c.map_or_else(
        || "<absent>".to_owned(),
        |c| {
            format!(
                "{}={}/{}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or("")
            )
        },
    )
}

/// The first resource metric's current average utilization.
pub fn utilization(status: &HorizontalPodAutoscalerStatus) -> Option<i32> {
    status.current_metrics.as_ref()?.iter().find_map(|m| {
        m.resource
            .as_ref()
            .and_then(|r| r.current.average_utilization)
            .or_else(|| {
                m.container_resource
                    .as_ref()
                    .and_then(|r| r.current.average_utilization)
            })
    })
}

/// Reads an AutoScaler's status.
pub async fn view(client: &Client, namespace: &str, name: &str) -> anyhow::Result<AutoScalerView> {
    let obj = autoscalers(client, namespace).get(name).await?;
    let status = obj.data.get("status").cloned().unwrap_or_default();
    let tidal = status.get("tidal").cloned().unwrap_or_default();
    let parsed = if status.is_null() {
        None
    } else {
        Some(serde_json::from_value(status).context("status is not HPA-shaped")?)
    };
    Ok(AutoScalerView {
        status: parsed,
        tidal,
        resource_version: obj.metadata.resource_version,
    })
}

/// One event as `kubectl describe` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSeen {
    /// Normal or Warning.
    pub type_: String,
    /// The reason (`SuccessfulRescale`, ...).
    pub reason: String,
    /// The message (the note, for events.k8s.io events).
    pub message: String,
    /// How often it happened (series and count folded in).
    pub count: i32,
    /// The reporting instance (the operator's Lease identity).
    pub instance: String,
    /// When it last happened (series, last timestamp or event time).
    pub last: Option<k8s_openapi::jiff::Timestamp>,
}

/// Events in `namespace` about the object of `kind` and `name`, oldest first.
pub async fn events(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
) -> anyhow::Result<Vec<EventSeen>> {
    let list = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    let mut items: Vec<Event> = list
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .collect();
    items.sort_by_key(|e| {
        e.event_time
            .as_ref()
            .map(|t| t.0)
            .or(e.first_timestamp.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    });
    Ok(items
        .into_iter()
        .map(|e| EventSeen {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default(),
            count: e
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1),
            last: e
                .series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
                .or(e.last_timestamp.as_ref().map(|t| t.0))
                .or(e.event_time.as_ref().map(|t| t.0)),
            instance: e.reporting_instance.unwrap_or_default(),
        })
        .collect())
}

/// The kind of workload a test scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
}

impl WorkloadKind {
    /// The `kind` in a scaleTargetRef.
    pub fn kind(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }

    /// `(spec.replicas, status.readyReplicas)` of the workload.
    pub async fn replicas(
        self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<(i32, i32)> {
        Ok(match self {
            WorkloadKind::Deployment => {
                let d = Api::<Deployment>::namespaced(client.clone(), namespace)
                    .get(name)
                    .await?;
                (
                    d.spec.and_then(|s| s.replicas).unwrap_or(0),
                    d.status.and_then(|s| s.ready_replicas).unwrap_or(0),
                )
            }
            WorkloadKind::StatefulSet => {
                let s = Api::<StatefulSet>::namespaced(client.clone(), namespace)
                    .get(name)
                    .await?;
                (
                    s.spec.and_then(|s| s.replicas).unwrap_or(0),
                    s.status.and_then(|s| s.ready_replicas).unwrap_or(0),
                )
            }
        })
    }
}

/// A workload and the AutoScaler that scales it: what most assertions read.
#[derive(Clone)]
pub struct Scaled {
    /// API client.
    pub client: Client,
    /// Namespace of both objects.
    pub namespace: String,
    /// Kind of the workload.
    pub kind: WorkloadKind,
    /// Name of the workload.
    pub workload: String,
    /// Name of the AutoScaler.
    pub autoscaler: String,
}

impl Scaled {
    /// A workload and the AutoScaler that targets it, both named `name`, in `namespace`.
    pub fn named(client: &Client, namespace: &str, kind: WorkloadKind, name: &str) -> Self {
        Scaled {
            client: client.clone(),
            namespace: namespace.to_owned(),
            kind,
            workload: name.to_owned(),
            autoscaler: name.to_owned(),
        }
    }

    /// `(spec.replicas, status.readyReplicas)` of the workload.
    pub async fn replicas(&self) -> anyhow::Result<(i32, i32)> {
        self.kind
            .replicas(&self.client, &self.namespace, &self.workload)
            .await
    }

    /// The workload's `spec.replicas`.
    pub async fn spec_replicas(&self) -> anyhow::Result<i32> {
        Ok(self.replicas().await?.0)
    }

    /// The AutoScaler's status.
    pub async fn view(&self) -> anyhow::Result<AutoScalerView> {
        view(&self.client, &self.namespace, &self.autoscaler).await
    }

    /// Events about the AutoScaler.
    pub async fn events(&self) -> anyhow::Result<Vec<EventSeen>> {
        events(&self.client, &self.namespace, KIND, &self.autoscaler).await
    }

    /// Polls `check` every 500ms until it yields `Some`, failing after `timeout`.
    pub async fn until<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        check: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        poll(what, timeout, check).await
    }

    /// Waits until the AutoScaler's status reports a CPU utilization: it has read metrics and
    /// decided at least once.
    pub async fn wait_utilization(&self, timeout: Duration) -> anyhow::Result<()> {
        self.until("a CPU utilization in the status", timeout, || async {
            Ok(self.view().await?.utilization().map(|_| ()))
        })
        .await
    }

    /// Waits until the workload's `spec.replicas` satisfies `pred`; returns it.
    pub async fn wait_replicas(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(i32) -> bool,
    ) -> anyhow::Result<i32> {
        self.until(what, timeout, || async {
            let spec = self.spec_replicas().await?;
            Ok(pred(spec).then_some(spec))
        })
        .await
    }
}

/// Polls `check` every 500ms until it yields `Some`, failing after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            bail!("timed out after {:?} waiting for {what}", start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Samples a workload, its AutoScaler and the driver once a second into a
/// [`Timeline`], in the background.
pub struct Recorder {
    timeline: Arc<Mutex<Timeline>>,
    views: Arc<Mutex<Vec<(f64, i32, AutoScalerView)>>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts sampling the workload and AutoScaler of `scaled`; times are
    /// seconds since `t0`.
    pub fn start(
        scaled: &Scaled,
        demand: SharedDemand,
        driver: watch::Receiver<Option<TickReport>>,
        t0: Instant,
    ) -> Self {
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let (stop, mut stopped) = oneshot::channel();
        let views = Arc::new(Mutex::new(Vec::new()));
        let scaled = scaled.clone();
        let (tl, vs) = (timeline.clone(), views.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => return,
                }
                let Ok((spec, ready)) = scaled.replicas().await else {
                    continue;
                };
                let seen = scaled.view().await.unwrap_or_default();
                let sample = Sample {
                    seconds: t0.elapsed().as_secs_f64(),
                    demand_millicores: demand.get().millicores,
                    per_pod_millicores: driver
                        .borrow()
                        .as_ref()
                        .map_or(0.0, |r| r.per_pod_millicores),
                    spec_replicas: spec,
                    ready_replicas: ready,
                    desired_replicas: seen.desired(),
                    cpu_utilization: seen.utilization(),
                };
                vs.lock().unwrap_or_else(PoisonError::into_inner).push((
                    sample.seconds,
                    spec,
                    seen,
                ));
                tl.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sample);
            }
        });
        Self {
            timeline,
            views,
            stop,
            task,
        }
    }

    /// Every AutoScaler status read so far, with its time and the
    /// workload's `spec.replicas` read just before it.
    pub fn views(&self) -> Vec<(f64, i32, AutoScalerView)> {
        self.views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether any status read so far had the condition `type_` with
    /// `status` and `reason`.
    pub fn saw_condition(&self, type_: &str, status: &str, reason: &str) -> bool {
        self.views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(_, _, v)| {
                v.condition(type_)
                    .is_some_and(|c| c.status == status && c.reason.as_deref() == Some(reason))
            })
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples()
            .to_vec()
    }

    /// Stops sampling and returns the timeline.
    pub async fn finish(self) -> Timeline {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.timeline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A `spec` for an AutoScaler on `kind`/`target` with one CPU Utilization
/// metric and no behavior.
pub fn cpu_utilization_spec(
    kind: WorkloadKind,
    target: &str,
    min: i32,
    max: i32,
    utilization: i32,
) -> serde_json::Value {
    serde_json::json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": kind.kind(), "name": target },
        "minReplicas": min,
        "maxReplicas": max,
        "metrics": [{
            "type": "Resource",
            "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": utilization } }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_flags_confine_it_to_the_test_namespace_and_its_lease() {
        let args = OperatorBuilder::new("ns-1")
            .flag("sync-period", "5s")
            .flag("sync-period", "3s")
            .identity("b")
            .command_args(SocketAddr::from(([127, 0, 0, 1], 9000)));
        let joined = args.join(" ");
        assert!(joined.starts_with("operator --namespace ns-1 --leader-election-namespace ns-1"));
        assert!(joined.contains("--identity b --admin-addr 127.0.0.1:9000"));
        assert!(joined.ends_with("--sync-period 3s"), "{joined}");
    }
}
