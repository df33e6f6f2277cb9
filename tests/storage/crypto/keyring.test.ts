import { createHash } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { Keyring, MIN_ARGON2_PARAMS, calibrateArgon2 } from '../../../services/storage/crypto';
import { TEST_KDF, TEST_OPTIONS, createTestKeyring, errorCodeOf, hex, keyringPath, makeTempDir, readBytes, removeDir } from './helpers';

/** Replaces the trailing SHA-256 checksum so that an edit passes the unkeyed check, as an attacker could. */
function withRecomputedChecksum(file: Uint8Array): Uint8Array {
  const body = file.subarray(0, file.length - 32);
  const out = new Uint8Array(file);
  out.set(createHash('sha256').update(body).digest(), file.length - 32);
  return out;
}

// Offsets from the layout in keyring-format.ts.
const SALT_OFFSET = 34;
const FIRST_WRAPPED_KEY_OFFSET = 92 + 16 + 1 + 'store'.length + 4;

describe('keyring', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => removeDir(dir));

  test('create and reopen round trip', async () => {
    const created = await createTestKeyring(dir, 'correct horse');
    const store = hex(created.currentKey('store').key);
    const vault = hex(created.currentKey('vault').key);
    const id = created.id;
    created.lock();

    const opened = await Keyring.open(keyringPath(dir), 'correct horse', TEST_OPTIONS);
    expect(opened.id).toBe(id);
    expect(opened.purposes()).toEqual(['store', 'vault']);
    expect(hex(opened.currentKey('store').key)).toBe(store);
    expect(hex(opened.currentKey('vault').key)).toBe(vault);
    expect(store).not.toBe(vault);
    expect(opened.currentKey('store').generation).toBe(1);
    expect(opened.kdfParams).toEqual(TEST_KDF);
  });

  test('keyring file has mode 0600', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    expect(statSync(keyringPath(dir)).mode & 0o777).toBe(0o600);
  });

  test('create refuses an existing file', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    expect(await errorCodeOf(createTestKeyring(dir, 'other'))).toBe('E_PROFILE_EXISTS');
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('resolved');
  });

  test('missing file is E_NOT_FOUND', async () => {
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('E_NOT_FOUND');
  });

  test('wrong password is E_WRONG_PASSWORD', async () => {
    (await createTestKeyring(dir, 'right')).lock();
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'wrong', TEST_OPTIONS))).toBe('E_WRONG_PASSWORD');
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'right', TEST_OPTIONS))).toBe('resolved');
  });

  test('password is NFC-normalised', async () => {
    (await createTestKeyring(dir, 'caf\u00e9')).lock();
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'cafe\u0301', TEST_OPTIONS))).toBe('resolved');
  });

  test('real minimum parameters round trip', async () => {
    const created = await Keyring.create(keyringPath(dir), 'minimum', { purposes: ['store'], kdf: { ...MIN_ARGON2_PARAMS } });
    const key = hex(created.currentKey('store').key);
    created.lock();
    const opened = await Keyring.open(keyringPath(dir), 'minimum');
    expect(opened.kdfParams).toEqual(MIN_ARGON2_PARAMS);
    expect(hex(opened.currentKey('store').key)).toBe(key);
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'minimun'))).toBe('E_WRONG_PASSWORD');
  });

  test('parameters below the minimum are rejected', async () => {
    const weak = Keyring.create(keyringPath(dir), 'pw', { purposes: ['store'], kdf: TEST_KDF });
    expect(await errorCodeOf(weak)).toBe('E_INVALID_PARAMS');
    (await createTestKeyring(dir, 'pw')).lock();
    // A file with weak parameters opens only under the explicit test option.
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw'))).toBe('E_INTEGRITY');
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('resolved');
  });

  test('every flipped byte is E_INTEGRITY', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    const original = readBytes(keyringPath(dir));
    const codes = new Map<string, number[]>();
    for (let offset = 0; offset < original.length; offset++) {
      const damaged = new Uint8Array(original);
      damaged[offset] ^= 0x01;
      writeFileSync(keyringPath(dir), damaged);
      const code = await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS));
      codes.set(code, [...(codes.get(code) ?? []), offset]);
    }
    expect([...codes.keys()]).toEqual(['E_INTEGRITY']);
    writeFileSync(keyringPath(dir), original);
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('resolved');
  });

  test('every truncation and an appended byte are E_INTEGRITY', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    const original = readBytes(keyringPath(dir));
    for (let length = 0; length < original.length; length++) {
      writeFileSync(keyringPath(dir), original.subarray(0, length));
      expect([length, await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))]).toEqual([length, 'E_INTEGRITY']);
    }
    writeFileSync(keyringPath(dir), Buffer.concat([original, Buffer.from([0])]));
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('E_INTEGRITY');
  });

  test('edited wrapped key with valid checksum fails the MAC', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    const edited = new Uint8Array(readBytes(keyringPath(dir)));
    edited[FIRST_WRAPPED_KEY_OFFSET + 30] ^= 0x80;
    writeFileSync(keyringPath(dir), withRecomputedChecksum(edited));
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('E_INTEGRITY');
  });

  test('edited salt with valid checksum reads as wrong password', async () => {
    // The documented limit: a rewritten header derives another KEK, exactly like a wrong password.
    (await createTestKeyring(dir, 'pw')).lock();
    const edited = new Uint8Array(readBytes(keyringPath(dir)));
    edited[SALT_OFFSET] ^= 0x01;
    writeFileSync(keyringPath(dir), withRecomputedChecksum(edited));
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('E_WRONG_PASSWORD');
  });

  test('excessive stored memory cost is rejected before derivation', async () => {
    (await createTestKeyring(dir, 'pw')).lock();
    const edited = new Uint8Array(readBytes(keyringPath(dir)));
    new DataView(edited.buffer).setUint32(22, 0xffffffff);
    writeFileSync(keyringPath(dir), withRecomputedChecksum(edited));
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS))).toBe('E_INTEGRITY');
  });

  test('lock zeroes keys and rejects later calls', async () => {
    const keyring = await createTestKeyring(dir, 'pw');
    const store = keyring.currentKey('store');
    expect(store.key.some((byte) => byte !== 0)).toBe(true);
    keyring.lock();
    expect(keyring.locked).toBe(true);
    expect(store.key.every((byte) => byte === 0)).toBe(true);
    expect(() => keyring.currentKey('store')).toThrow(expect.objectContaining({ code: 'E_SESSION_INVALID' }));
    expect(await errorCodeOf(keyring.rekey('store'))).toBe('E_SESSION_INVALID');
  });

  test('verifyPassword checks against the open keyring', async () => {
    const keyring = await createTestKeyring(dir, 'right password');
    const fileBefore = hex(readBytes(keyringPath(dir)));
    expect(await keyring.verifyPassword('right password')).toBe(true);
    expect(await keyring.verifyPassword('wrong password')).toBe(false);
    // NFC: the decomposed form of a precomposed password verifies too.
    await keyring.changePassword('right password', 'caf\u00e9 password');
    expect(await keyring.verifyPassword('cafe\u0301 password')).toBe(true);
    expect(await keyring.verifyPassword('right password')).toBe(false);
    expect(hex(readBytes(keyringPath(dir)))).not.toBe(fileBefore);

    const unchanged = hex(readBytes(keyringPath(dir)));
    await keyring.verifyPassword('wrong password');
    expect(hex(readBytes(keyringPath(dir)))).toBe(unchanged);

    keyring.lock();
    expect(await errorCodeOf(keyring.verifyPassword('cafe\u0301 password'))).toBe('E_SESSION_INVALID');
  });

  test('change password re-wraps the same keys', async () => {
    const keyring = await createTestKeyring(dir, 'old password');
    const store = hex(keyring.currentKey('store').key);
    const revision = keyring.revision;
    const saltBefore = readBytes(keyringPath(dir)).slice(SALT_OFFSET, SALT_OFFSET + 16);

    expect(await errorCodeOf(keyring.changePassword('not the old one', 'new password'))).toBe('E_WRONG_PASSWORD');
    await keyring.changePassword('old password', 'new password');
    expect(keyring.revision).toBe(revision + 1);
    keyring.lock();

    const saltAfter = readBytes(keyringPath(dir)).slice(SALT_OFFSET, SALT_OFFSET + 16);
    expect(hex(saltAfter)).not.toBe(hex(saltBefore));
    expect(await errorCodeOf(Keyring.open(keyringPath(dir), 'old password', TEST_OPTIONS))).toBe('E_WRONG_PASSWORD');
    const reopened = await Keyring.open(keyringPath(dir), 'new password', TEST_OPTIONS);
    expect(hex(reopened.currentKey('store').key)).toBe(store);
  });

  test('change password can raise parameters', async () => {
    const keyring = await createTestKeyring(dir, 'a');
    const raised = { memoryKiB: 128, timeCost: 2, parallelism: 1 };
    await keyring.changePassword('a', 'b', { kdf: raised });
    keyring.lock();
    expect((await Keyring.open(keyringPath(dir), 'b', TEST_OPTIONS)).kdfParams).toEqual(raised);
  });

  test('rekey keeps old generation until retired', async () => {
    const keyring = await createTestKeyring(dir, 'pw');
    const first = hex(keyring.currentKey('store').key);
    const fresh = await keyring.rekey('store');
    const freshHex = hex(fresh.key);
    expect(fresh.generation).toBe(2);
    expect(freshHex).not.toBe(first);
    expect(keyring.generations('store')).toEqual([1, 2]);
    expect(keyring.currentKey('store').generation).toBe(2);
    expect(hex(keyring.keyFor('store', 1).key)).toBe(first);
    expect(keyring.generations('vault')).toEqual([1]);
    keyring.lock();

    const reopened = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
    expect(reopened.generations('store')).toEqual([1, 2]);
    expect(hex(reopened.keyFor('store', 1).key)).toBe(first);
    const retiredKey = reopened.keyFor('store', 1);
    await reopened.retireGenerationsBefore('store', 2);
    expect(reopened.generations('store')).toEqual([2]);
    expect(retiredKey.key.every((byte) => byte === 0)).toBe(true);
    expect(() => reopened.keyFor('store', 1)).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
    reopened.lock();

    const final = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
    expect(final.generations('store')).toEqual([2]);
    expect(hex(final.currentKey('store').key)).toBe(freshHex);
  });

  test('retire of unknown generation is E_NOT_FOUND', async () => {
    const keyring = await createTestKeyring(dir, 'pw');
    expect(await errorCodeOf(keyring.retireGenerationsBefore('store', 5))).toBe('E_NOT_FOUND');
    expect(await errorCodeOf(keyring.rekey('missing'))).toBe('E_NOT_FOUND');
    expect(keyring.generations('store')).toEqual([1]);
  });

  test('counters persist and never go down', async () => {
    const keyring = await createTestKeyring(dir, 'pw');
    expect(keyring.counter('store-revision')).toBe(0);
    await keyring.setCounter('store-revision', 7);
    expect(await errorCodeOf(keyring.setCounter('store-revision', 6))).toBe('E_INTERNAL');
    expect(await errorCodeOf(keyring.setCounter('Bad Name', 1))).toBe('E_INVALID_PARAMS');
    keyring.lock();
    expect((await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS)).counter('store-revision')).toBe(7);
  });

  test('add purpose creates generation 1', async () => {
    const keyring = await createTestKeyring(dir, 'pw', ['store']);
    const added = await keyring.addPurpose('exports');
    expect(added.generation).toBe(1);
    expect(await errorCodeOf(keyring.addPurpose('store'))).toBe('E_INVALID_PARAMS');
    keyring.lock();
    expect((await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS)).purposes()).toEqual(['exports', 'store']);
  });

  test('calibration stays within bounds', async () => {
    const result = await calibrateArgon2({ targetMs: 30, maxMemoryKiB: 32768, maxTimeCost: 3 });
    expect(result.params.memoryKiB).toBeGreaterThanOrEqual(MIN_ARGON2_PARAMS.memoryKiB);
    expect(result.params.memoryKiB).toBeLessThanOrEqual(32768);
    expect(result.params.timeCost).toBeGreaterThanOrEqual(MIN_ARGON2_PARAMS.timeCost);
    expect(result.params.timeCost).toBeLessThanOrEqual(3);
    expect(result.params.parallelism).toBe(1);
    expect(result.measuredMs).toBeGreaterThan(0);
  });
});
