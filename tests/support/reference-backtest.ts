/**
 * An independent implementation of the backtest semantics, written from the specification and
 * sharing no code with the sandbox, to check the demo's metrics:
 * - an order placed while handling bar t fills at bar t+1's open (an order on the last bar never fills);
 * - equity is marked at every bar's close; starting cash 100,000, commission 0;
 * - CAGR over calendar days / 365.25; volatility and Sharpe from daily close-to-close equity
 *   returns with the sample standard deviation, times sqrt(252), risk-free 0;
 * - maximum drawdown of the close-marked equity; exposure is the share of bars that end holding a position.
 */
import fs from 'node:fs';

export interface CsvBars {
  time: number[];
  open: number[];
  close: number[];
}

export function readSp500(file: string): CsvBars {
  const lines = fs.readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const header = lines[0].split(',');
  const column = (name: string) => header.indexOf(name);
  const bars: CsvBars = { time: [], open: [], close: [] };
  for (const line of lines.slice(1)) {
    const fields = line.split(',');
    bars.time.push(Date.parse(`${fields[column('date')]}T00:00:00Z`));
    bars.open.push(Number(fields[column('open')]));
    bars.close.push(Number(fields[column('close')]));
  }
  return bars;
}

export interface ReferenceMetrics {
  final_equity: number;
  total_return: number;
  cagr: number;
  volatility: number;
  sharpe: number;
  max_drawdown: number;
  fills: number;
  exposure: number;
}

/** Long with all cash while SMA(fast) > SMA(slow) of closes up to and including bar t; flat otherwise. */
export function referenceSmaCrossover(bars: CsvBars, fast: number, slow: number, initialCash = 100_000): ReferenceMetrics {
  const n = bars.close.length;
  let cash = initialCash;
  let quantity = 0;
  let fills = 0;
  let pending: 'buy' | 'sell' | undefined;
  const equity: number[] = [];
  let barsHolding = 0;

  const mean = (end: number, length: number) => {
    let sum = 0;
    for (let i = end - length + 1; i <= end; i++) sum += bars.close[i];
    return sum / length;
  };

  for (let t = 0; t < n; t++) {
    if (pending === 'buy') {
      quantity = cash / bars.open[t];
      cash = 0;
      fills++;
    } else if (pending === 'sell') {
      cash += quantity * bars.open[t];
      quantity = 0;
      fills++;
    }
    pending = undefined;

    if (t >= slow - 1) {
      const wantLong = mean(t, fast) > mean(t, slow);
      if (wantLong && quantity === 0) pending = 'buy';
      if (!wantLong && quantity > 0) pending = 'sell';
    }
    equity.push(cash + quantity * bars.close[t]);
    if (quantity !== 0) barsHolding++;
  }

  const returns: number[] = [];
  for (let t = 1; t < n; t++) returns.push(equity[t] / equity[t - 1] - 1);
  const average = returns.reduce((sum, value) => sum + value, 0) / returns.length;
  const variance = returns.reduce((sum, value) => sum + (value - average) ** 2, 0) / (returns.length - 1);
  const deviation = Math.sqrt(variance);

  let peak = -Infinity;
  let maxDrawdown = 0;
  for (const value of equity) {
    peak = Math.max(peak, value);
    maxDrawdown = Math.max(maxDrawdown, 1 - value / peak);
  }

  const finalEquity = equity[n - 1];
  const days = (bars.time[n - 1] - bars.time[0]) / 86_400_000;
  return {
    final_equity: finalEquity,
    total_return: finalEquity / initialCash - 1,
    cagr: (finalEquity / initialCash) ** (365.25 / days) - 1,
    volatility: deviation * Math.sqrt(252),
    sharpe: deviation === 0 ? 0 : (average / deviation) * Math.sqrt(252),
    max_drawdown: maxDrawdown,
    fills,
    exposure: barsHolding / n,
  };
}
