//! Tidal's reports: what the e2e comparison runner (`tidal-e2e compare`) and
//! `tidal simulate` both produce from a run of one or two autoscalers.
//!
//! Pure: no Kubernetes client, no async runtime, no clock. Modules:
//! - [`demand`]: demand traces (CSV `seconds,millicores[,memory]` or YAML),
//!   interpolation and [`demand::DemandTrace::steps`];
//! - [`quantity`]: the Kubernetes quantities traces and the e2e harness read;
//! - [`timeline`]: per-second [`timeline::Sample`]s of one side, and their CSV;
//! - [`summary`]: per-side figures ([`summary::summarize`]: replica-seconds,
//!   overload-seconds, scale events, first scale and settling after each
//!   step, max replicas) and the per-sync [`summary::divergence`] of two sides;
//! - [`table`]: the summary as a text table ([`table::render_table`]);
//! - [`plot`]: demand and both sides' replicas as PNG and SVG
//!   ([`plot::write_png`], [`plot::write_svg`]), fonts embedded.
//!
//! A typical use, for sides `hpa` and `tidal` driven by `trace`:
//!
//! ```no_run
//! # fn run(hpa: &tidal_report::Timeline, tidal: &tidal_report::Timeline,
//! #        trace: &tidal_report::DemandTrace, dir: &std::path::Path) -> tidal_report::Result<()> {
//! use tidal_report::{plot, summary, table};
//! let config = summary::SummaryConfig::new(50.0, 0.1);
//! let steps = trace.steps();
//! let (a, b) = (summary::summarize(hpa, &steps, &config), summary::summarize(tidal, &steps, &config));
//! let instants = summary::sync_instants(0.0, hpa.duration_seconds(), 5.0);
//! let d = summary::divergence(hpa, tidal, &instants, 2.0);
//! print!("{}", table::render_table(&[("built-in HPA", &a), ("Tidal", &b)], Some(&d), &config));
//! let sides = [plot::Side { name: "built-in HPA", timeline: hpa }, plot::Side { name: "Tidal", timeline: tidal }];
//! plot::write_png(&dir.join("plot.png"), trace.name(), &sides, plot::DEFAULT_SIZE)?;
//! plot::write_svg(&dir.join("plot.svg"), trace.name(), &sides, plot::DEFAULT_SIZE)?;
//! # Ok(()) }
//! ```

pub mod demand;
pub mod error;
pub mod plot;
pub mod quantity;
pub mod summary;
pub mod table;
pub mod timeline;

pub use demand::{Demand, DemandTrace, Point, Step};
pub use error::{Error, Result};
pub use timeline::{Sample, Timeline};
