//! `sfu-chart`: render end-to-end load-test results as a PNG for
//! BENCHMARKS.md.
//!
//! Input is a small CSV file with the header
//! `series,players,cpu_us_per_pkt,p99_ms`, one row per run; `series` labels
//! a build ("no batching", "sendmmsg", ...). Blank lines and lines starting
//! with `#` are skipped; an empty number field means "not measured" and
//! leaves the point out of that panel. The output has two panels: players vs
//! server CPU per forwarded packet (with the 3 µs target) and players vs
//! latency p99, one line per series.
//!
//! ```sh
//! cargo run -p sfu-load --bin sfu-chart -- docs/bench/egress.csv docs/bench/egress.png
//! ```
//!
//! Text is drawn with an embedded DejaVu Sans (see `assets/`), so no system
//! fonts are needed.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::series::DashedLineSeries;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

/// The header the input must start with.
const HEADER: &str = "series,players,cpu_us_per_pkt,p99_ms";
/// Server CPU per forwarded packet the egress work aims for (issue 5).
const TARGET_US: f64 = 3.0;
/// Line colours, one per series in order of first appearance (Tableau 10).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Render load-test results (CSV) as a two-panel PNG chart.
#[derive(Debug, Parser)]
#[command(name = "sfu-chart", version)]
struct Cli {
    /// Input CSV with header `series,players,cpu_us_per_pkt,p99_ms`.
    input: PathBuf,
    /// Output PNG file.
    output: PathBuf,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1200, value_parser = clap::value_parser!(u32).range(400..=8000))]
    width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(200..=8000))]
    height: u32,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let text = std::fs::read_to_string(&cli.input)
        .with_context(|| format!("reading {}", cli.input.display()))?;
    let series = parse_csv(&text).with_context(|| format!("{}", cli.input.display()))?;
    render(&series, &cli.output, (cli.width, cli.height))
        .with_context(|| format!("writing {}", cli.output.display()))?;
    eprintln!(
        "wrote {} ({}×{}, {} series)",
        cli.output.display(),
        cli.width,
        cli.height,
        series.len()
    );
    Ok(())
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    players: f64,
    cpu_us_per_pkt: Option<f64>,
    p99_ms: Option<f64>,
}

/// The runs of one build, sorted by player count.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    points: Vec<Point>,
}

/// Parse the CSV; series keep the order in which they first appear.
fn parse_csv(text: &str) -> Result<Vec<Series>> {
    let mut series: Vec<Series> = Vec::new();
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            if cols.join(",") != HEADER {
                bail!("line {n}: expected the header `{HEADER}`, found `{line}`");
            }
            header_seen = true;
            continue;
        }
        let (name, point) = parse_row(line).with_context(|| format!("line {n}: `{line}`"))?;
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    if !header_seen {
        bail!("empty input: expected the header `{HEADER}`");
    }
    if series.is_empty() {
        bail!("no data rows after the header");
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.players.total_cmp(&b.players));
    }
    Ok(series)
}

/// One data row. The three numbers are taken from the right, so the label
/// may contain commas; surrounding double quotes are stripped.
fn parse_row(line: &str) -> Result<(String, Point)> {
    let mut fields = line.rsplitn(4, ',');
    let p99 = fields.next();
    let cpu = fields.next();
    let players = fields.next();
    let name = fields.next();
    let (Some(name), Some(players), Some(cpu), Some(p99)) = (name, players, cpu, p99) else {
        bail!("expected 4 fields `{HEADER}`");
    };
    let name = name.trim().trim_matches('"').trim();
    if name.is_empty() {
        bail!("empty series label");
    }
    let players = number("players", players)?.ok_or_else(|| anyhow!("players is empty"))?;
    let point = Point {
        players,
        cpu_us_per_pkt: number("cpu_us_per_pkt", cpu)?,
        p99_ms: number("p99_ms", p99)?,
    };
    Ok((name.to_string(), point))
}

/// A finite, non-negative number, or `None` for an empty field.
fn number(column: &str, field: &str) -> Result<Option<f64>> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => bail!("{column}: `{field}` is not a non-negative number"),
    }
}

/// Make the embedded font the "sans-serif" family plotters draws text with.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded font could not be loaded"))
    }
}

/// Which measurement a panel shows.
#[derive(Clone, Copy)]
enum Metric {
    Cpu,
    P99,
}

impl Metric {
    fn value(self, p: &Point) -> Option<f64> {
        match self {
            Metric::Cpu => p.cpu_us_per_pkt,
            Metric::P99 => p.p99_ms,
        }
    }
}

