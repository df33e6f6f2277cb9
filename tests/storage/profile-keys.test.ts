/**
 * The storage service's keyring and vault methods in process, with real files and a real DuckDB:
 * create, unlock, verify while unlocked, lock, password change, rekey and secrets.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring } from '../../services/storage/crypto';
import { KEYRING_FILE, TEST_KDF, VAULT_FILE } from '../../services/storage/profile-keys';
import { createStorageService } from '../../services/storage/service';
import type { ServiceDefinition } from '../../services/runtime/types';
import { callMethod, captureError, createTestContext, readSp500Csv, removeProfile, startUnlocked, STORAGE_TEST_PASSWORD, type TestContext } from './helpers';

const NEW_PASSWORD = 'Another-Storage-43-pass';
const CANARY_VALUE = 'canary-value-5b1e0c7a';

describe('storage keyring methods', () => {
  let ctx: TestContext;
  let service: ServiceDefinition;

  beforeEach(async () => {
    ctx = createTestContext();
    service = createStorageService({ weakKdfForTests: true });
    await service.start!(ctx);
  });

  afterEach(async () => {
    await service.stop!(ctx);
    removeProfile(ctx);
  });

  test('createKeyring writes a locked keyring', async () => {
    const created = await callMethod(service, ctx, 'createKeyring', { password: STORAGE_TEST_PASSWORD });
    expect(created).toEqual({ created: true, kdf: { ...TEST_KDF } });

    const file = join(ctx.stateDir, KEYRING_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).includes(Buffer.from(STORAGE_TEST_PASSWORD))).toBe(false);
    expect(await callMethod(service, ctx, 'status', {})).toEqual({ keyringExists: true, unlocked: false, kdf: null });
    expect(ctx.events.map((event) => event.type)).toEqual(['storage.keyring_created']);
    // The store opens at the first unlock, not at creation.
    expect(existsSync(join(ctx.stateDir, 'storage.duckdb'))).toBe(false);
  });

  test('createKeyring twice is E_PROFILE_EXISTS', async () => {
    await callMethod(service, ctx, 'createKeyring', { password: STORAGE_TEST_PASSWORD });
    const before = readFileSync(join(ctx.stateDir, KEYRING_FILE));
    const error = await captureError(() => callMethod(service, ctx, 'createKeyring', { password: NEW_PASSWORD }));
    expect(error.code).toBe('E_PROFILE_EXISTS');
    expect(readFileSync(join(ctx.stateDir, KEYRING_FILE)).equals(before)).toBe(true);
  });

  test('createKeyring checks the policy again', async () => {
    const error = await captureError(() => callMethod(service, ctx, 'createKeyring', { password: 'short' }));
    expect(error.code).toBe('E_WEAK_PASSWORD');
    expect(existsSync(join(ctx.stateDir, KEYRING_FILE))).toBe(false);
  });

  test('wrong password leaves storage locked', async () => {
    await callMethod(service, ctx, 'createKeyring', { password: STORAGE_TEST_PASSWORD });
    const error = await captureError(() => callMethod(service, ctx, 'unlock', { password: NEW_PASSWORD }));
    expect(error.code).toBe('E_WRONG_PASSWORD');
    expect(error.message).not.toContain(NEW_PASSWORD);
    expect((await callMethod(service, ctx, 'status', {})).unlocked).toBe(false);
  });

  test('unlock while unlocked verifies without reopening', async () => {
    await startUnlocked(service, ctx);
    await callMethod(service, ctx, 'importBars', { symbol: 'SPX', csv: readSp500Csv() });

    const wrong = await captureError(() => callMethod(service, ctx, 'unlock', { password: NEW_PASSWORD }));
    expect(wrong.code).toBe('E_WRONG_PASSWORD');
    expect((await callMethod(service, ctx, 'status', {})).unlocked).toBe(true);

    expect(await callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD })).toEqual({ unlocked: true, alreadyUnlocked: true });
    expect((await callMethod(service, ctx, 'listSymbols', {}))).toHaveLength(1);
  });

  test('lock closes the store and blocks every data method', async () => {
    await startUnlocked(service, ctx);
    expect(await callMethod(service, ctx, 'status', {})).toEqual({ keyringExists: true, unlocked: true, kdf: { ...TEST_KDF } });
    expect(await callMethod(service, ctx, 'lock', { reason: 'test' })).toEqual({ locked: true, wasUnlocked: true });
    expect(await callMethod(service, ctx, 'lock', { reason: 'test' })).toEqual({ locked: true, wasUnlocked: false });

    const calls: [string, unknown][] = [
      ['importBars', { symbol: 'SPX', csv: readSp500Csv() }],
      ['queryBars', { symbol: 'SPX' }],
      ['listSymbols', {}],
      ['listBacktests', {}],
      ['getBacktest', { id: 1 }],
      ['changePassword', { current: STORAGE_TEST_PASSWORD, next: NEW_PASSWORD }],
      ['rekey', {}],
      ['putSecret', { name: 'broker', value: CANARY_VALUE }],
      ['getSecret', { name: 'broker' }],
      ['listSecrets', {}],
      ['deleteSecret', { name: 'broker' }],
    ];
    for (const [method, params] of calls) {
      const error = await captureError(() => callMethod(service, ctx, method, params));
      expect([method, error.code]).toEqual([method, 'E_SESSION_INVALID']);
    }
    expect(Object.keys(service.methods).sort()).toEqual(
      [...calls.map(([method]) => method), 'saveBacktest', 'createKeyring', 'unlock', 'lock', 'status'].sort(),
    );
  });

  test('weak keyring refused without the test setting', async () => {
    await callMethod(service, ctx, 'createKeyring', { password: STORAGE_TEST_PASSWORD });
    const production = createStorageService();
    await production.start!(ctx);
    const error = await captureError(() => callMethod(production, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD }));
    expect(error.code).toBe('E_INTEGRITY');
    await production.stop!(ctx);
  });

  test('missing keyring is E_INTEGRITY', async () => {
    await callMethod(service, ctx, 'createKeyring', { password: STORAGE_TEST_PASSWORD });
    rmSync(join(ctx.stateDir, KEYRING_FILE));
    const error = await captureError(() => callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD }));
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details.kind).toBe('missing');
  });

  test('changed vault stops unlock', async () => {
    await startUnlocked(service, ctx);
    await callMethod(service, ctx, 'putSecret', { name: 'broker', value: CANARY_VALUE });
    await callMethod(service, ctx, 'lock', { reason: 'test' });
    const file = join(ctx.stateDir, VAULT_FILE);
    const original = readFileSync(file);
    const changed = Buffer.from(original);
    changed[changed.length - 3] ^= 0x20;
    writeFileSync(file, changed);

    const error = await captureError(() => callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD }));
    expect(error.code).toBe('E_INTEGRITY');
    expect(error.details.file).toBe(VAULT_FILE);
    expect(ctx.events.filter((event) => event.type === 'storage.integrity_failed').map((event) => event.details.file)).toEqual([VAULT_FILE]);
    expect((await callMethod(service, ctx, 'status', {})).unlocked).toBe(false);

    // Nothing was lost: the original file unlocks and still contains the secret.
    writeFileSync(file, original);
    await callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD });
    expect(await callMethod(service, ctx, 'getSecret', { name: 'broker' })).toEqual({ name: 'broker', value: CANARY_VALUE });
  });

  test('keyring replaced by a non-file', async () => {
    await callMethod(service, ctx, 'createKeyring', { password: STORAGE_TEST_PASSWORD });
    const file = join(ctx.stateDir, KEYRING_FILE);
    const saved = `${file}.saved`;
    renameSync(file, saved);
    const plants: [string, () => void][] = [
      ['symbolic link', () => symlinkSync(saved, file)],
      ['directory', () => mkdirSync(file)],
      // A FIFO would block a plain open until a writer appears.
      ['FIFO', () => execFileSync('mkfifo', [file])],
    ];
    for (const [label, plant] of plants) {
      plant();
      const error = await captureError(() => callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD }));
      expect([label, error.code, error.details.file]).toEqual([label, 'E_INTEGRITY', KEYRING_FILE]);
      rmSync(file, { recursive: true });
    }
    expect(ctx.events.filter((event) => event.type === 'storage.integrity_failed')).toHaveLength(3);

    renameSync(saved, file);
    await callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD });
    expect((await callMethod(service, ctx, 'status', {})).unlocked).toBe(true);
  });

  test('changePassword swaps which password opens', async () => {
    await startUnlocked(service, ctx);
    const wrong = await captureError(() => callMethod(service, ctx, 'changePassword', { current: NEW_PASSWORD, next: NEW_PASSWORD }));
    expect(wrong.code).toBe('E_WRONG_PASSWORD');
    const weak = await captureError(() => callMethod(service, ctx, 'changePassword', { current: STORAGE_TEST_PASSWORD, next: 'weak' }));
    expect(weak.code).toBe('E_WEAK_PASSWORD');

    expect(await callMethod(service, ctx, 'changePassword', { current: STORAGE_TEST_PASSWORD, next: NEW_PASSWORD })).toEqual({ changed: true });
    await callMethod(service, ctx, 'lock', { reason: 'test' });

    const old = await captureError(() => callMethod(service, ctx, 'unlock', { password: STORAGE_TEST_PASSWORD }));
    expect(old.code).toBe('E_WRONG_PASSWORD');
    expect(await callMethod(service, ctx, 'unlock', { password: NEW_PASSWORD })).toEqual({ unlocked: true, alreadyUnlocked: false });
  });

  test('secrets round trip and persist', async () => {
    await startUnlocked(service, ctx);
    await callMethod(service, ctx, 'putSecret', { name: 'broker', value: CANARY_VALUE });
    await callMethod(service, ctx, 'putSecret', { name: 'exchange', value: 'other value\nwith a newline' });
    expect(await callMethod(service, ctx, 'listSecrets', {})).toEqual({ names: ['broker', 'exchange'] });
    expect(await callMethod(service, ctx, 'getSecret', { name: 'broker' })).toEqual({ name: 'broker', value: CANARY_VALUE });

    await callMethod(service, ctx, 'deleteSecret', { name: 'exchange' });
    const missing = await captureError(() => callMethod(service, ctx, 'getSecret', { name: 'exchange' }));
    expect(missing.code).toBe('E_NOT_FOUND');
    await service.stop!(ctx);

    const restarted = createStorageService({ weakKdfForTests: true });
    await startUnlocked(restarted, ctx);
    expect(await callMethod(restarted, ctx, 'listSecrets', {})).toEqual({ names: ['broker'] });
    expect(await callMethod(restarted, ctx, 'getSecret', { name: 'broker' })).toEqual({ name: 'broker', value: CANARY_VALUE });
    await restarted.stop!(ctx);
  });

  test('secret value stays out of logs, events, errors and files', async () => {
    await startUnlocked(service, ctx);
    await callMethod(service, ctx, 'putSecret', { name: 'broker', value: CANARY_VALUE });
    await callMethod(service, ctx, 'getSecret', { name: 'broker' });
    const oversized = await captureError(() => callMethod(service, ctx, 'putSecret', { name: 'big', value: CANARY_VALUE.repeat(800) }));
    expect(oversized.code).toBe('E_INVALID_PARAMS');
    await callMethod(service, ctx, 'rekey', { purpose: 'vault' });
    await service.stop!(ctx);

    const everything = [readFileSync(ctx.logFile, 'utf8'), JSON.stringify(ctx.events), oversized.message, JSON.stringify(oversized.details)].join('\n');
    expect(everything).not.toContain('canary-value');
    expect(ctx.events.map((event) => event.type)).toEqual(expect.arrayContaining(['storage.secret_stored', 'storage.secret_read', 'storage.rekeyed']));
    for (const file of [KEYRING_FILE, VAULT_FILE]) {
      expect([file, readFileSync(join(ctx.stateDir, file)).includes(Buffer.from('canary-value'))]).toEqual([file, false]);
    }
  });

  test('rekey replaces generations and keeps secrets', async () => {
    await startUnlocked(service, ctx);
    await callMethod(service, ctx, 'putSecret', { name: 'broker', value: CANARY_VALUE });
    expect(await callMethod(service, ctx, 'rekey', { purpose: 'vault' })).toEqual({ rekeyed: [{ purpose: 'vault', generation: 2 }] });
    expect(await callMethod(service, ctx, 'rekey', {})).toEqual({ rekeyed: [{ purpose: 'store', generation: 2 }, { purpose: 'vault', generation: 3 }] });
    expect(await callMethod(service, ctx, 'getSecret', { name: 'broker' })).toEqual({ name: 'broker', value: CANARY_VALUE });
    const unknown = await captureError(() => callMethod(service, ctx, 'rekey', { purpose: 'other' }));
    expect(unknown.code).toBe('E_INVALID_PARAMS');
    await service.stop!(ctx);

    // Only the newest generation of each purpose is left in the keyring file.
    const keyring = await Keyring.open(join(ctx.stateDir, KEYRING_FILE), STORAGE_TEST_PASSWORD, { allowWeakKdfForTests: true });
    expect(keyring.generations('store')).toEqual([2]);
    expect(keyring.generations('vault')).toEqual([3]);
    keyring.lock();
  });
});
