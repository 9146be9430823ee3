//! Charts drawn on the server as SVG: no script, no external resource, nothing a
//! Content-Security-Policy has to allow. Colours are presentation attributes and
//! classes of `console.css`, never inline styles.

use maud::{html, Markup};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// A series of a line chart: its name, class (colour) and one value per label
/// (`None`: no value that month).
#[derive(Debug)]
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'static str,
    pub values: Vec<Option<f64>>,
}

/// A line chart over `labels` (months) with `y_max` at the top; `format` writes the
/// axis values.
pub fn line(
    id: &str,
    labels: &[String],
    series: &[Series<'_>],
    y_max: f64,
    format: fn(f64) -> String,
) -> Markup {
    let plot_w = WIDTH - LEFT - 12.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = labels.len().max(1);
    let step = if n > 1 { plot_w / count(n - 1) } else { 0.0 };
    let x = |i: usize| LEFT + count(i) * step + if n == 1 { plot_w / 2.0 } else { 0.0 };
    let y = |v: f64| TOP + plot_h - (v / y_max).clamp(0.0, 1.0) * plot_h;
    html! {
        figure.chart {
            svg id=(id) role="img" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) {
                @for tick in 0..=4u32 {
                    @let v = y_max * f64::from(tick) / 4.0;
                    line.grid x1=(LEFT) x2=(WIDTH - 12.0) y1=(y(v)) y2=(y(v)) {}
                    text.axis x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" { (format(v)) }
                }
                @for (i, label) in labels.iter().enumerate() {
                    text.axis x=(x(i)) y=(HEIGHT - 8.0) text-anchor="middle" { (label) }
                }
                @for s in series {
                    polyline class=(format!("line {}", s.class)) fill="none" points=(points(&s.values, x, y)) {}
                    @for (i, v) in s.values.iter().enumerate() {
                        @if let Some(v) = v {
                            circle class=(format!("dot {}", s.class)) cx=(x(i)) cy=(y(*v)) r="3" {
                                title { (s.name) " " (labels.get(i).map_or("", String::as_str)) ": " (format(*v)) }
                            }
                        }
                    }
                }
            }
            figcaption {
                @for s in series { span class=(format!("key {}", s.class)) { (s.name) } }
            }
        }
    }
}

/// Horizontal bars, one per `(label, value)`, scaled to `max`.
pub fn bars(id: &str, rows: &[(String, f64)], max: f64, format: fn(f64) -> String) -> Markup {
    let row_h = 22.0;
    let label_w = 140.0;
    let bar_w = WIDTH - label_w - 70.0;
    let height = (count(rows.len()) * row_h).max(row_h) + 4.0;
    let max = if max > 0.0 { max } else { 1.0 };
    html! {
        figure.chart {
            svg id=(id) role="img" viewBox=(format!("0 0 {WIDTH} {height}")) width=(WIDTH) height=(height) {
                @for (i, (label, value)) in rows.iter().enumerate() {
                    @let top = count(i) * row_h + 2.0;
                    text.axis x=(label_w - 6.0) y=(top + 15.0) text-anchor="end" { (label) }
                    rect.bar x=(label_w) y=(top + 3.0) height=(row_h - 6.0)
                        width=((value / max).clamp(0.0, 1.0) * bar_w) {
                        title { (label) ": " (format(*value)) }
                    }
                    text.value x=(label_w + (value / max).clamp(0.0, 1.0) * bar_w + 6.0) y=(top + 15.0) { (format(*value)) }
                }
            }
        }
    }
}

fn points(values: &[Option<f64>], x: impl Fn(usize) -> f64, y: impl Fn(f64) -> f64) -> String {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A count as a float for drawing (exact below 2^52, far beyond any chart's rows).
fn count(n: usize) -> f64 {
    u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
}
