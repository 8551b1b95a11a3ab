//! Charts drawn on the server as inline SVG: no script, no library, nothing for the CSP to
//! allow. Colours come from the stylesheet (classes `s0`, `s1`, `s2`), so charts follow the
//! light and dark themes.
//!
//! Every text in a chart is made here from numbers and fixed words; nothing a user typed ends
//! up in the markup.

use std::fmt::Write;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Bars; several bar series stack.
    Bar,
    /// A line through each bucket's middle; `None` values leave a gap.
    Line,
}

/// One series: a value per bucket.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the legend.
    pub name: &'static str,
    /// Bars or a line.
    pub mark: Mark,
    /// A value per bucket (`None`: nothing to draw there).
    pub values: Vec<Option<f64>>,
}

/// A chart's size and labels.
pub struct Frame<'a> {
    /// The accessible name (the chart's `<title>`).
    pub title: &'a str,
    /// Unit written after the axis values (`""`, `" ms"`, `" %"`).
    pub unit: &'a str,
    /// Labels under the first, middle and last bucket.
    pub x_labels: [String; 3],
    /// A fixed top of the scale (`Some(100.0)` for percentages); otherwise the data's.
    pub y_max: Option<f64>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 22.0;

/// A round number at or above `v`, for the top of the scale (1, 2 or 5 times a power of ten).
pub fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

/// An axis value, short: `1200` → `1.2k`.
fn short(v: f64) -> String {
    match v {
        v if v >= 1_000_000.0 => format!("{:.1}M", v / 1_000_000.0).replace(".0M", "M"),
        v if v >= 1_000.0 => format!("{:.1}k", v / 1_000.0).replace(".0k", "k"),
        v if v.fract() == 0.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

/// The chart as an `<svg>` element.
pub fn render(frame: &Frame<'_>, series: &[Series]) -> String {
    let buckets = series.iter().map(|s| s.values.len()).max().unwrap_or(0).max(1);
    // The scale: the tallest stack of bars or the highest point of a line.
    let stacked: Vec<f64> = (0..buckets)
        .map(|i| {
            series
                .iter()
                .filter(|s| s.mark == Mark::Bar)
                .filter_map(|s| s.values.get(i).copied().flatten())
                .sum()
        })
        .collect();
    let peak = series
        .iter()
        .filter(|s| s.mark == Mark::Line)
        .flat_map(|s| s.values.iter().flatten().copied())
        .chain(stacked.iter().copied())
        .fold(0.0, f64::max);
    let top = frame.y_max.unwrap_or_else(|| nice_ceiling(peak));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let step = plot_w / buckets as f64;
    let y = |v: f64| TOP + plot_h - (v.clamp(0.0, top) / top) * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        frame.title, frame.title
    );
    // Grid and scale: 0, half, top.
    for f in [0.0, 0.5, 1.0] {
        let v = top * f;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            short(v),
            frame.unit,
            y = y(v)
        );
    }
    // Bars, stacked in series order.
    let mut base = vec![0.0; buckets];
    for (n, s) in series.iter().enumerate().filter(|(_, s)| s.mark == Mark::Bar) {
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = v.filter(|v| *v > 0.0) else { continue };
            let (from, to) = (y(base[i]), y(base[i] + v));
            base[i] += v;
            let _ = write!(
                svg,
                r#"<rect class="s{n}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
                LEFT + i as f64 * step + step * 0.1,
                to,
                (step * 0.8).max(0.5),
                (from - to).max(0.5)
            );
        }
    }
    // Lines, broken where a bucket has no value.
    for (n, s) in series.iter().enumerate().filter(|(_, s)| s.mark == Mark::Line) {
        let mut points = Vec::new();
        let flush = |points: &mut Vec<String>, svg: &mut String| {
            if !points.is_empty() {
                let _ = write!(svg, r#"<polyline class="line s{n}" points="{}"/>"#, points.join(" "));
                points.clear();
            }
        };
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => points.push(format!("{:.1},{:.1}", LEFT + (i as f64 + 0.5) * step, y(*v))),
                None => flush(&mut points, &mut svg),
            }
        }
        flush(&mut points, &mut svg);
    }
    // Time labels and the legend.
    for (label, (x, anchor)) in
        frame
            .x_labels
            .iter()
            .zip([(LEFT, "start"), (LEFT + plot_w / 2.0, "middle"), (WIDTH - RIGHT, "end")])
    {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{x:.1}" y="{}" text-anchor="{anchor}">{label}</text>"#,
            HEIGHT - 6.0
        );
    }
    let mut x = LEFT;
    for (n, s) in series.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<rect class="s{n}" x="{x:.1}" y="6" width="10" height="10"/><text class="axis" x="{:.1}" y="15">{}</text>"#,
            x + 14.0,
            s.name
        );
        x += 24.0 + 8.0 * s.name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(450.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(short(1200.0), "1.2k");
        assert_eq!(short(2_000_000.0), "2M");
    }

    #[test]
    fn bars_stack_and_lines_break_at_gaps() {
        let frame = Frame {
            title: "Attempts",
            unit: "",
            x_labels: ["10:00".into(), "10:30".into(), "11:00".into()],
            y_max: None,
        };
        let svg = render(
            &frame,
            &[
                Series {
                    name: "succeeded",
                    mark: Mark::Bar,
                    values: vec![Some(6.0), Some(0.0), Some(2.0)],
                },
                Series {
                    name: "failed",
                    mark: Mark::Bar,
                    values: vec![Some(4.0), None, Some(0.0)],
                },
                Series {
                    name: "p95",
                    mark: Mark::Line,
                    values: vec![Some(1.0), None, Some(3.0)],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>Attempts</title>"));
        // The stack of 6 + 4 reaches the top of a scale of 10.
        assert!(svg.contains(r#">10</text>"#), "{svg}");
        assert_eq!(
            svg.matches(r#"<rect class="s0" x="#).count(),
            2 + 1,
            "two bars and the legend"
        );
        assert_eq!(svg.matches(r#"<rect class="s1" x="#).count(), 1 + 1);
        assert_eq!(svg.matches("<polyline").count(), 2, "the gap splits the line");
        assert!(svg.contains(">11:00</text>"));
    }
}
