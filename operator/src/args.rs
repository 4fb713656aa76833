//! Flags of `tidal operator`. The HPA flags mirror kube-controller-manager's
//! `--horizontal-pod-autoscaler-*` flags, with the same defaults, so a drop-in experiment
//! runs both controllers with one configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Configuration of the controller process.
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// How often each AutoScaler is reconciled (`--horizontal-pod-autoscaler-sync-period`).
    #[arg(long, env = "TIDAL_SYNC_PERIOD", default_value = "15s", value_parser = parse_sync_period)]
    pub sync_period: Duration,

    /// The flags that shape each decision.
    #[command(flatten)]
    pub decision: DecisionFlags,

    /// AutoScalers reconciled in parallel (`--concurrent-horizontal-pod-autoscaler-syncs`).
    #[arg(long, env = "TIDAL_CONCURRENCY", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// `on`: one PodMetrics LIST per namespace per metrics window, shared by all AutoScalers.
    /// `off`: exactly the per-autoscaler request kube-controller-manager makes.
    #[arg(long, env = "TIDAL_METRICS_BATCHING", default_value = "on")]
    pub metrics_batching: Toggle,

    /// `on`: an AutoScaler reading resource metrics is also reconciled as soon as new
    /// PodMetrics samples of its namespace are visible (at most one LIST per namespace per
    /// second, about one per metrics resolution). `off`: the sync timer alone, exactly when
    /// kube-controller-manager would decide.
    #[arg(long, env = "TIDAL_RECONCILE_ON_FRESH_METRICS", default_value = "on")]
    pub reconcile_on_fresh_metrics: Toggle,

    /// Only the holder of a coordination.k8s.io Lease writes; the others watch (hot standby).
    #[arg(long, env = "TIDAL_LEADER_ELECTION", default_value = "on")]
    pub leader_election: Toggle,

    /// Namespace of the leader-election Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "TIDAL_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "TIDAL_LEADER_ELECTION_LEASE",
        default_value = "tidal-operator"
    )]
    pub leader_election_lease: String,

    /// How long a lease stays valid without renewal; a standby takes over after this.
    #[arg(long, env = "TIDAL_LEASE_DURATION", default_value = "15s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,

    /// Identity in the Lease (default: the hostname, i.e. the pod name).
    #[arg(long, env = "TIDAL_IDENTITY", value_parser = parse_identity)]
    pub identity: Option<String>,

    /// Address of the admin server (`/live`, `/ready`, `/metrics`).
    #[arg(long, env = "TIDAL_ADMIN_ADDR", default_value = "0.0.0.0:8080", value_parser = parse_admin_addr)]
    pub admin_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "TIDAL_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "TIDAL_NAMESPACE")]
    pub namespace: Option<String>,
}

/// The decision flags shared by `tidal operator` and the commands that decide like it
/// (`explain --now`, `simulate`), with kube-controller-manager's defaults.
#[derive(Debug, Clone, Args)]
pub struct DecisionFlags {
    /// Ratio band around 1.0 inside which nothing scales (`--horizontal-pod-autoscaler-tolerance`).
    #[arg(long, env = "TIDAL_TOLERANCE", default_value_t = 0.1, value_parser = parse_tolerance)]
    pub tolerance: f64,

    /// Default scale-down stabilization window (`--horizontal-pod-autoscaler-downscale-stabilization`).
    #[arg(long, env = "TIDAL_DOWNSCALE_STABILIZATION", default_value = "5m", value_parser = parse_duration)]
    pub downscale_stabilization: Duration,

    /// After pod start, CPU samples may be discarded (`--horizontal-pod-autoscaler-cpu-initialization-period`).
    #[arg(long, env = "TIDAL_CPU_INITIALIZATION_PERIOD", default_value = "5m", value_parser = parse_duration)]
    pub cpu_initialization_period: Duration,

    /// Readiness flips this soon after start count as never ready (`--horizontal-pod-autoscaler-initial-readiness-delay`).
    #[arg(long, env = "TIDAL_INITIAL_READINESS_DELAY", default_value = "30s", value_parser = parse_duration)]
    pub initial_readiness_delay: Duration,
}