/// Draw the two panels into a PNG of `size` pixels.
fn render(series: &[Series], output: &Path, size: (u32, u32)) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(output, size).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let panels = root.split_evenly((1, 2));
    let max_players = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.players))
        .fold(0.0, f64::max);
    let x_range = 0.0..(max_players * 1.06).max(1.0);
    panel(
        &panels[0],
        series,
        Metric::Cpu,
        x_range.clone(),
        "Server CPU per forwarded packet",
        "server CPU per forwarded packet (µs)",
        Some(TARGET_US),
    )?;
    panel(
        &panels[1],
        series,
        Metric::P99,
        x_range,
        "Latency p99 (publisher → player)",
        "latency p99 (ms)",
        None,
    )?;
    root.present().map_err(draw_err)?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    series: &[Series],
    metric: Metric,
    x_range: Range<f64>,
    title: &str,
    y_desc: &str,
    target: Option<f64>,
) -> Result<()> {
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| metric.value(p)))
        .chain(target)
        .fold(0.0, f64::max);
    let y_range = 0.0..nice_ceil(y_max * 1.15);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(62)
        .build_cartesian_2d(x_range.clone(), y_range)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("players")
        .y_desc(y_desc)
        .axis_desc_style(("sans-serif", 17))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(draw_err)?;
    if let Some(t) = target {
        let style = ShapeStyle {
            color: RGBColor(200, 0, 0).to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(x_range.start, t), (x_range.end, t)],
                10,
                6,
                style,
            ))
            .map_err(draw_err)?;
        let label = format!("target {t} µs");
        let x = x_range.start + (x_range.end - x_range.start) * 0.02;
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x, t),
                ("sans-serif", 15)
                    .into_font()
                    .color(&RGBColor(200, 0, 0))
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            )))
            .map_err(draw_err)?;
    }
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| metric.value(p).map(|v| (p.players, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(draw_err)?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        chart
            .draw_series(PointSeries::of_element(
                pts,
                4,
                color.filled(),
                &|c, size, style| EmptyElement::at(c) + Circle::new((0, 0), size, style),
            ))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Round up to a tidy multiple of a power of ten, for axis ends.
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * step)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * step)
}

/// plotters' drawing errors borrow nothing but are generic over the backend;
/// flatten them to text.
fn draw_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_SERIES: &str = "\
series,players,cpu_us_per_pkt,p99_ms
no batching,10,16.5,1.40
no batching,50,11.1,3.68
no batching,200,10.7,12.39
sendmmsg,200,7.5,10.45
sendmmsg,10,11.7,1.05
sendmmsg,50,7.6,4.69
";

    /// A file in the temp directory, removed when dropped.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn parses_series_in_order_and_sorts_points() {
        let s = parse_csv(TWO_SERIES).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "no batching");
        assert_eq!(s[1].name, "sendmmsg");
        let players: Vec<f64> = s[1].points.iter().map(|p| p.players).collect();
        assert_eq!(players, [10.0, 50.0, 200.0]);
        assert_eq!(s[1].points[0].cpu_us_per_pkt, Some(11.7));
        assert_eq!(s[1].points[0].p99_ms, Some(1.05));
    }

    #[test]
    fn quoted_labels_with_commas_and_empty_fields() {
        let s = parse_csv(&format!("{HEADER}\n\"GSO, 64 segs\",200,4.0,\n")).unwrap();
        assert_eq!(s[0].name, "GSO, 64 segs");
        assert_eq!(s[0].points[0].p99_ms, None);
    }

    #[test]
    fn malformed_line_names_the_line() {
        let csv = "series,players,cpu_us_per_pkt,p99_ms\nsendmmsg,10,11.7,1.05\n\nsendmmsg,fifty,7.6,4.69\n";
        let err = format!("{:#}", parse_csv(csv).unwrap_err());
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("players"), "{err}");
        let err = format!(
            "{:#}",
            parse_csv(&format!("{HEADER}\nsendmmsg,10\n")).unwrap_err()
        );
        assert!(err.contains("line 2") && err.contains("4 fields"), "{err}");
        let err = format!("{:#}", parse_csv("players,cpu\n").unwrap_err());
        assert!(err.contains("line 1") && err.contains("header"), "{err}");
        assert!(parse_csv(&format!("{HEADER}\n")).is_err());
    }

    #[test]
    fn renders_png_of_requested_size() {
        let series = parse_csv(TWO_SERIES).unwrap();
        let out = TempFile(std::env::temp_dir().join(format!(
            "sfu-chart-test-{}-{:?}.png",
            std::process::id(),
            std::thread::current().id()
        )));
        render(&series, &out.0, (1200, 500)).unwrap();
        let png = std::fs::read(&out.0).unwrap();
        assert!(png.len() > 8 * 1024, "only {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // The first chunk is IHDR: width and height as big-endian u32.
        assert_eq!(&png[12..16], b"IHDR");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (1200, 500));
    }

    #[test]
    fn nice_axis_ends() {
        assert_eq!(nice_ceil(210.0), 250.0);
        assert_eq!(nice_ceil(100.0), 100.0);
        assert_eq!(nice_ceil(3.45), 4.0);
        assert_eq!(nice_ceil(18.975), 20.0);
        assert_eq!(nice_ceil(14.2485), 15.0);
        assert_eq!(nice_ceil(0.0), 1.0);
    }
}
