/** Plain-text tables for the CLI's human output. */

export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [line(cells[0]), line(widths.map((width) => '-'.repeat(width))), ...cells.slice(1).map(line)].join('\n');
}

const PERCENT_METRICS = new Set(['total_return', 'cagr', 'volatility', 'max_drawdown', 'exposure']);
const METRIC_ORDER = ['final_equity', 'total_return', 'cagr', 'volatility', 'sharpe', 'max_drawdown', 'fills', 'exposure'];

export function formatMetric(name: string, value: number): string {
  if (PERCENT_METRICS.has(name)) return `${(value * 100).toFixed(2)} %`;
  if (name === 'fills') return String(value);
  if (name === 'final_equity') return value.toFixed(2);
  return value.toFixed(4);
}

export function formatMetrics(metrics: Record<string, number>, bars: number): string {
  const names = [...METRIC_ORDER.filter((name) => name in metrics), ...Object.keys(metrics).filter((name) => !METRIC_ORDER.includes(name))];
  const rows: (string | number)[][] = [['bars', String(bars)], ...names.map((name) => [name, formatMetric(name, metrics[name])])];
  return formatTable(['metric', 'value'], rows);
}

export function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}