impl DecisionFlags {
    /// The decision configuration these flags give.
    pub fn config(&self) -> scaling::Config {
        let nanos = |d: Duration| scaling::Duration::from_nanos(d.as_nanos() as i128);
        scaling::Config {
            tolerance: self.tolerance,
            cpu_initialization_period: nanos(self.cpu_initialization_period),
            initial_readiness_delay: nanos(self.initial_readiness_delay),
            downscale_stabilization: nanos(self.downscale_stabilization),
            ..scaling::Config::default()
        }
    }
}

/// An on/off switch spelled like the rest of the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl Toggle {
    /// Whether the switch is on.
    pub fn is_on(self) -> bool {
        self == Toggle::On
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Parses a duration exactly as kube-controller-manager's duration flags do (Go's
/// `time.ParseDuration`: `15s`, `5m`, `1m30s`, `500ms`, `1.5h`). Negative durations parse in
/// Go but mean nothing for these flags, so they are rejected here.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = scaling::Duration::parse_go(text)
        .map_err(|err| format!("{text:?} is not a duration such as 15s, 1m30s or 500ms: {err}"))?;
    let nanos = u64::try_from(parsed.as_nanos())
        .map_err(|_| format!("{text:?} is negative; use a duration such as 15s, 1m30s or 500ms"))?;
    Ok(Duration::from_nanos(nanos))
}

/// The shortest `--sync-period`. Zero would make every periodic task (discovery invalidation,
/// the sweep of deleted AutoScalers) panic on `tokio::time::interval(0)`, and anything under a
/// second re-reads metrics faster than any metrics pipeline produces them.
pub const MIN_SYNC_PERIOD: Duration = Duration::from_secs(1);

fn parse_sync_period(text: &str) -> Result<Duration, String> {
    let period = parse_duration(text)?;
    if period < MIN_SYNC_PERIOD {
        return Err(format!(
            "must be at least 1s (got {text}); kube-controller-manager's default is 15s"
        ));
    }
    Ok(period)
}

/// The shortest `--lease-duration`. The lease is renewed with a third of its duration left
/// (see `leader::elect`), in whole seconds: under 3 s that grace is zero and the holder loses
/// the lease before it renews it.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(3);

fn parse_lease_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < MIN_LEASE_DURATION {
        return Err(format!(
            "must be at least 3s (got {text}) so the lease is renewed before it expires; the default is 15s"
        ));
    }
    // A Lease counts whole seconds; rounding 4.5s down silently would shorten the renewal grace.
    if duration.subsec_nanos() != 0 {
        return Err(format!(
            "must be a whole number of seconds (got {text}), because a Lease counts whole seconds; use e.g. 15s"
        ));
    }
    Ok(duration)
}

fn parse_identity(text: &str) -> Result<String, String> {
    // An empty holder reads as a free Lease: another replica would take it while this one
    // still writes.
    if text.trim().is_empty() {
        return Err(
            "must not be empty: each replica needs an identity of its own in the Lease; leave the flag out to use the pod name (HOSTNAME)"
                .to_string(),
        );
    }
    Ok(text.to_string())
}

