/**
 * The storage service: the profile's keyring and secrets vault, market data (daily bars imported
 * from CSV) and saved backtests, kept in an embedded DuckDB database in the service's state
 * directory. The keyring is the profile's one password verifier.
 *
 * The store opens at unlock and closes when the kernel locks storage, after the last client
 * session ended. While locked, every method but createKeyring, unlock, lock and status fails with
 * E_SESSION_INVALID. Only the kernel calls those four and changePassword; clients reach the other
 * methods in the unlocked phase.
 *
 *   createKeyring {password}          -> {created: true, kdf}           E_PROFILE_EXISTS, E_WEAK_PASSWORD
 *   unlock {password}                 -> {unlocked: true, alreadyUnlocked} E_WRONG_PASSWORD, E_INTEGRITY
 *   lock {reason}                     -> {locked: true, wasUnlocked}
 *   status {}                         -> {keyringExists, unlocked, kdf (null while locked)}
 *   changePassword {current, next}    -> {changed: true}                E_WRONG_PASSWORD, E_WEAK_PASSWORD
 *   rekey {purpose?}                  -> {rekeyed: [{purpose, generation}]}
 *   putSecret {name, value}, getSecret {name} -> {name, value}, listSecrets {} -> {names},
 *   deleteSecret {name}
 *
 * Callers never send SQL. Each data method below is one named, parameterised query, and its
 * parameter schema is checked by the runtime before `handle` runs. Passwords and secret values
 * are never logged or put into an error or a security event.
 */
import { BacktestrError } from '../../protocol/errors';
import { s } from '../../protocol/schema';
import type { MethodHandler, ServiceContext, ServiceDefinition } from '../runtime/types';
import { getBacktest, listBacktests, saveBacktest, type Fill, type NumberRecord } from './backtests';
import { listSymbols, queryBars, replaceBars } from './bars';
import { MAX_CSV_BYTES, parseBarsCsv } from './bars-csv';
import type { StorageDatabase } from './database';
import { parseIsoDate } from './dates';
import { enforcePrivateModes, preparePrivateDir } from './permissions';
import { ProfileKeys, type ProfileKeysOptions } from './profile-keys';
import { migrateSchema } from './schema';
import { reportIntegrityFailure } from './integrity-events';
import { closeStore, openStore } from './store';
import { profileMethods } from './profile-methods';

/** Ticker symbols such as AAPL, BRK.B, ^GSPC or EURUSD-1. */
export const SYMBOL_PATTERN = /^[A-Za-z0-9._^-]{1,32}$/;
/** A file name without a directory part, control characters, '.' or '..'. */
const STRATEGY_FILE_PATTERN = /^(?!\.\.?$)[^/\\\u0000-\u001f\u007f]{1,255}$/;
const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;
const RECORD_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Maximum fills of one backtest. */
export const MAX_FILLS = 100_000;
/** Maximum equity points of one backtest: one per bar, about 252 per year of daily bars. */
export const MAX_EQUITY_POINTS = 5_000_000;
const MAX_RECORD_KEYS = 64;
export const DEFAULT_BACKTEST_LIST_LIMIT = 50;
export const MAX_BACKTEST_LIST_LIMIT = 1_000;

const SYMBOL = s.string(32, SYMBOL_PATTERN);
const ISO_DATE = s.string(10, /^\d{4}-\d{2}-\d{2}$/);
const NUMBER_RECORD = s.record(s.number(), MAX_RECORD_KEYS, RECORD_KEY_PATTERN);
const FILL = s.object({
  bar: s.integer(0, 2 ** 31 - 1),
  time: s.number(),
  side: s.literal('buy', 'sell'),
  qty: s.number({ min: 0 }),
  price: s.number(),
  commission: s.number({ min: 0 }),
});

/**
 * Builds a storage service with its own keyring and store state; each call is an independent
 * instance. The runtime builds one per process, and tests build one per temporary directory.
 */
