/**
 * Canary: after storing a secret and changing the password, no file in the profile directory
 * contains the secret, either password, the data keys or either KEK, in any common encoding.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring, SecretVault } from '../../../services/storage/crypto';
import { deriveKek } from '../../../services/storage/crypto/kdf';
import { TEST_KDF, TEST_OPTIONS, createTestKeyring, keyringPath, listFiles, makeTempDir, readBytes, removeDir, vaultPath } from './helpers';

const SALT_OFFSET = 34;
const SALT_SIZE = 16;

/** Returns the canary in the encodings a leak would most likely use. */
function encodings(value: Uint8Array | string): Buffer[] {
  const raw = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const forms = [raw, Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('base64')), Buffer.from(raw.toString('base64url'))];
  if (typeof value === 'string') forms.push(Buffer.from(value, 'utf16le'));
  return forms;
}

describe('canary scan', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => removeDir(dir));

  test('no secret, password or key in any file', async () => {
    const oldPassword = 'canary-old-password-7c1e';
    const newPassword = 'canary-new-password-93ab';
    const secret = 'CANARY-BROKER-KEY-5f0d2a91';

    const keyring = await createTestKeyring(dir, oldPassword);
    const oldKek = await deriveKek(oldPassword, readBytes(keyringPath(dir)).slice(SALT_OFFSET, SALT_OFFSET + SALT_SIZE), TEST_KDF);
    const vault = await SecretVault.open(keyring, vaultPath(dir));
    await vault.put('broker-api-key', secret);
    await vault.put('shredded', 'CANARY-DELETED-SECRET-11aa');
    await vault.delete('shredded');
    await keyring.changePassword(oldPassword, newPassword);
    const dataKeys = [keyring.currentKey('store').key.slice(), keyring.currentKey('vault').key.slice()];
    const keyringId = keyring.keyringIdBytes;
    keyring.lock();

    const reopened = await Keyring.open(keyringPath(dir), newPassword, TEST_OPTIONS);
    const newKek = await deriveKek(newPassword, readBytes(keyringPath(dir)).slice(SALT_OFFSET, SALT_OFFSET + SALT_SIZE), TEST_KDF);
    expect(new TextDecoder().decode((await SecretVault.open(reopened, vaultPath(dir))).get('broker-api-key'))).toBe(secret);
    reopened.lock();

    const canaries: [string, Uint8Array | string][] = [
      ['secret', secret],
      ['deleted secret', 'CANARY-DELETED-SECRET-11aa'],
      ['old password', oldPassword],
      ['new password', newPassword],
      ['store key', dataKeys[0]],
      ['vault key', dataKeys[1]],
      ['old KEK', oldKek],
      ['new KEK', newKek],
    ];
    const files = listFiles(dir);
    expect(files).toEqual(['keyring.bin', 'vault.bin']);
    const found: string[] = [];
    for (const file of files) {
      const content = readFileSync(join(dir, file));
      for (const [label, value] of canaries) {
        if (encodings(value).some((form) => content.includes(form))) found.push(`${label} in ${file}`);
      }
    }
    expect(found).toEqual([]);
    // Control: the scan does find bytes that are meant to be stored in clear.
    expect(readFileSync(keyringPath(dir)).includes(Buffer.from(keyringId))).toBe(true);
  });
});