fn parse_admin_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an address: use IP:PORT such as 0.0.0.0:8080"))?;
    // Port 0 binds a random port that no probe or scrape configuration can know.
    if addr.port() == 0 {
        return Err(format!(
            "port must not be 0 (got {text}): probes and Prometheus need a fixed port such as 0.0.0.0:8080"
        ));
    }
    Ok(addr)
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not a tolerance: use a number >= 0 such as 0.1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: OperatorArgs,
    }

    fn parse(argv: &[&str]) -> Result<OperatorArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("tidal").chain(argv.iter().copied()))
            .map(|w| w.args)
    }

    #[test]
    fn defaults_match_kube_controller_manager() {
        let args = parse(&[]).expect("defaults parse");
        assert_eq!(args.sync_period, Duration::from_secs(15));
        assert_eq!(args.decision.tolerance, 0.1);
        assert_eq!(
            args.decision.downscale_stabilization,
            Duration::from_secs(300)
        );
        assert_eq!(
            args.decision.cpu_initialization_period,
            Duration::from_secs(300)
        );
        assert_eq!(
            args.decision.initial_readiness_delay,
            Duration::from_secs(30)
        );
        assert_eq!(args.concurrency, 5);
    }

    #[test]
    fn go_style_durations_are_accepted() {
        let args =
            parse(&["--sync-period", "1m30s", "--downscale-stabilization", "30s"]).expect("parse");
        assert_eq!(args.sync_period, Duration::from_secs(90));
        assert_eq!(
            args.decision.downscale_stabilization,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn bad_flags_name_the_flag_and_the_fix() {
        let err = parse(&["--tolerance=-1"])
            .expect_err("negative tolerance")
            .to_string();
        assert!(err.contains("--tolerance") && err.contains(">= 0"), "{err}");
        let err = parse(&["--sync-period", "soon"])
            .expect_err("bad duration")
            .to_string();
        assert!(
            err.contains("--sync-period") && err.contains("15s"),
            "{err}"
        );
        assert!(parse(&["--concurrency", "0"]).is_err());
    }

    #[test]
    fn durations_take_exactly_go_syntax() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        // humantime's spellings that Go rejects.
        for text in ["1 minute", "15sec", "1m 30s", "15", "-1s"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    /// The error of `argv`, which must be refused.
    fn refused(argv: &[&str]) -> String {
        match parse(argv) {
            Ok(args) => panic!("{argv:?} was accepted: {args:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_sync_period_under_a_second_is_refused_with_the_minimum() {
        for bad in ["0s", "0", "500ms", "999ms"] {
            let err = refused(&["--sync-period", bad]);
            assert!(
                err.contains("--sync-period") && err.contains("at least 1s") && err.contains(bad),
                "{bad}: {err}"
            );
        }
        let args = parse(&["--sync-period", "1s"]).expect("the minimum is accepted");
        assert_eq!(args.sync_period, MIN_SYNC_PERIOD);
    }

    #[test]
    fn a_lease_duration_under_three_seconds_is_refused_because_renewal_needs_a_grace() {
        for bad in ["0s", "1s", "2s", "2999ms"] {
            let err = refused(&["--lease-duration", bad]);
            assert!(
                err.contains("--lease-duration") && err.contains("at least 3s"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse(&["--lease-duration", "3s"])
                .expect("3s")
                .lease_duration,
            MIN_LEASE_DURATION
        );
    }

    #[test]
    fn a_lease_duration_in_fractions_of_a_second_is_refused() {
        let err = refused(&["--lease-duration", "4500ms"]);
        assert!(
            err.contains("--lease-duration") && err.contains("whole number of seconds"),
            "{err}"
        );
        assert_eq!(
            parse(&["--lease-duration", "1m"])
                .expect("1m")
                .lease_duration,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn concurrency_zero_is_refused_with_the_range() {
        let err = refused(&["--concurrency", "0"]);
        assert!(
            err.contains("--concurrency") && err.contains("1.."),
            "{err}"
        );
        refused(&["--concurrency=-1"]);
    }

    #[test]
    fn negative_or_non_finite_tolerances_are_refused() {
        for bad in ["-0.1", "NaN", "inf"] {
            let err = refused(&[&format!("--tolerance={bad}")]);
            assert!(
                err.contains("--tolerance") && err.contains(">= 0"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse(&["--tolerance", "0"]).expect("0").decision.tolerance,
            0.0
        );
    }

    #[test]
    fn negative_decision_durations_are_refused() {
        for flag in [
            "--cpu-initialization-period",
            "--initial-readiness-delay",
            "--downscale-stabilization",
        ] {
            let err = refused(&[&format!("{flag}=-1s")]);
            assert!(
                err.contains(flag) && err.contains("negative"),
                "{flag}: {err}"
            );
            // Zero is meaningful for these: no discarded samples, no delay, no stabilization.
            parse(&[flag, "0s"]).expect(flag);
        }
    }

    #[test]
    fn an_admin_address_without_a_fixed_port_is_refused() {
        let err = refused(&["--admin-addr", "0.0.0.0:0"]);
        assert!(
            err.contains("--admin-addr") && err.contains("must not be 0"),
            "{err}"
        );
        let err = refused(&["--admin-addr", "localhost"]);
        assert!(
            err.contains("--admin-addr") && err.contains("IP:PORT"),
            "{err}"
        );
        assert_eq!(
            parse(&["--admin-addr", "127.0.0.1:9090"])
                .expect("addr")
                .admin_addr
                .port(),
            9090
        );
    }

    #[test]
    fn a_garbage_duration_names_the_flag_and_go_s_error() {
        let err = parse(&["--downscale-stabilization", "five minutes"])
            .expect_err("garbage")
            .to_string();
        assert!(err.contains("--downscale-stabilization"), "{err}");
        assert!(
            err.contains("time: invalid duration \"five minutes\""),
            "{err}"
        );
    }
}
