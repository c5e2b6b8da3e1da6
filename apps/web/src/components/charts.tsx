/**
 * Small SVG charts drawn by hand (no chart library): a bar chart for counts over time and a line
 * chart for a few series. Each has a text alternative (an aria-label and a <title>), and a visually
 * hidden table would be the place for exact values, which pages show beside the chart anyway.
 */

export interface BarDatum {
  label: string;
  value: number;
}

export interface BarChartProps {
  data: readonly BarDatum[];
  /** Says what the chart shows, for screen readers ("Tasks finished per minute, last 15 minutes"). */
  title: string;
  height?: number;
  /** Formats a value for the tooltip and the axis. */
  format?: (value: number) => string;
}

/**
 * Vertical bars on a scale from 0 to the largest value; each bar's tooltip has its label and value.
 * The labels are HTML around the SVG, so they stay readable at any width.
 */
export function BarChart({ data, title, height = 140, format = String }: BarChartProps) {
  // A fixed coordinate width; the SVG stretches to its box (bars only, so nothing distorts visibly).
  const width = 600;
  const max = Math.max(1, ...data.map((d) => d.value));
  const gap = 3;
  const barWidth = width / Math.max(1, data.length) - gap;
  return (
    <figure className="chart-figure">
      <div className="chart-scale muted">{format(max)}</div>
      <svg
        className="chart chart-bars"
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        style={{ height }}
        role="img"
        aria-label={`${title}: ${data.map((d) => `${d.label} ${format(d.value)}`).join(', ')}`}
      >
        <title>{title}</title>
        {data.map((d, i) => {
          const h = (d.value / max) * (height - 2);
          return (
            <rect
              key={d.label}
              x={i * (barWidth + gap)}
              y={height - 1 - h}
              width={barWidth}
              height={h}
              className="chart-bar"
            >
              <title>{`${d.label}: ${format(d.value)}`}</title>
            </rect>
          );
        })}
        <line x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} className="chart-axis" />
      </svg>
      <figcaption className="chart-axis-labels muted">
        <span>{data[0]?.label}</span>
        <span>{data.at(-1)?.label}</span>
      </figcaption>
    </figure>
  );
}

export interface Series {
  name: string;
  points: readonly { x: number; y: number }[];
}

export interface LineChartProps {
  series: readonly Series[];
  title: string;
  height?: number;
  formatY?: (value: number) => string;
  formatX?: (value: number) => string;
}

const seriesClasses = ['chart-line-a', 'chart-line-b', 'chart-line-c', 'chart-line-d'];

/** Lines over a shared x range (e.g. time in ms), y from 0; a legend names each series (no colour-only meaning). */
export function LineChart({
  series,
  title,
  height = 160,
  formatY = String,
  formatX = String,
}: LineChartProps) {
  const width = 480;
  const pad = { left: 4, right: 4, top: 12, bottom: 18 };
  const all = series.flatMap((s) => s.points);
  const minX = Math.min(...all.map((p) => p.x));
  const maxX = Math.max(...all.map((p) => p.x));
  const maxY = Math.max(1e-9, ...all.map((p) => p.y));
  const sx = (x: number) =>
    pad.left + ((x - minX) / Math.max(1, maxX - minX)) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - (y / maxY) * (height - pad.top - pad.bottom);
  return (
    <figure className="chart-figure">
      <svg className="chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        <title>{title}</title>
        <line x1={pad.left} x2={width - pad.right} y1={sy(0)} y2={sy(0)} className="chart-axis" />
        {series.map((s, i) => (
          <g key={s.name} className={seriesClasses[i % seriesClasses.length]}>
            <polyline
              fill="none"
              points={s.points.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}
              className="chart-line"
            />
            {s.points.map((p) => (
              <circle key={p.x} cx={sx(p.x)} cy={sy(p.y)} r={2.5} className="chart-dot">
                <title>{`${s.name}: ${formatY(p.y)} at ${formatX(p.x)}`}</title>
              </circle>
            ))}
          </g>
        ))}
        <text x={pad.left} y={10} className="chart-label">
          {formatY(maxY)}
        </text>
        {all.length > 0 && (
          <>
            <text x={pad.left} y={height - 4} className="chart-label">
              {formatX(minX)}
            </text>
            <text x={width - pad.right} y={height - 4} className="chart-label" textAnchor="end">
              {formatX(maxX)}
            </text>
          </>
        )}
      </svg>
      <figcaption className="legend">
        {series.map((s, i) => (
          <span key={s.name} className="legend-item">
            {/* The swatch carries the series' colour (its currentColor); the name keeps the text's. */}
            <span className={`legend-swatch ${seriesClasses[i % seriesClasses.length]}`} aria-hidden="true" />{' '}
            {s.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
