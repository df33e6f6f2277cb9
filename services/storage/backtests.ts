/**
 * Named queries on saved backtests: one row in `backtests`, the fills in `backtest_trades` and
 * the equity curve in `backtest_equity`, all written in one transaction.
 */
import type { Fill } from '../../protocol/bars';
import { BacktestrError } from '../../protocol/errors';
import type { Session, SqlRow, StorageDatabase } from './database';
import type { SaveBacktestRecord } from './store-records';

export type NumberRecord = Record<string, number>;

export type { Fill };

export interface NewBacktest {
  strategyFile: string;
  strategySha256: string;
  symbol: string;
  params: NumberRecord;
  options: NumberRecord;
  metrics: NumberRecord;
  fills: Fill[];
  /** Equity after each bar; `time[i]` is the epoch milliseconds of `equity[i]`. */
  equity: Float64Array;
  time: Float64Array;
}

export interface BacktestSummary {
  id: number;
  /** Epoch milliseconds (UTC) at which the backtest was saved. */
  createdAt: number;
  strategyFile: string;
  strategySha256: string;
  symbol: string;
  params: NumberRecord;
  metrics: NumberRecord;
}

export interface BacktestRecord extends BacktestSummary {
  options: NumberRecord;
  fills: Fill[];
  equity: Float64Array;
  time: Float64Array;
}

/** Stores `backtest` with its fills and equity curve in one transaction and returns its new id. */
export async function saveBacktest(database: StorageDatabase, backtest: NewBacktest): Promise<{ id: number }> {
  const createdAt = Date.now();
  return (await database.write('saveBacktest', async (session) => {
    // Ids come from max(id) + 1 instead of a sequence, so that replaying a journal record,
    // which carries its id, cannot leave a sequence behind the ids in the table.
    const [row] = await session.selectRows(`SELECT coalesce(max(id), 0) + 1 AS id FROM backtests`);
    const record: SaveBacktestRecord = { type: 'saveBacktest', id: Number(row.id), createdAt, ...backtest };
    return record;
  })) as { id: number };
}

/** Applies a save record: the backtest row, its fills and its equity curve. */
export async function applySaveBacktest(session: Session, record: SaveBacktestRecord): Promise<{ id: number }> {
  const id = record.id;
  await session.execute(
    `INSERT INTO backtests (id, created_at, strategy_file, strategy_sha256, symbol,
                            params_json, options_json, metrics_json, fill_count, equity_count)
     VALUES (?, epoch_ms(?::BIGINT), ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      id,
      record.createdAt,
      record.strategyFile,
      record.strategySha256,
      record.symbol,
      JSON.stringify(record.params),
      JSON.stringify(record.options),
      JSON.stringify(record.metrics),
      record.fills.length,
      record.equity.length,
    ],
  );
  const fills = record.fills;

  await session.append(
    'backtest_trades',
    [
      { type: 'bigint', at: () => id },
      { type: 'integer', at: (index) => index },
      { type: 'integer', at: (index) => fills[index].bar },
      { type: 'double', at: (index) => fills[index].time },
      { type: 'varchar', at: (index) => fills[index].side },
      { type: 'double', at: (index) => fills[index].qty },
      { type: 'double', at: (index) => fills[index].price },
      { type: 'double', at: (index) => fills[index].commission },
    ],
    fills.length,
  );
  await session.append(
    'backtest_equity',
    [
      { type: 'bigint', at: () => id },
      { type: 'integer', at: (index) => index },
      { type: 'double', at: (index) => record.time[index] },
      { type: 'double', at: (index) => record.equity[index] },
    ],
    record.equity.length,
  );
  return { id };
}

/** Returns the `limit` most recent backtests, newest first, without fills or equity. */
export async function listBacktests(database: StorageDatabase, limit: number): Promise<BacktestSummary[]> {
  return database.run('listBacktests', async (session) => {
    const rows = await session.selectRows(`${SELECT_SUMMARY} ORDER BY id DESC LIMIT ?`, [limit]);
    return rows.map(toSummary);
  });
}

/** Returns one backtest with its fills and equity curve, or throws E_NOT_FOUND. */
export async function getBacktest(database: StorageDatabase, id: number): Promise<BacktestRecord> {
  // Operations run one at a time, so the three reads see one state without a transaction.
  return database.run(
    'getBacktest',
    async (session) => {
      const rows = await session.selectRows(`${SELECT_SUMMARY} WHERE id = ?`, [id]);
      if (rows.length === 0) throw new BacktestrError('E_NOT_FOUND', `no backtest with id ${id}`, { id });
      const summary = toSummary(rows[0]);
      const options = parseNumberRecord(rows[0].options_json);

      // Every fill column is read as DOUBLE, because column-wise reads are far faster than row
      // objects. The side travels as 1 for buy and 0 for sell.
      const [bar, time, isBuy, qty, price, commission] = await session.selectDoubleColumns(
        `SELECT bar::DOUBLE, time, (side = 'buy')::INTEGER::DOUBLE, qty, price, commission
         FROM backtest_trades WHERE backtest_id = ? ORDER BY fill_index`,
        [id],
      );
      const fills: Fill[] = Array.from(bar, (_, i) => ({
        bar: bar[i],
        time: time[i],
        side: isBuy[i] === 1 ? 'buy' : 'sell',
        qty: qty[i],
        price: price[i],
        commission: commission[i],
      }));

      const [equityTime, equity] = await session.selectDoubleColumns(
        `SELECT time, equity FROM backtest_equity WHERE backtest_id = ? ORDER BY point_index`,
        [id],
      );
      return { ...summary, options, fills, equity, time: equityTime };
    },
  );
}

const SELECT_SUMMARY = `
  SELECT id, epoch_ms(created_at) AS created_at, strategy_file, strategy_sha256, symbol,
         params_json, options_json, metrics_json
  FROM backtests`;

function toSummary(row: SqlRow): BacktestSummary {
  return {
    id: Number(row.id),
    createdAt: Number(row.created_at),
    strategyFile: String(row.strategy_file),
    strategySha256: String(row.strategy_sha256),
    symbol: String(row.symbol),
    params: parseNumberRecord(row.params_json),
    metrics: parseNumberRecord(row.metrics_json),
  };
}

/** Parses JSON text that saveBacktest wrote from a checked record of finite numbers. */
function parseNumberRecord(json: unknown): NumberRecord {
  const value: unknown = JSON.parse(String(json));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BacktestrError('E_STORAGE', 'stored backtest record is not a JSON object');
  }
  const record: NumberRecord = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'number') throw new BacktestrError('E_STORAGE', 'stored backtest record contains a value that is not a number');
    record[key] = item;
  }
  return record;
}
