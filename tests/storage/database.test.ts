import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DATABASE_FILE, StorageDatabase, runSqlForTests } from '../../services/storage/database';
import { migrateSchema } from '../../services/storage/schema';
import { Keyring } from '../../services/storage/crypto';
import { SealedStore } from '../../services/storage/sealed/sealed-store';
import { createStorageService } from '../../services/storage/service';
import { callMethod, captureError, createTestContext, readSp500Csv, removeProfile, startUnlocked, STORAGE_TEST_PASSWORD, type TestContext } from './helpers';

/** Builds a storage service whose keyrings use tiny Argon2id parameters. */
function createTestStorage() {
  return createStorageService({ weakKdfForTests: true });
}

/** Returns the permission bits of every entry below `dir`, by path relative to `dir`. */
function modesBelow(dir: string, prefix = ''): Record<string, number> {
  const modes: Record<string, number> = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    modes[prefix + name] = stats.mode & 0o777;
    if (stats.isDirectory()) Object.assign(modes, modesBelow(path, `${prefix}${name}/`));
  }
  return modes;
}

describe('storage database lockdown', () => {
  let dir: string;
  let logFile: string;
  let database: StorageDatabase;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'backtestr-lockdown-'));
    logFile = join(dir, 'test.log');
    mkdirSync(join(dir, 'db'), { mode: 0o700 });
    database = await StorageDatabase.open(join(dir, 'db'), pino(pino.destination({ dest: logFile, sync: true })));
  });

  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // A secret file of our own, outside the database directory, that DuckDB must not read.
  function writeOutsideFile(): string {
    const path = join(dir, 'outside.csv');
    writeFileSync(path, 'secret,value\n1,2\n');
    return path;
  }

  test.each([
    ['read_csv', (outside: string) => `SELECT * FROM read_csv('${outside}')`],
    ['read_csv of /etc/passwd', () => `SELECT * FROM read_csv('/etc/passwd')`],
    ['read_text', (outside: string) => `SELECT * FROM read_text('${outside}')`],
    ['read_blob', (outside: string) => `SELECT * FROM read_blob('${outside}')`],
    ['replacement scan', (outside: string) => `SELECT * FROM '${outside}'`],
    ['COPY FROM', (outside: string) => `COPY bars FROM '${outside}'`],
    ['COPY TO', () => `COPY (SELECT 1) TO '${join(tmpdir(), 'backtestr-copy-out.csv')}'`],
    ['ATTACH', () => `ATTACH '${join(tmpdir(), 'backtestr-attached.duckdb')}' AS other`],
    ['glob', () => `SELECT * FROM glob('/etc/*')`],
  ])('external access fails: %s', async (_name, makeSql) => {
    await migrateSchema(database);
    const error = await captureError(() => database[runSqlForTests](makeSql(writeOutsideFile())));
    expect(error.code).toBe('E_STORAGE');
    expect(error.details.kind).toBe('Permission Error');
    expect(existsSync(join(tmpdir(), 'backtestr-copy-out.csv'))).toBe(false);
    expect(existsSync(join(tmpdir(), 'backtestr-attached.duckdb'))).toBe(false);

    // The database still works after the rejected statement.
    const rows = await database[runSqlForTests]('SELECT 42');
    expect(rows).toEqual([[42]]);
  });

  test.each(['INSTALL httpfs', 'LOAD httpfs', 'INSTALL spatial FROM community', 'FORCE INSTALL httpfs', "LOAD '/tmp/evil.duckdb_extension'"])(
    'extension fails: %s',
    async (sql) => {
      const error = await captureError(() => database[runSqlForTests](sql));
      expect(error.code).toBe('E_STORAGE');
      expect(error.details.kind).toBe('Permission Error');

      const loaded = await database[runSqlForTests]("SELECT count(*) FROM duckdb_settings() WHERE name = 'enable_external_access' AND value = 'false'");
      expect(loaded).toEqual([[1n]]);
    },
  );

  test.each([
    'SET enable_external_access = true',
    'SET lock_configuration = false',
    'SET autoinstall_known_extensions = true',
    'SET autoload_known_extensions = true',
    'SET allow_community_extensions = true',
    "SET allowed_directories = ['/']",
    "SET GLOBAL enable_external_access = true",
    'RESET enable_external_access',
  ])('settings locked: %s', async (sql) => {
    const error = await captureError(() => database[runSqlForTests](sql));
    expect(error.code).toBe('E_STORAGE');
    expect(error.details.kind).toBe('Invalid Input Error');

    const rows = await database[runSqlForTests](
      `SELECT current_setting('enable_external_access'), current_setting('lock_configuration'),
              current_setting('autoload_known_extensions'), current_setting('autoinstall_known_extensions'),
              current_setting('allow_community_extensions')`,
    );
    expect(rows).toEqual([[false, true, false, false, false]]);
  });

  test('failed transaction rolls back', async () => {
    await migrateSchema(database);
    await database.run('seed', (session) => session.execute(`INSERT INTO symbols VALUES ('KEEP', 1, DATE '2020-01-02', DATE '2020-01-02', now()::TIMESTAMP)`));

    const error = await captureError(() =>
      database.run(
        'failing',
        async (session) => {
          await session.execute(`DELETE FROM symbols WHERE symbol = ?`, ['KEEP']);
          await session.execute(`INSERT INTO no_such_table VALUES (1)`);
        },
        { transaction: true },
      ),
    );
    expect(error.code).toBe('E_STORAGE');

    const rows = await database.run('check', (session) => session.selectRows(`SELECT symbol FROM symbols`));
    expect(rows).toEqual([{ symbol: 'KEEP' }]);
  });

  test('DuckDB error wrapped generically', async () => {
    const error = await captureError(() => database.run('probe', (session) => session.execute(`SELECT * FROM secret_table_name_xyz`)));

    expect(error.code).toBe('E_STORAGE');
    expect(error.message).not.toContain('secret_table_name_xyz');
    expect(error.details).toEqual({ operation: 'probe' });
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('Catalog Error');
    expect(log).not.toContain('secret_table_name_xyz');
  });

  test('closed database rejects work', async () => {
    await database.close();
    const error = await captureError(() => database.run('late', (session) => session.selectRows('SELECT 1')));
    expect(error.code).toBe('E_STORAGE');
  });
});