export function createStorageService(options: ProfileKeysOptions = {}): ServiceDefinition {
  const keys = new ProfileKeys(options, openReadyStore);
  const opened = (): StorageDatabase => keys.database();

  const importBars: MethodHandler<{ symbol: string; csv: Uint8Array }> = {
    params: s.object({ symbol: SYMBOL, csv: s.bytes(MAX_CSV_BYTES) }),
    async handle({ symbol, csv }, ctx) {
      // NOTE: parsing runs on this service's event loop, about 3 s per 1,000,000 rows (measured
      // on a busy 2-core machine), so a file near MAX_CSV_BYTES stalls storage for seconds. A worker would not.
      const bars = parseBarsCsv(csv);
      const summary = await replaceBars(opened(), symbol, bars);
      // The symbol is user data, so the log line carries only the count.
      ctx.log.info({ bars: summary.bars }, 'bars imported');
      return summary;
    },
  };

  const queryBarsMethod: MethodHandler<{ symbol: string; from?: string; to?: string }> = {
    params: s.object({ symbol: SYMBOL, from: ISO_DATE, to: ISO_DATE }, ['from', 'to']),
    async handle({ symbol, from, to }) {
      const fromDay = from === undefined ? undefined : requireCalendarDate(from, 'params.from');
      const toDay = to === undefined ? undefined : requireCalendarDate(to, 'params.to');
      if (fromDay !== undefined && toDay !== undefined && fromDay > toDay) {
        throw new BacktestrError('E_INVALID_PARAMS', `invalid range: from ${from} is after to ${to}`, { path: 'params.from' });
      }
      return queryBars(opened(), symbol, from, to);
    },
  };

  const listSymbolsMethod: MethodHandler<Record<string, never>> = {
    params: s.object({}),
    async handle() {
      return listSymbols(opened());
    },
  };

  const saveBacktestMethod: MethodHandler<SaveBacktestParams> = {
    params: s.object(
      {
        strategyFile: s.string(255, STRATEGY_FILE_PATTERN),
        strategySha256: s.string(64, SHA256_HEX_PATTERN),
        symbol: SYMBOL,
        params: NUMBER_RECORD,
        options: NUMBER_RECORD,
        metrics: NUMBER_RECORD,
        fills: s.array(FILL, MAX_FILLS),
        equity: s.f64array(MAX_EQUITY_POINTS),
        time: s.f64array(MAX_EQUITY_POINTS),
      },
      ['options'],
    ),
    async handle(params, ctx) {
      if (params.equity.length !== params.time.length) {
        throw new BacktestrError(
          'E_INVALID_PARAMS',
          `invalid value at params.time: expected ${params.equity.length} numbers, one per equity point`,
          { path: 'params.time' },
        );
      }
      requireFinite(params.equity, 'params.equity');
      requireFinite(params.time, 'params.time');

      const result = await saveBacktest(opened(), { ...params, options: params.options ?? {} });
      ctx.log.info({ id: result.id, fills: params.fills.length }, 'backtest saved');
      return result;
    },
  };

  const listBacktestsMethod: MethodHandler<{ limit?: number }> = {
    params: s.object({ limit: s.integer(1, MAX_BACKTEST_LIST_LIMIT) }, ['limit']),
    async handle({ limit }) {
      return listBacktests(opened(), limit ?? DEFAULT_BACKTEST_LIST_LIMIT);
    },
  };

  const getBacktestMethod: MethodHandler<{ id: number }> = {
    params: s.object({ id: s.integer(1, Number.MAX_SAFE_INTEGER) }),
    async handle({ id }) {
      return getBacktest(opened(), id);
    },
  };

  return {
    name: 'storage',
    methods: {
      ...profileMethods(keys),
      importBars,
      queryBars: queryBarsMethod,
      listSymbols: listSymbolsMethod,
      saveBacktest: saveBacktestMethod,
      listBacktests: listBacktestsMethod,
      getBacktest: getBacktestMethod,
    },

    async start(ctx: ServiceContext) {
      // Every file DuckDB creates from now on (database, WAL, spill files) is 0600 and every
      // directory 0700. This is process-wide, which is right for the storage process.
      process.umask(0o077);
      await preparePrivateDir(ctx.stateDir);
      try {
        await checkModes(ctx);
      } catch (error) {
        // A planted link or special file must not keep the service (and so the kernel) from
        // starting: it is reported now, and every unlock refuses it until it is removed.
        if (!(error instanceof BacktestrError && error.code === 'E_INTEGRITY')) throw error;
        reportIntegrityFailure(ctx, error);
      }
      // The store stays closed until the kernel unlocks the profile.
      ctx.log.info('storage started, locked');
    },

    async stop(ctx: ServiceContext) {
      await keys.lock(ctx, 'service stopping');
      try {
        await checkModes(ctx);
      } catch (error) {
        if (!(error instanceof BacktestrError && error.code === 'E_INTEGRITY')) throw error;
        reportIntegrityFailure(ctx, error);
      }
      ctx.log.info('storage stopped');
    },
  };
}

/**
 * Opens the store for a freshly unlocked keyring and readies it. Modes are checked before DuckDB
 * opens as well, because DuckDB would follow a symbolic link planted in place of its
 * write-ahead log.
 */
async function openReadyStore(ctx: ServiceContext, keyring: Parameters<typeof openStore>[1]): Promise<StorageDatabase> {
  try {
    await checkModes(ctx);
  } catch (error) {
    if (error instanceof BacktestrError && error.code === 'E_INTEGRITY') reportIntegrityFailure(ctx, error);
    throw error;
  }
  const db = await openStore(ctx, keyring);
  try {
    const schemaVersion = await migrateSchema(db);
    await checkModes(ctx);
    ctx.log.info({ schemaVersion }, 'store opened');
    return db;
  } catch (error) {
    await closeStore(db);
    throw error;
  }
}

interface SaveBacktestParams {
  strategyFile: string;
  strategySha256: string;
  symbol: string;
  params: NumberRecord;
  options?: NumberRecord;
  metrics: NumberRecord;
  fills: Fill[];
  equity: Float64Array;
  time: Float64Array;
}

/** Repairs loose modes in the state directory and reports a repair, which nothing should cause. */
async function checkModes(ctx: ServiceContext): Promise<void> {
  const repaired = await enforcePrivateModes(ctx.stateDir, ctx.log);
  if (repaired > 0) {
    ctx.securityEvent({ type: 'storage.modes_repaired', severity: 'warning', details: { entries: repaired } });
  }
}

function requireCalendarDate(text: string, path: string): number {
  const day = parseIsoDate(text);
  if (day === undefined) {
    throw new BacktestrError('E_INVALID_PARAMS', `invalid value at ${path}: expected a calendar date in YYYY-MM-DD form`, { path });
  }
  return day;
}

function requireFinite(values: Float64Array, path: string): void {
  const index = values.findIndex((value) => !Number.isFinite(value));
  if (index !== -1) {
    throw new BacktestrError('E_INVALID_PARAMS', `invalid value at ${path}[${index}]: expected a finite number`, { path: `${path}[${index}]` });
  }
}
