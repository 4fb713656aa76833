//! Demand traces: total CPU (and optionally memory) demand of a workload over
//! time, read from CSV or YAML files and interpolated linearly between points.
//!
//! CSV: one `seconds,millicores[,memory]` row per point; `#` starts a
//! comment; an optional header row is skipped. YAML:
//!
//! ```yaml
//! points:
//!   - { seconds: 0, millicores: 200, memory: 256Mi }
//!   - { seconds: 60, millicores: 800, memory: 1Gi }
//! ```
//!
//! Two points at the same time make a step: before that time the earlier
//! value holds (interpolated towards it), from that time on the later one.
//! Before the first point the first value holds, after the last the last.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::quantity;

/// One point of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds from the start of the trace.
    pub seconds: f64,
    /// Total CPU demand in millicores.
    pub millicores: f64,
    /// Total memory demand in bytes, if the trace has memory.
    pub memory_bytes: Option<f64>,
}

/// Demand at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Total CPU demand in millicores.
    pub millicores: f64,
    /// Total memory demand in bytes, if known.
    pub memory_bytes: Option<f64>,
}

impl Demand {
    /// CPU-only demand.
    pub fn cpu(millicores: f64) -> Self {
        Self {
            millicores,
            memory_bytes: None,
        }
    }
}

/// An instantaneous change of demand: two points of a trace at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Seconds from the start of the trace.
    pub seconds: f64,
    /// CPU demand just before, millicores.
    pub from_millicores: f64,
    /// CPU demand from then on, millicores.
    pub to_millicores: f64,
}

