//! The comparison plot: demand over time (top panel) and each side's
//! replicas over time (bottom panel), as PNG and SVG.
//!
//! Text is drawn with plotters' `ab_glyph` renderer from DejaVu Sans bytes
//! embedded in the binary (the `dejavu` crate), registered once as
//! `sans-serif`. plotters' default `ttf` feature would instead look fonts up
//! through font-kit and fontconfig, which the distroless image lacks and a
//! bare CI machine may lack too: the plot must not depend on the machine.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};
use crate::timeline::Timeline;

/// Colour of the demand line.
pub const DEMAND_COLOUR: RGBColor = RGBColor(44, 160, 44);
/// Colours of the sides' replica lines, in the order the sides are given
/// (a third side and beyond reuse them).
pub const SIDE_COLOURS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];
/// Default image size, pixels.
pub const DEFAULT_SIZE: (u32, u32) = (1200, 700);

/// The font family every text uses; registered from embedded bytes.
const FONT: &str = "sans-serif";

/// One side of the plot: a name for the legend and its timeline.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Legend label, e.g. `built-in HPA`.
    pub name: &'a str,
    /// The side's samples.
    pub timeline: &'a Timeline,
}

/// Draws the plot as a PNG of `size` pixels at `path`. Demand comes from
/// the first side (a comparison drives both sides with the same trace). The
/// first side's replica line is drawn wider underneath the second's, so both
/// stay visible where they coincide.
pub fn write_png(path: &Path, title: &str, sides: &[Side<'_>], size: (u32, u32)) -> Result<()> {
    fonts(path)?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    draw(root, title, sides).map_err(|message| plot_error(path, message))
}

/// Draws the same plot as [`write_png`] as an SVG at `path`.
pub fn write_svg(path: &Path, title: &str, sides: &[Side<'_>], size: (u32, u32)) -> Result<()> {
    fonts(path)?;
    let root = SVGBackend::new(path, size).into_drawing_area();
    draw(root, title, sides).map_err(|message| plot_error(path, message))
}

fn plot_error(path: &Path, message: String) -> Error {
    Error::Plot {
        path: path.display().to_string(),
        message,
    }
}

/// Registers the embedded font once per process.
fn fonts(path: &Path) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    if ok {
        Ok(())
    } else {
        Err(plot_error(
            path,
            "the embedded DejaVu Sans font could not be read".into(),
        ))
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    sides: &[Side<'_>],
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, (FONT, 24)).map_err(e)?;
    let x_max = sides
        .iter()
        .filter_map(|s| s.timeline.samples().last())
        .map(|s| s.seconds)
        .fold(1.0_f64, f64::max);
    let (_, height) = root.dim_in_pixel();
    let (top, bottom) = root.split_vertically(height * 2 / 5);

    let demand: Vec<(f64, f64)> = sides
        .first()
        .map(|s| {
            s.timeline
                .samples()
                .iter()
                .map(|s| (s.seconds, s.demand_millicores))
                .collect()
        })
        .unwrap_or_default();
    let demand_max = demand.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..demand_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("demand (millicores)")
        .label_style((FONT, 14))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(demand, DEMAND_COLOUR.stroke_width(2)))
        .map_err(e)?
        .label("demand")
        .legend(|(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], DEMAND_COLOUR.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(e)?;

    let replicas_max = sides
        .iter()
        .flat_map(|s| s.timeline.samples())
        .map(|s| s.replicas)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..f64::from(replicas_max) + 1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("replicas")
        .label_style((FONT, 14))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e)?;
    for (i, side) in sides.iter().enumerate() {
        let colour = SIDE_COLOURS[i % SIDE_COLOURS.len()];
        // The first side underneath and wider, so equal lines show both colours.
        let width = if i == 0 { 6 } else { 2 };
        chart
            .draw_series(LineSeries::new(
                staircase(side.timeline),
                colour.stroke_width(width),
            ))
            .map_err(e)?
            .label(side.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// Replicas as a step function: a value holds until the next sample.
fn staircase(timeline: &Timeline) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(timeline.samples().len() * 2);
    let mut last: Option<f64> = None;
    for s in timeline.samples() {
        let r = f64::from(s.replicas);
        if let Some(prev) = last
            && prev != r
        {
            out.push((s.seconds, prev));
        }
        out.push((s.seconds, r));
        last = Some(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Sample;

    /// Demand steps 200m -> 800m at 60 s and back at 180 s; replicas follow
    /// after `lag` seconds, from 1 to `peak` and back.
    fn side(lag: f64, peak: i32) -> Timeline {
        (0..=300)
            .map(|s| {
                let t = f64::from(s);
                let demand = if (60.0..180.0).contains(&t) {
                    800.0
                } else {
                    200.0
                };
                let replicas = if (60.0 + lag..180.0 + lag + 30.0).contains(&t) {
                    peak
                } else {
                    1
                };
                Sample {
                    seconds: t,
                    demand_millicores: demand,
                    replicas,
                    ready_replicas: replicas,
                    ..Sample::default()
                }
            })
            .collect()
    }

    fn count(img: &image::RgbImage, c: RGBColor) -> usize {
        img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
    }

    fn decode(path: &Path) -> image::RgbImage {
        match image::open(path) {
            Ok(i) => i.to_rgb8(),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }

    /// A file under the temp directory, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn tmp(name: &str) -> TempFile {
        TempFile(
            std::env::temp_dir().join(format!("tidal-report-plot-{}-{name}", std::process::id())),
        )
    }

    #[test]
    fn the_png_has_the_requested_size_and_draws_demand_and_both_sides() {
        let (hpa, tidal) = (side(15.0, 4), side(5.0, 5));
        let path = tmp("both.png");
        let sides = [
            Side {
                name: "built-in HPA",
                timeline: &hpa,
            },
            Side {
                name: "Tidal",
                timeline: &tidal,
            },
        ];
        write_png(&path, "step", &sides, (900, 600)).unwrap_or_else(|e| panic!("{e}"));
        let img = decode(&path);
        assert_eq!(img.dimensions(), (900, 600));
        // Each line runs across most of the plot's width: hundreds of pixels,
        // far more than its legend swatch (about 20 × width pixels).
        for (what, colour) in [
            ("demand", DEMAND_COLOUR),
            ("built-in HPA", SIDE_COLOURS[0]),
            ("Tidal", SIDE_COLOURS[1]),
        ] {
            let n = count(&img, colour);
            assert!(n > 600, "{what}: only {n} pixels of its colour");
        }
    }

    #[test]
    fn identical_sides_both_stay_visible() {
        let t = side(10.0, 4);
        let path = tmp("same.png");
        let sides = [
            Side {
                name: "a",
                timeline: &t,
            },
            Side {
                name: "b",
                timeline: &t,
            },
        ];
        write_png(&path, "same", &sides, DEFAULT_SIZE).unwrap_or_else(|e| panic!("{e}"));
        let img = decode(&path);
        assert!(count(&img, SIDE_COLOURS[0]) > 600);
        assert!(count(&img, SIDE_COLOURS[1]) > 600);
    }

    #[test]
    fn a_side_without_samples_draws_no_line_so_the_pixel_check_can_fail() {
        let (t, empty) = (side(10.0, 4), Timeline::new());
        let path = tmp("one.png");
        let sides = [
            Side {
                name: "a",
                timeline: &t,
            },
            Side {
                name: "b",
                timeline: &empty,
            },
        ];
        write_png(&path, "one", &sides, DEFAULT_SIZE).unwrap_or_else(|e| panic!("{e}"));
        let img = decode(&path);
        assert!(count(&img, SIDE_COLOURS[0]) > 600);
        assert!(count(&img, SIDE_COLOURS[1]) < 200, "only the legend swatch");
    }

    #[test]
    fn the_svg_draws_both_sides_in_their_colours_with_text() {
        let (a, b) = (side(15.0, 4), side(5.0, 5));
        let path = tmp("both.svg");
        let sides = [
            Side {
                name: "built-in HPA",
                timeline: &a,
            },
            Side {
                name: "Tidal",
                timeline: &b,
            },
        ];
        write_svg(&path, "step", &sides, (900, 600)).unwrap_or_else(|e| panic!("{e}"));
        let svg = std::fs::read_to_string(&*path).unwrap_or_else(|e| panic!("{e}"));
        assert!(svg.contains("width=\"900\"") && svg.contains("height=\"600\""));
        for c in [DEMAND_COLOUR, SIDE_COLOURS[0], SIDE_COLOURS[1]] {
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            assert!(svg.matches(&hex).count() >= 2, "{hex} missing");
        }
        assert!(svg.contains("built-in HPA") && svg.contains("replicas"));
    }

    #[test]
    fn replicas_are_drawn_as_steps() {
        let t: Timeline = [(0.0, 1), (1.0, 1), (2.0, 3)]
            .into_iter()
            .map(|(seconds, replicas)| Sample {
                seconds,
                replicas,
                ..Sample::default()
            })
            .collect();
        assert_eq!(
            staircase(&t),
            vec![(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (2.0, 3.0)]
        );
    }
}
