/**
 * Crash safety: a child process runs a keyring or vault change and dies by SIGKILL, either right
 * after a chosen write step or after a random delay. Afterwards the profile must open with exactly
 * one of the two passwords, with the same data keys, and nothing half-written may be visible.
 * The child loads the compiled library from build/ (run `npm run build` first).
 */
import { randomInt } from 'node:crypto';
import { Keyring, SecretVault } from '../../../services/storage/crypto';
import {
  TEST_OPTIONS, createTestKeyring, errorCodeOf, hex, keyringPath, listFiles, makeTempDir, removeDir, runCrashChild, vaultPath,
} from './helpers';

const STEPS_PER_WRITE = 4;

/** Opens with each password and returns which ones worked; also returns the opened keyring. */
async function openWithEither(dir: string, passwords: string[]): Promise<{ opened: string[]; keyring?: Keyring }> {
  const opened: string[] = [];
  let keyring: Keyring | undefined;
  for (const password of passwords) {
    const code = await errorCodeOf(Keyring.open(keyringPath(dir), password, TEST_OPTIONS), (value) => {
      keyring?.lock();
      keyring = value;
    });
    if (code === 'resolved') opened.push(password);
    else expect(code).toBe('E_WRONG_PASSWORD');
  }
  return { opened, keyring };
}

function tempFilesIn(dir: string): string[] {
  return listFiles(dir).filter((name) => name.endsWith('.tmp'));
}

describe('crash safety', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => removeDir(dir));

  test('password change killed at each step', async () => {
    for (let step = 1; step <= STEPS_PER_WRITE; step++) {
      removeDir(dir);
      dir = makeTempDir();
      const created = await createTestKeyring(dir, 'old-pw');
      const storeKey = hex(created.currentKey('store').key);
      created.lock();

      const outcome = await runCrashChild({ op: 'change-password', dir, passwords: ['old-pw', 'new-pw'], killAtStep: step });
      expect([step, outcome.signal]).toEqual([step, 'SIGKILL']);

      const { opened, keyring } = await openWithEither(dir, ['old-pw', 'new-pw']);
      // Before the rename the old file is in place; from the rename on, the new one.
      expect([step, opened]).toEqual([step, step < 3 ? ['old-pw'] : ['new-pw']]);
      expect(hex(keyring!.currentKey('store').key)).toBe(storeKey);
      expect(tempFilesIn(dir)).toEqual([]);
      keyring!.lock();
    }
  });

  test('password change loop killed at random points', async () => {
    const created = await createTestKeyring(dir, 'pw-a');
    const storeKey = hex(created.currentKey('store').key);
    created.lock();
    let current = 'pw-a';
    for (let round = 0; round < 20; round++) {
      const other = current === 'pw-a' ? 'pw-b' : 'pw-a';
      const outcome = await runCrashChild({ op: 'change-password-loop', dir, passwords: [current, other] }, randomInt(0, 80));
      expect([round, outcome.signal, outcome.stderr]).toEqual([round, 'SIGKILL', '']);

      const { opened, keyring } = await openWithEither(dir, ['pw-a', 'pw-b']);
      expect([round, opened.length]).toEqual([round, 1]);
      expect(hex(keyring!.currentKey('store').key)).toBe(storeKey);
      keyring!.lock();
      current = opened[0];
    }
  });

  test('rekey and retire killed at each step', async () => {
    for (let step = 1; step <= 2 * STEPS_PER_WRITE; step++) {
      removeDir(dir);
      dir = makeTempDir();
      const created = await createTestKeyring(dir, 'pw');
      const firstKey = hex(created.currentKey('store').key);
      const vaultKey = hex(created.currentKey('vault').key);
      created.lock();

      const outcome = await runCrashChild({ op: 'rekey', dir, passwords: ['pw'], killAtStep: step });
      expect([step, outcome.signal]).toEqual([step, 'SIGKILL']);

      const keyring = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
      // Steps 1-4 write the rekeyed file (renamed at step 3), steps 5-8 the retired one (renamed at 7).
      let expected = [1];
      if (step >= 3) expected = [1, 2];
      if (step >= 7) expected = [2];
      expect([step, keyring.generations('store')]).toEqual([step, expected]);
      if (expected.includes(1)) expect(hex(keyring.keyFor('store', 1).key)).toBe(firstKey);
      expect(hex(keyring.currentKey('vault').key)).toBe(vaultKey);
      keyring.lock();
    }
  });

  test('rekey loop killed at random points', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    const seen = new Map<number, string>();
    let newest = 1;
    for (let round = 0; round < 15; round++) {
      const outcome = await runCrashChild({ op: 'rekey-loop', dir, passwords: ['pw'] }, randomInt(0, 60));
      expect([round, outcome.signal, outcome.stderr]).toEqual([round, 'SIGKILL', '']);

      const keyring = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
      const generations = keyring.generations('store');
      // A crash between rekey and retire leaves older generations beside the new one; the next
      // round's retire removes them. The kept generations are consecutive and never go back.
      expect(generations).toEqual(generations.map((_, i) => generations[0] + i));
      expect(generations[generations.length - 1]).toBeGreaterThanOrEqual(newest);
      newest = generations[generations.length - 1];
      for (const generation of generations) {
        const key = hex(keyring.keyFor('store', generation).key);
        // A generation's key never changes once written.
        expect(seen.get(generation) ?? key).toBe(key);
        seen.set(generation, key);
      }
      keyring.lock();
    }
  });

  test('vault put killed at each step', async () => {
    for (let step = 1; step <= 2 * STEPS_PER_WRITE; step++) {
      removeDir(dir);
      dir = makeTempDir();
      const created = await createTestKeyring(dir, 'pw');
      const vault = await SecretVault.open(created, vaultPath(dir));
      await vault.put('existing', 'kept');
      created.lock();

      const outcome = await runCrashChild({ op: 'vault-put', dir, passwords: ['pw'], killAtStep: step, secretName: 'new', secretValue: 'added' });
      expect([step, outcome.signal]).toEqual([step, 'SIGKILL']);

      const keyring = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
      const reopened = await SecretVault.open(keyring, vaultPath(dir));
      // The vault file is replaced at step 3; the keyring counter catches up at step 7 or on open.
      expect([step, reopened.list()]).toEqual([step, step < 3 ? ['existing'] : ['existing', 'new']]);
      expect(keyring.counter('vault-revision')).toBe(reopened.revision);
      expect(new TextDecoder().decode(reopened.get('existing'))).toBe('kept');
      expect(tempFilesIn(dir)).toEqual([]);
      keyring.lock();
    }
  });
});