/// A validated, time-ordered demand trace.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandTrace {
    name: String,
    points: Vec<Point>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlTrace {
    #[serde(default)]
    name: Option<String>,
    points: Vec<YamlPoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlPoint {
    seconds: f64,
    millicores: f64,
    #[serde(default)]
    memory: Option<YamlQuantity>,
}

/// Memory may be written as a bare number of bytes or as a quantity string.
#[derive(Deserialize)]
#[serde(untagged)]
enum YamlQuantity {
    Number(f64),
    Text(String),
}

impl DemandTrace {
    /// Checks and wraps points: at least one, finite, non-negative, times
    /// non-decreasing, and memory on every point or on none. An error's
    /// `line` is the 1-based number of the offending point.
    pub fn from_points(name: impl Into<String>, points: Vec<Point>) -> Result<Self> {
        let name = name.into();
        let err = |line: usize, message: String| Error::DemandTrace {
            origin: name.clone(),
            line,
            message,
        };
        if points.is_empty() {
            return Err(err(0, "a trace needs at least one point".into()));
        }
        let with_memory = points[0].memory_bytes.is_some();
        let mut last = f64::NEG_INFINITY;
        for (i, p) in points.iter().enumerate() {
            let values = [Some(p.seconds), Some(p.millicores), p.memory_bytes];
            if values.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(err(
                    i + 1,
                    format!("point {} has a negative or non-finite value", i + 1),
                ));
            }
            if p.seconds < last {
                return Err(err(
                    i + 1,
                    format!("time goes backwards at point {}", i + 1),
                ));
            }
            if p.memory_bytes.is_some() != with_memory {
                return Err(err(
                    i + 1,
                    "memory must be given on every point or on none".into(),
                ));
            }
            last = p.seconds;
        }
        Ok(Self { name, points })
    }

    /// A constant demand for `seconds`.
    pub fn constant(millicores: f64, seconds: f64) -> Result<Self> {
        let p = |s| Point {
            seconds: s,
            millicores,
            memory_bytes: None,
        };
        Self::from_points(format!("constant {millicores}m"), vec![p(0.0), p(seconds)])
    }

    /// Reads a trace file; the extension (`.csv`, `.yaml`, `.yml`) picks the format.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: origin.clone(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Self::parse_csv(&origin, &text),
            Some("yaml" | "yml") => Self::parse_yaml(&origin, &text),
            _ => Err(Error::DemandTrace {
                origin,
                line: 0,
                message: "unknown trace format: use .csv, .yaml or .yml".into(),
            }),
        }
    }

    /// Parses `seconds,millicores[,memory]` rows.
    pub fn parse_csv(origin: &str, text: &str) -> Result<Self> {
        let err = |line: usize, message: String| Error::DemandTrace {
            origin: origin.to_owned(),
            line,
            message,
        };
        let mut points = Vec::new();
        // Source line of each point, to name lines in validation errors.
        let mut lines = Vec::new();
        let mut seen_row = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let first_row = !seen_row;
            seen_row = true;
            if first_row && fields[0].parse::<f64>().is_err() {
                continue; // a header row
            }
            if !(2..=3).contains(&fields.len()) {
                return Err(err(
                    i + 1,
                    format!("expected seconds,millicores[,memory], got {line:?}"),
                ));
            }
            let seconds = fields[0]
                .parse::<f64>()
                .map_err(|_| err(i + 1, format!("bad seconds {:?}", fields[0])))?;
            // Plain numbers are millicores; a quantity such as `1.5` cores
            // would be ambiguous, so only the `m` suffix is accepted besides.
            let millicores = match fields[1].parse::<f64>() {
                Ok(v) => v,
                Err(_) if fields[1].ends_with('m') => quantity::cpu_millis(fields[1])
                    .map_err(|_| err(i + 1, format!("bad millicores {:?}", fields[1])))?,
                Err(_) => return Err(err(i + 1, format!("bad millicores {:?}", fields[1]))),
            };
            let memory_bytes = match fields.get(2) {
                Some(m) => {
                    Some(quantity::bytes(m).map_err(|_| err(i + 1, format!("bad memory {m:?}")))?)
                }
                None => None,
            };
            points.push(Point {
                seconds,
                millicores,
                memory_bytes,
            });
            lines.push(i + 1);
        }
        Self::from_points(origin, points).map_err(|e| match e {
            Error::DemandTrace { line, message, .. } if line > 0 => Error::DemandTrace {
                origin: origin.to_owned(),
                line: lines[line - 1],
                message,
            },
            other => other,
        })
    }

    /// Parses the YAML form (see the module docs).
    pub fn parse_yaml(origin: &str, text: &str) -> Result<Self> {
        let parsed: YamlTrace = serde_yaml::from_str(text).map_err(|e| Error::DemandTrace {
            origin: origin.to_owned(),
            line: e.location().map_or(0, |l| l.line()),
            message: e.to_string(),
        })?;
        let mut points = Vec::with_capacity(parsed.points.len());
        for (i, p) in parsed.points.into_iter().enumerate() {
            let memory_bytes = match p.memory {
                None => None,
                Some(YamlQuantity::Number(n)) => Some(n),
                Some(YamlQuantity::Text(t)) => {
                    Some(quantity::bytes(&t).map_err(|_| Error::DemandTrace {
                        origin: origin.to_owned(),
                        line: 0,
                        message: format!("point {}: bad memory {t:?}", i + 1),
                    })?)
                }
            };
            points.push(Point {
                seconds: p.seconds,
                millicores: p.millicores,
                memory_bytes,
            });
        }
        Self::from_points(parsed.name.unwrap_or_else(|| origin.to_owned()), points)
    }

    /// Name (file name unless the YAML names it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The points, in time order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Seconds from the start to the last point.
    pub fn duration_seconds(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.seconds)
    }

    /// The trace's steps (two points at one time with different CPU demand),
    /// in time order. Reaction times in [`crate::summary`] are measured from these.
    pub fn steps(&self) -> Vec<Step> {
        self.points
            .windows(2)
            .filter(|w| w[0].seconds == w[1].seconds && w[0].millicores != w[1].millicores)
            .map(|w| Step {
                seconds: w[1].seconds,
                from_millicores: w[0].millicores,
                to_millicores: w[1].millicores,
            })
            .collect()
    }

    /// Demand at `seconds` after the start.
    pub fn at(&self, seconds: f64) -> Demand {
        let pts = &self.points;
        // Index of the first point strictly after `seconds`: the point before
        // it is the latest at or before `seconds`, which makes the later of
        // two same-time points win (a step).
        let next = pts.partition_point(|p| p.seconds <= seconds);
        let demand = |p: &Point| Demand {
            millicores: p.millicores,
            memory_bytes: p.memory_bytes,
        };
        if next == 0 {
            return demand(&pts[0]);
        }
        let a = &pts[next - 1];
        let Some(b) = pts.get(next) else {
            return demand(a);
        };
        let f = (seconds - a.seconds) / (b.seconds - a.seconds);
        let lerp = |x: f64, y: f64| x + (y - x) * f;
        Demand {
            millicores: lerp(a.millicores, b.millicores),
            memory_bytes: a.memory_bytes.zip(b.memory_bytes).map(|(x, y)| lerp(x, y)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> DemandTrace {
        match DemandTrace::parse_csv("test.csv", text) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn csv_with_header_comments_and_memory_is_read_point_by_point() {
        let t = csv("# a ramp\nseconds,millicores,memory\n0,100,128Mi\n\n10, 300 ,256Mi # peak\n");
        assert_eq!(t.points().len(), 2);
        assert_eq!(t.points()[1].millicores, 300.0);
        assert_eq!(t.points()[1].memory_bytes, Some(268_435_456.0));
        assert_eq!(t.duration_seconds(), 10.0);
    }

    #[test]
    fn demand_between_points_is_interpolated_linearly() {
        let t = csv("0,100,100\n10,300,300\n");
        assert_eq!(
            t.at(5.0),
            Demand {
                millicores: 200.0,
                memory_bytes: Some(200.0)
            }
        );
        assert_eq!(t.at(2.5).millicores, 150.0);
    }

    #[test]
    fn demand_holds_the_first_value_before_and_the_last_value_after_the_trace() {
        let t = csv("5,100\n10,300\n");
        assert_eq!(t.at(0.0).millicores, 100.0);
        assert_eq!(t.at(10.0).millicores, 300.0);
        assert_eq!(t.at(1e6).millicores, 300.0);
    }

    #[test]
    fn two_points_at_one_time_make_a_step_where_the_later_value_wins() {
        let t = csv("0,100\n30,100\n30,800\n60,800\n");
        assert_eq!(t.at(29.999).millicores, 100.0);
        assert_eq!(t.at(30.0).millicores, 800.0);
        assert_eq!(t.at(45.0).millicores, 800.0);
    }

    #[test]
    fn steps_are_same_time_point_pairs_with_different_demand() {
        let t = csv("0,100\n30,100\n30,800\n60,800\n60,800\n90,800\n90,200\n");
        assert_eq!(
            t.steps(),
            vec![
                Step {
                    seconds: 30.0,
                    from_millicores: 100.0,
                    to_millicores: 800.0
                },
                Step {
                    seconds: 90.0,
                    from_millicores: 800.0,
                    to_millicores: 200.0
                },
            ]
        );
        assert!(csv("0,100\n10,300\n").steps().is_empty());
    }

    #[test]
    fn millicores_may_carry_the_m_suffix() {
        assert_eq!(csv("0,250m\n").at(0.0).millicores, 250.0);
    }

    #[test]
    fn malformed_csv_names_the_line() {
        for (text, line) in [
            ("0,100\n5\n", 2),
            ("0,100\nx,5\n", 2),
            ("0,100\n5,abc\n", 2),
            ("0,100\n5,1.5\n5,1,2,3\n", 3),
            ("10,100\n5,100\n", 2),
            ("0,-1\n", 1),
            ("0,100,1Mi\n5,100\n", 2),
            ("# header comment\nseconds,millicores\n0,5\n\n1,-5\n", 5),
        ] {
            match DemandTrace::parse_csv("t.csv", text) {
                Err(Error::DemandTrace { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: expected a trace error, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_empty_trace_is_rejected() {
        assert!(DemandTrace::parse_csv("t.csv", "# nothing\n").is_err());
        assert!(DemandTrace::parse_yaml("t.yaml", "points: []\n").is_err());
    }

    #[test]
    fn yaml_points_accept_memory_as_quantity_or_number_and_reject_unknown_keys() {
        let t = DemandTrace::parse_yaml(
            "t.yaml",
            "name: demo\npoints:\n- {seconds: 0, millicores: 100, memory: 1Ki}\n- {seconds: 4, millicores: 500, memory: 2048}\n",
        );
        let t = match t {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.name(), "demo");
        assert_eq!(
            t.at(2.0),
            Demand {
                millicores: 300.0,
                memory_bytes: Some(1536.0)
            }
        );
        assert!(DemandTrace::parse_yaml("t.yaml", "points:\n- {seconds: 0, millis: 1}\n").is_err());
    }

    #[test]
    fn checked_in_traces_parse_and_have_the_advertised_shapes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/traces");
        let load = |f: &str| match DemandTrace::from_path(dir.join(f)) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        let step = load("step.csv");
        assert!(step.at(0.0).millicores < step.at(step.duration_seconds() / 2.0).millicores);

        let ramp = load("ramp.csv");
        let (a, b, c) = (ramp.at(0.0), ramp.at(30.0), ramp.at(60.0));
        assert!(a.millicores < b.millicores && b.millicores < c.millicores);

        let spike = load("spike.csv");
        let peak = spike
            .points()
            .iter()
            .map(|p| p.millicores)
            .fold(0.0, f64::max);
        assert!(peak >= 4.0 * spike.at(0.0).millicores);
        assert_eq!(
            spike.at(spike.duration_seconds()).millicores,
            spike.at(0.0).millicores
        );

        let demo = load("demo.csv");
        let steps = demo.steps();
        assert_eq!(steps.len(), 2, "demo: one step up, one down");
        assert!(steps[0].to_millicores > steps[0].from_millicores);
        assert!(steps[1].to_millicores < steps[1].from_millicores);
        assert!(demo.duration_seconds() <= 240.0, "demo stays a few minutes");

        let sine = load("sine.yaml");
        let values: Vec<f64> = (0..=sine.duration_seconds() as usize)
            .map(|s| sine.at(s as f64).millicores)
            .collect();
        let (min, max) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(max - min > 500.0, "sine swings {min}..{max}");
        assert!(sine.points().iter().all(|p| p.memory_bytes.is_some()));
    }

    #[test]
    fn unknown_extensions_are_refused() {
        assert!(matches!(
            DemandTrace::from_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")),
            Err(Error::DemandTrace { .. })
        ));
    }
}
