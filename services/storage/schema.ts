/**
 * The storage schema, versioned. `migrateSchema` creates it on first start and records its
 * version in `schema_version`; a later version adds its steps to MIGRATIONS.
 *
 * Times of fills and equity points are DOUBLE epoch milliseconds (UTC) so that they round-trip
 * Float64Array values bit for bit. `params`, `options` and `metrics` of a backtest are JSON text
 * of flat records of numbers.
 */
import { BacktestrError } from '../../protocol/errors';
import type { StorageDatabase } from './database';

const SCHEMA_V1 = [
  `CREATE TABLE schema_version (version INTEGER NOT NULL)`,
  `CREATE TABLE symbols (
    symbol VARCHAR PRIMARY KEY,
    bars INTEGER NOT NULL,
    first_date DATE NOT NULL,
    last_date DATE NOT NULL,
    imported_at TIMESTAMP NOT NULL
  )`,
  `CREATE TABLE bars (
    symbol VARCHAR NOT NULL,
    date DATE NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    PRIMARY KEY (symbol, date)
  )`,
  `CREATE SEQUENCE backtest_ids START 1`,
  `CREATE TABLE backtests (
    id BIGINT PRIMARY KEY DEFAULT nextval('backtest_ids'),
    created_at TIMESTAMP NOT NULL,
    strategy_file VARCHAR NOT NULL,
    strategy_sha256 VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    params_json VARCHAR NOT NULL,
    options_json VARCHAR NOT NULL,
    metrics_json VARCHAR NOT NULL,
    fill_count INTEGER NOT NULL,
    equity_count INTEGER NOT NULL
  )`,
  `CREATE TABLE backtest_trades (
    backtest_id BIGINT NOT NULL,
    fill_index INTEGER NOT NULL,
    bar INTEGER NOT NULL,
    time DOUBLE NOT NULL,
    side VARCHAR NOT NULL CHECK (side IN ('buy', 'sell')),
    qty DOUBLE NOT NULL,
    price DOUBLE NOT NULL,
    commission DOUBLE NOT NULL,
    PRIMARY KEY (backtest_id, fill_index)
  )`,
  `CREATE TABLE backtest_equity (
    backtest_id BIGINT NOT NULL,
    point_index INTEGER NOT NULL,
    time DOUBLE NOT NULL,
    equity DOUBLE NOT NULL,
    PRIMARY KEY (backtest_id, point_index)
  )`,
];

/** Statements that bring a database from version `index` to `index + 1`; index 0 creates it. */
const MIGRATIONS: readonly (readonly string[])[] = [SCHEMA_V1];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Creates or upgrades the schema in one transaction and returns the version now on disk. */
export async function migrateSchema(database: StorageDatabase): Promise<number> {
  return database.run(
    'migrateSchema',
    async (session) => {
      const [{ count }] = await session.selectRows(
        `SELECT count(*) AS count FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'schema_version'`,
      );
      let version = 0;
      if (count !== 0) {
        const [row] = await session.selectRows(`SELECT max(version) AS version FROM schema_version`);
        version = Number(row.version);
      }

      if (version > SCHEMA_VERSION) {
        throw new BacktestrError(
          'E_STORAGE',
          `storage database has schema version ${version}, newer than version ${SCHEMA_VERSION} of this build; update BackTestr`,
          { version, supported: SCHEMA_VERSION },
        );
      }

      for (let step = version; step < SCHEMA_VERSION; step++) {
        for (const statement of MIGRATIONS[step]) await session.execute(statement);
      }
      if (version === 0) {
        await session.execute(`INSERT INTO schema_version VALUES (?)`, [SCHEMA_VERSION]);
      } else if (version < SCHEMA_VERSION) {
        await session.execute(`UPDATE schema_version SET version = ?`, [SCHEMA_VERSION]);
      }
      return SCHEMA_VERSION;
    },
    { transaction: true },
  );
}