describe('storage service lifecycle', () => {
  let ctx: TestContext;

  beforeEach(() => {
    ctx = createTestContext();
  });

  afterEach(() => {
    removeProfile(ctx);
  });

  test('files are 0600, directories 0700', async () => {
    // A loose umask and state directory, as another program might leave them.
    process.umask(0o022);
    mkdirSync(ctx.stateDir, { mode: 0o755 });
    chmodSync(ctx.stateDir, 0o755);
    const service = createTestStorage();

    await startUnlocked(service, ctx);
    await callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv: readSp500Csv() });

    expect(lstatSync(ctx.stateDir).mode & 0o777).toBe(0o700);
    const whileOpen = modesBelow(ctx.stateDir);
    expect(Object.keys(whileOpen).sort()).toEqual(['keyring.bin', 'store', 'store/journal-1.sealed', 'store/snapshot-1.sealed']);
    for (const [name, mode] of Object.entries(whileOpen)) {
      expect([name, mode]).toEqual([name, lstatSync(join(ctx.stateDir, name)).isDirectory() ? 0o700 : 0o600]);
    }
    // The plaintext database exists only in the RAM directory, and only while unlocked.
    expect(existsSync(join(ctx.stateDir, DATABASE_FILE))).toBe(false);
    expect(modesBelow(ctx.ramDir!)[DATABASE_FILE]).toBe(0o600);

    await service.stop!(ctx);
    const afterStop = modesBelow(ctx.stateDir);
    expect(Object.keys(afterStop).sort()).toEqual(['keyring.bin', 'store', 'store/journal-2.sealed', 'store/snapshot-2.sealed']);
    for (const [name, mode] of Object.entries(afterStop)) {
      expect([name, mode]).toEqual([name, lstatSync(join(ctx.stateDir, name)).isDirectory() ? 0o700 : 0o600]);
    }
    expect(readdirSync(ctx.ramDir!)).toEqual([]);
  });

  test('loose file repaired and reported', async () => {
    mkdirSync(ctx.stateDir, { mode: 0o700 });
    writeFileSync(join(ctx.stateDir, 'leftover.tmp'), 'x', { mode: 0o644 });
    chmodSync(join(ctx.stateDir, 'leftover.tmp'), 0o644);
    const service = createTestStorage();

    await service.start!(ctx);

    expect(lstatSync(join(ctx.stateDir, 'leftover.tmp')).mode & 0o777).toBe(0o600);
    expect(ctx.events).toEqual([{ type: 'storage.modes_repaired', severity: 'warning', details: { entries: 1 } }]);
    await service.stop!(ctx);
  });

  test('symlinked journal rejected', async () => {
    const first = createTestStorage();
    await startUnlocked(first, ctx);
    await first.stop!(ctx);
    // A link planted in place of the journal would send appends to another file.
    const journal = join(ctx.stateDir, 'store', 'journal-1.sealed');
    const target = join(ctx.profileDir, 'elsewhere.sealed');
    renameSync(journal, target);
    const before = readFileSync(target);
    symlinkSync(target, journal);

    const second = createTestStorage();
    const error = await captureError(() => startUnlocked(second, ctx));

    // The state directory check finds it before the store opens (sealed-store.test.ts covers
    // the store's own O_NOFOLLOW check).
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details.file).toBe('store/journal-1.sealed');
    expect(ctx.events.map((event) => event.type)).toContain('storage.integrity_failed');
    expect(readFileSync(target).equals(before)).toBe(true);
  });

  test('symlink in state directory rejected', async () => {
    mkdirSync(ctx.stateDir, { mode: 0o700 });
    symlinkSync('/etc/passwd', join(ctx.stateDir, 'link'));
    const service = createTestStorage();

    // Start-up goes on and reports it; every unlock then refuses it.
    await service.start!(ctx);
    expect(ctx.events).toEqual([{ type: 'storage.integrity_failed', severity: 'critical', details: { file: 'link', reason: 'a symbolic link' } }]);
    const error = await captureError(() => startUnlocked(service, ctx));

    expect(error.code).toBe('E_INTEGRITY');
    expect(error.message).toMatch(/storage entry link is a symbolic link/);
    expect((await callMethod(service, ctx, 'status', {})).unlocked).toBe(false);
  });

  test('reopen keeps data', async () => {
    const first = createTestStorage();
    await startUnlocked(first, ctx);
    await callMethod(first, ctx, 'importBars', { symbol: 'SPX', csv: readSp500Csv() });
    const before = await callMethod(first, ctx, 'queryBars', { symbol: 'SPX' });
    const equity = Float64Array.of(1, 2.5, Math.PI);
    const { id } = await callMethod(first, ctx, 'saveBacktest', {
      strategyFile: 'a.js',
      strategySha256: '0'.repeat(64),
      symbol: 'SPX',
      params: { n: 1 },
      metrics: { sharpe: 1.25 },
      fills: [],
      equity,
      time: Float64Array.of(0, 1, 2),
    });
    await first.stop!(ctx);
    // CHECKPOINT on stop moves the write-ahead log into the database file.
    expect(existsSync(join(ctx.stateDir, `${DATABASE_FILE}.wal`))).toBe(false);

    const second = createTestStorage();
    await startUnlocked(second, ctx);
    const after = await callMethod(second, ctx, 'queryBars', { symbol: 'SPX' });
    const record = await callMethod(second, ctx, 'getBacktest', { id });
    const symbols = await callMethod(second, ctx, 'listSymbols', {});
    await second.stop!(ctx);

    for (const name of ['time', 'open', 'high', 'low', 'close', 'volume']) {
      expect(after[name]).toEqual(before[name]);
    }
    expect(Array.from(record.equity)).toEqual(Array.from(equity));
    expect(symbols).toEqual([{ symbol: 'SPX', bars: 5105, first: '2000-01-03', last: '2020-04-17' }]);
  });

  test('newer schema version rejected', async () => {
    const first = createTestStorage();
    await startUnlocked(first, ctx);
    await first.stop!(ctx);
    // Change the sealed database the way a newer build would have left it.
    const keyring = await Keyring.open(join(ctx.stateDir, 'keyring.bin'), STORAGE_TEST_PASSWORD, { allowWeakKdfForTests: true });
    const store = await SealedStore.open({ durableDir: join(ctx.stateDir, 'store'), ramDir: ctx.ramDir!, keyring, log: ctx.log, securityEvent: () => undefined });
    await store.database[runSqlForTests]('UPDATE schema_version SET version = 99');
    await store.compact();
    await store.close();
    keyring.lock();

    const second = createTestStorage();
    const error = await captureError(() => startUnlocked(second, ctx));

    expect(error.code).toBe('E_STORAGE');
    expect(error.details.version).toBe(99);
    expect((await callMethod(second, ctx, 'status', {})).unlocked).toBe(false);
  });

  test('methods fail while locked', async () => {
    const service = createTestStorage();
    const before = await captureError(() => callMethod(service, ctx, 'listSymbols', {}));
    expect(before.code).toBe('E_SESSION_INVALID');

    await startUnlocked(service, ctx);
    await service.stop!(ctx);

    const after = await captureError(() => callMethod(service, ctx, 'listSymbols', {}));
    expect(after.code).toBe('E_SESSION_INVALID');
  });
});

describe('storage state directory checks', () => {
  test('symlinked WAL rejected before open', async () => {
    const ctx = createTestContext();
    mkdirSync(ctx.stateDir, { mode: 0o700 });
    const target = join(ctx.profileDir, 'elsewhere.wal');
    symlinkSync(target, join(ctx.stateDir, `${DATABASE_FILE}.wal`));
    const service = createTestStorage();

    const error = await captureError(() => startUnlocked(service, ctx));

    expect(error.code).toBe('E_INTEGRITY');
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(ctx.stateDir, DATABASE_FILE))).toBe(false);
    removeProfile(ctx);
  });
});
