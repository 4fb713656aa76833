//! A TCP proxy between one operator and the API server that a test can cut, to partition that
//! operator from the control plane while everything else (the test, other operators, the
//! cluster's own components) keeps talking to it.
//!
//! Plain TCP passthrough: TLS runs end to end between the operator and the API server, so the
//! operator still verifies the server's certificate (the local API server's covers
//! `127.0.0.1`, which is where the proxy listens).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy; dropping it stops accepting and closes every connection.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy")?;
        let addr = listener.local_addr()?;
        let (tx, _) = watch::channel(false);
        let cut = Arc::new(tx);
        let task = tokio::spawn(accept(listener, upstream, cut.clone()));
        Ok(Proxy {
            addr,
            upstream,
            cut,
            task,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Partitions: closes every open connection, and holds new ones open without forwarding a
    /// byte (a blackhole: the client's request hangs until its own timeout, as behind a
    /// dropped route) until [`Proxy::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Ends the partition: the held connections are closed (the client reconnects) and new
    /// ones are forwarded again.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }

    /// Writes a copy of `kubeconfig` whose clusters point at the proxy to `out`.
    pub fn kubeconfig(&self, kubeconfig: &Path, out: &Path) -> anyhow::Result<PathBuf> {
        let text = std::fs::read_to_string(kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        let mut config: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let clusters = config
            .get_mut("clusters")
            .and_then(serde_yaml::Value::as_sequence_mut)
            .ok_or_else(|| anyhow!("{} has no clusters", kubeconfig.display()))?;
        for cluster in clusters {
            if let Some(server) = cluster.get_mut("cluster").and_then(|c| c.get_mut("server")) {
                *server = format!("https://{}", self.addr).into();
            }
        }
        std::fs::write(out, serde_yaml::to_string(&config)?)?;
        Ok(out.to_path_buf())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        // Ends the connection tasks too.
        self.cut.send_replace(true);
    }
}

/// The API server address of a kubeconfig's current cluster (`https://127.0.0.1:PORT`).
pub fn upstream_of(kubeconfig: &Path) -> anyhow::Result<SocketAddr> {
    let text = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .ok_or_else(|| anyhow!("{} names no server", kubeconfig.display()))?;
    let hostport = server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    hostport
        .parse()
        .with_context(|| format!("server {server} is not an IP:port"))
}

async fn accept(listener: TcpListener, upstream: SocketAddr, cut: Arc<watch::Sender<bool>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let mut state = cut.subscribe();
        tokio::spawn(async move {
            if *state.borrow_and_update() {
                // Blackholed: held, never answered, closed when the partition ends.
                let _ = state.wait_for(|cut| !*cut).await;
                drop(client);
                return;
            }
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            forward(client, server, state).await;
        });
    }
}

/// Copies both ways until either side closes or the proxy is cut.
async fn forward(mut client: TcpStream, mut server: TcpStream, mut state: watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = state.wait_for(|cut| *cut) => {}
    }
}
