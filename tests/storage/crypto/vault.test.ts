import { copyFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring, SecretVault, VAULT_REVISION_COUNTER } from '../../../services/storage/crypto';
import { TEST_OPTIONS, createTestKeyring, errorCodeOf, keyringPath, makeTempDir, readBytes, removeDir, vaultPath } from './helpers';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('secret vault', () => {
  let dir: string;
  let keyring: Keyring;
  beforeEach(async () => {
    dir = makeTempDir();
    keyring = await createTestKeyring(dir, 'pw');
  });
  afterEach(() => {
    keyring.lock();
    removeDir(dir);
  });

  test('put get list round trip', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    expect(vault.list()).toEqual([]);
    await vault.put('broker-key', 'AKIA-123');
    await vault.put('broker-secret', new TextEncoder().encode('s3cr3t'));
    expect(vault.list()).toEqual(['broker-key', 'broker-secret']);
    expect(text(vault.get('broker-key'))).toBe('AKIA-123');

    const reopened = await SecretVault.open(keyring, vaultPath(dir));
    expect(reopened.list()).toEqual(['broker-key', 'broker-secret']);
    expect(text(reopened.get('broker-secret'))).toBe('s3cr3t');
    expect(reopened.revision).toBe(2);
    expect(keyring.counter(VAULT_REVISION_COUNTER)).toBe(2);
    expect(statSync(vaultPath(dir)).mode & 0o777).toBe(0o600);
  });

  test('put replaces an existing secret', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('token', 'first');
    await vault.put('token', 'second');
    expect(vault.list()).toEqual(['token']);
    expect(text((await SecretVault.open(keyring, vaultPath(dir))).get('token'))).toBe('second');
  });

  test('delete removes the secret', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('keep', 'k');
    await vault.put('drop', 'DROPPED-SECRET-VALUE');
    await vault.delete('drop');
    expect(vault.list()).toEqual(['keep']);
    expect(() => vault.get('drop')).toThrow(expect.objectContaining({ code: 'E_NOT_FOUND' }));
    expect(await errorCodeOf(vault.delete('drop'))).toBe('E_NOT_FOUND');
    const reopened = await SecretVault.open(keyring, vaultPath(dir));
    expect(reopened.list()).toEqual(['keep']);
    expect(text(reopened.get('keep'))).toBe('k');
  });

  test('invalid names and sizes are rejected', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    expect(await errorCodeOf(vault.put('', 'x'))).toBe('E_INVALID_PARAMS');
    expect(await errorCodeOf(vault.put('line\nbreak', 'x'))).toBe('E_INVALID_PARAMS');
    expect(await errorCodeOf(vault.put('big', new Uint8Array(16 * 1024 + 1)))).toBe('E_INVALID_PARAMS');
    expect(vault.list()).toEqual([]);
    await vault.put('ok', 'x');
    expect(vault.list()).toEqual(['ok']);
  });

  test('every flipped byte is E_INTEGRITY', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('a', 'alpha');
    await vault.put('b', 'beta');
    const original = readBytes(vaultPath(dir));
    const codes = new Set<string>();
    for (let offset = 0; offset < original.length; offset++) {
      const damaged = new Uint8Array(original);
      damaged[offset] ^= 0x01;
      writeFileSync(vaultPath(dir), damaged);
      codes.add(await errorCodeOf(SecretVault.open(keyring, vaultPath(dir))));
    }
    expect([...codes]).toEqual(['E_INTEGRITY']);
    writeFileSync(vaultPath(dir), original);
    expect(text((await SecretVault.open(keyring, vaultPath(dir))).get('b'))).toBe('beta');
  });

  test('every truncation is E_INTEGRITY', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('a', 'alpha');
    const original = readBytes(vaultPath(dir));
    const codes = new Set<string>();
    for (let length = 0; length < original.length; length++) {
      writeFileSync(vaultPath(dir), original.subarray(0, length));
      codes.add(await errorCodeOf(SecretVault.open(keyring, vaultPath(dir))));
    }
    expect([...codes]).toEqual(['E_INTEGRITY']);
  });

  test('vault of another keyring is E_INTEGRITY', async () => {
    const otherDir = makeTempDir();
    const other = await createTestKeyring(otherDir, 'pw');
    try {
      const mine = await SecretVault.open(keyring, vaultPath(dir));
      await mine.put('mine', 'one');
      const theirs = await SecretVault.open(other, vaultPath(otherDir));
      await theirs.put('theirs', 'two');

      // Swap the two vault files; each keyring records the same revision (1).
      const swapped = join(dir, 'swap.tmp');
      copyFileSync(vaultPath(dir), swapped);
      copyFileSync(vaultPath(otherDir), vaultPath(dir));
      copyFileSync(swapped, vaultPath(otherDir));
      unlinkSync(swapped);

      expect(await errorCodeOf(SecretVault.open(keyring, vaultPath(dir)))).toBe('E_INTEGRITY');
      expect(await errorCodeOf(SecretVault.open(other, vaultPath(otherDir)))).toBe('E_INTEGRITY');
    } finally {
      other.lock();
      removeDir(otherDir);
    }
  });

  test('older copy of the vault is E_INTEGRITY', async () => {
    // The keyring's MAC'd counter records the vault revision, so an older vault file no longer matches.
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('api-key', 'revoked-key');
    const older = readBytes(vaultPath(dir));
    await vault.delete('api-key');
    await vault.put('api-key', 'current-key');

    writeFileSync(vaultPath(dir), older);
    expect(await errorCodeOf(SecretVault.open(keyring, vaultPath(dir)))).toBe('E_INTEGRITY');
  });

  test('missing vault with recorded revision is E_INTEGRITY', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('x', 'y');
    unlinkSync(vaultPath(dir));
    expect(await errorCodeOf(SecretVault.open(keyring, vaultPath(dir)))).toBe('E_INTEGRITY');
  });

  test('NOTE: rollback of keyring and vault together opens', async () => {
    // Documents the limit: both files restored together are a consistent older profile, and only a
    // counter kept outside the profile could tell. The older content is what opens.
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('api-key', 'old-value');
    const olderKeyring = readBytes(keyringPath(dir));
    const olderVault = readBytes(vaultPath(dir));
    await vault.put('api-key', 'new-value');
    keyring.lock();

    writeFileSync(keyringPath(dir), olderKeyring);
    writeFileSync(vaultPath(dir), olderVault);
    keyring = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
    expect(text((await SecretVault.open(keyring, vaultPath(dir))).get('api-key'))).toBe('old-value');
  });

  test('older keyring with newer vault is E_INTEGRITY', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('a', '1');
    const olderKeyring = readBytes(keyringPath(dir));
    await vault.put('b', '2');
    await vault.put('c', '3');
    keyring.lock();

    writeFileSync(keyringPath(dir), olderKeyring);
    keyring = await Keyring.open(keyringPath(dir), 'pw', TEST_OPTIONS);
    expect(await errorCodeOf(SecretVault.open(keyring, vaultPath(dir)))).toBe('E_INTEGRITY');
  });

  test('vault rekey, reencrypt and retire', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('a', 'alpha');
    await keyring.rekey('vault');
    // Still readable through generation 1 before re-encryption.
    expect(text(vault.get('a'))).toBe('alpha');
    await vault.reencrypt();
    await keyring.retireGenerationsBefore('vault', 2);
    expect(keyring.generations('vault')).toEqual([2]);
    expect(text(vault.get('a'))).toBe('alpha');
    expect(text((await SecretVault.open(keyring, vaultPath(dir))).get('a'))).toBe('alpha');
  });

  test('vault survives a password change', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('a', 'alpha');
    await keyring.changePassword('pw', 'pw2');
    keyring.lock();
    keyring = await Keyring.open(keyringPath(dir), 'pw2', TEST_OPTIONS);
    expect(text((await SecretVault.open(keyring, vaultPath(dir))).get('a'))).toBe('alpha');
  });

  test('locked keyring makes the vault unusable', async () => {
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('a', 'alpha');
    keyring.lock();
    expect(() => vault.get('a')).toThrow(expect.objectContaining({ code: 'E_SESSION_INVALID' }));
    expect(await errorCodeOf(vault.put('b', 'beta'))).toBe('E_SESSION_INVALID');
  });
});
