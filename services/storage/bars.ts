/**
 * Named queries on daily bars. importBars replaces a symbol's bars as a whole: it deletes the old
 * bars and appends the new ones in one transaction. A reader therefore sees either the old series
 * or the new one, never a mix, and a failed import leaves the old series in place.
 */
import type { BarColumns as TransferredBars } from '../../protocol/bars';
import { BacktestrError } from '../../protocol/errors';
import type { BarColumns } from './bars-csv';
import type { Session, StorageDatabase } from './database';
import { formatIsoDate } from './dates';
import type { ImportBarsRecord } from './store-records';

/** One imported symbol; `first` and `last` are YYYY-MM-DD. */
export interface SymbolSummary {
  symbol: string;
  bars: number;
  first: string;
  last: string;
}

/** The bars of one symbol, column by column. */
export interface BarSeries extends TransferredBars {
  symbol: string;
}

/** Replaces all bars of `symbol` with `bars` atomically and returns the new summary. */
export async function replaceBars(database: StorageDatabase, symbol: string, bars: BarColumns): Promise<SymbolSummary> {
  const record: ImportBarsRecord = {
    type: 'importBars',
    symbol,
    importedAt: Date.now(),
    days: bars.days.subarray(0, bars.count),
    open: bars.open.subarray(0, bars.count),
    high: bars.high.subarray(0, bars.count),
    low: bars.low.subarray(0, bars.count),
    close: bars.close.subarray(0, bars.count),
    volume: bars.volume.subarray(0, bars.count),
  };
  return (await database.write('importBars', record)) as SymbolSummary;
}

/** Applies an import record: deletes the symbol's old bars and appends the new ones. */
export async function applyImportBars(session: Session, record: ImportBarsRecord): Promise<SymbolSummary> {
  const count = record.days.length;
  if (count === 0) throw new BacktestrError('E_INVALID_PARAMS', `no bars to import for symbol ${record.symbol}`);
  const summary: SymbolSummary = {
    symbol: record.symbol,
    bars: count,
    first: formatIsoDate(record.days[0]),
    last: formatIsoDate(record.days[count - 1]),
  };

  await session.execute(`DELETE FROM bars WHERE symbol = ?`, [record.symbol]);
  await session.append(
    'bars',
    [
      { type: 'varchar', at: () => record.symbol },
      { type: 'date', at: (row) => record.days[row] },
      { type: 'double', at: (row) => record.open[row] },
      { type: 'double', at: (row) => record.high[row] },
      { type: 'double', at: (row) => record.low[row] },
      { type: 'double', at: (row) => record.close[row] },
      { type: 'double', at: (row) => record.volume[row] },
    ],
    count,
  );
  await session.execute(
    `INSERT OR REPLACE INTO symbols (symbol, bars, first_date, last_date, imported_at)
     VALUES (?, ?, ?::DATE, ?::DATE, epoch_ms(?::BIGINT))`,
    [record.symbol, summary.bars, summary.first, summary.last, record.importedAt],
  );
  return summary;
}

/**
 * Returns the bars of `symbol` with dates in [from, to] (both YYYY-MM-DD and inclusive, each
 * optional), in date order. Throws E_NOT_FOUND for a symbol that was never imported. A range
 * without bars returns empty arrays.
 */
export async function queryBars(database: StorageDatabase, symbol: string, from?: string, to?: string): Promise<BarSeries> {
  // Only fixed SQL fragments are concatenated here; the dates travel as bound parameters.
  const conditions = ['symbol = ?'];
  const values: string[] = [symbol];
  if (from !== undefined) {
    conditions.push('date >= ?::DATE');
    values.push(from);
  }
  if (to !== undefined) {
    conditions.push('date <= ?::DATE');
    values.push(to);
  }

  return database.run('queryBars', async (session) => {
    await requireSymbol(session, symbol);
    const [time, open, high, low, close, volume] = await session.selectDoubleColumns(
      `SELECT epoch_ms(date)::DOUBLE, open, high, low, close, volume
       FROM bars WHERE ${conditions.join(' AND ')} ORDER BY date`,
      values,
    );
    return { symbol, time, open, high, low, close, volume };
  });
}

/** Returns every imported symbol with its bar count and date range, ordered by symbol. */
export async function listSymbols(database: StorageDatabase): Promise<SymbolSummary[]> {
  return database.run('listSymbols', async (session) => {
    const rows = await session.selectRows(
      `SELECT symbol, bars, CAST(first_date AS VARCHAR) AS first, CAST(last_date AS VARCHAR) AS last
       FROM symbols ORDER BY symbol`,
    );
    return rows.map((row) => ({
      symbol: String(row.symbol),
      bars: Number(row.bars),
      first: String(row.first),
      last: String(row.last),
    }));
  });
}

async function requireSymbol(session: Session, symbol: string): Promise<void> {
  const rows = await session.selectRows(`SELECT 1 AS found FROM symbols WHERE symbol = ?`, [symbol]);
  if (rows.length === 0) {
    throw new BacktestrError('E_NOT_FOUND', `no bars stored for symbol ${symbol}; import a CSV file first`, { symbol });
  }
}
