/**
 * Secrets vault: named secrets (for example a broker's API key), each sealed under its own random
 * key, which the keyring's 'vault' data key wraps. The vault file (layout in vault-format.ts) is
 * rewritten atomically on every change, and its revision is mirrored in a counter under the
 * keyring's MAC, so an older copy of the vault file is detected.
 *
 * Deleting a secret removes its wrapped key and sealed value from the new file (crypto-shredding).
 * NOTE: on SSDs (wear levelling) and copy-on-write file systems (btrfs, ZFS, APFS) the blocks of
 * earlier vault files can survive on the device. Such a copy still opens with the current keyring
 * and password, because the 'vault' key is unchanged. Rekeying 'vault', calling `reencrypt()` and
 * retiring the old generation raises the bar to also recovering an old keyring copy and knowing
 * the password that was valid for it.
 *
 * NOTE: restoring an older copy of the keyring and the vault together is not detected: the only
 * record of the expected revision lives in the keyring itself. Detecting it needs a counter
 * outside the profile directory (an OS keystore or a TPM monotonic counter).
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { BacktestrError } from '../../../protocol/errors';
import { SerialQueue } from '../../runtime/serial-queue';
import { associatedData, open, seal } from './aead';
import { readFileCapped, removeStaleTempFiles, writeFileAtomic, type AtomicWriteStep } from '../../runtime/atomic-file';
import { constantTimeEqual, fromHex, wipe } from './bytes';
import { DATA_KEY_SIZE, type DataKey, type Keyring } from './keyring';
import {
  MAX_NAME_LENGTH, MAX_SECRET_BYTES, MAX_SECRETS, MAX_VAULT_BYTES, SECRET_ID_SIZE, decodeVaultBody, decodeVaultFile,
  encodeVaultBody, encodeVaultHeader, vaultIntegrityError, type VaultEntry, type VaultHeader,
} from './vault-format';

/** Keyring purpose whose data key wraps the per-secret keys. */
export const VAULT_PURPOSE = 'vault';
/** Keyring counter that records the vault file's revision. */
export const VAULT_REVISION_COUNTER = 'vault-revision';

export interface VaultOptions {
  /** Called after each step of every write of the vault file; for crash tests. */
  onWriteStep?: (step: AtomicWriteStep) => void;
}

export class SecretVault {
  /** Orders changes one at a time, in call order. */
  private readonly queue = new SerialQueue();

  private constructor(
    private readonly keyring: Keyring,
    private readonly file: string,
    private readonly options: VaultOptions,
    private entries: VaultEntry[],
    private currentRevision: number,
  ) {}

  /**
   * Opens the vault file beside an unlocked keyring, or an empty vault when neither the file nor a
   * recorded revision exists. Raises E_INTEGRITY for a changed, truncated, foreign (sealed for
   * another keyring) or older file, and for a missing file whose revision the keyring records.
   */
  static async open(keyring: Keyring, file: string, options: VaultOptions = {}): Promise<SecretVault> {
    const fileName = path.basename(file);
    const recorded = keyring.counter(VAULT_REVISION_COUNTER);
    const bytes = await readFileCapped(file, MAX_VAULT_BYTES);
    if (bytes === null) {
      if (recorded > 0) throw vaultIntegrityError(fileName, `file is missing but the keyring records revision ${recorded}`);
      return new SecretVault(keyring, file, options, [], 0);
    }

    const { header, headerBytes, sealedBody } = decodeVaultFile(bytes, fileName);
    if (!constantTimeEqual(header.keyringId, keyring.keyringIdBytes)) throw vaultIntegrityError(fileName, 'sealed for another keyring');
    const vaultKey = vaultKeyOf(keyring, header.generation, fileName);
    if (!constantTimeEqual(header.keyId, fromHex(vaultKey.keyId))) throw vaultIntegrityError(fileName, 'key id does not match the keyring');

    const body = open(vaultKey.key, sealedBody, bodyAssociatedData(headerBytes));
    if (body === null) throw vaultIntegrityError(fileName, 'authentication failed');
    const entries = decodeVaultBody(body, fileName);

    // The vault file is written before the keyring counter, so a crash between the two leaves
    // the file exactly one revision ahead. Any other difference is a rollback or a foreign copy.
    if (header.revision < recorded) {
      throw vaultIntegrityError(fileName, `older copy: revision ${header.revision}, the keyring records ${recorded}`);
    }
    if (header.revision > recorded + 1) {
      throw vaultIntegrityError(fileName, `revision ${header.revision} is ahead of the keyring's ${recorded}: the keyring was replaced by an older copy`);
    }
    if (header.revision === recorded + 1) await keyring.setCounter(VAULT_REVISION_COUNTER, header.revision);

    await removeStaleTempFiles(file);
    return new SecretVault(keyring, file, options, entries, header.revision);
  }

  get revision(): number {
    return this.currentRevision;
  }

  /** Names of the stored secrets, sorted. Values are never listed. */
  list(): string[] {
    return this.entries.map((entry) => entry.name).sort();
  }

  has(name: string): boolean {
    return this.entries.some((entry) => entry.name === name);
  }

  /** Decrypts one secret. The caller owns the returned buffer and should wipe it after use. */
  get(name: string): Uint8Array {
    const entry = this.entries.find((candidate) => candidate.name === name);
    if (!entry) throw new BacktestrError('E_NOT_FOUND', `no secret named ${JSON.stringify(name)}`);
    const fileName = path.basename(this.file);
    const secretKey = this.unwrapSecretKey(entry, fileName);
    try {
      const value = open(secretKey, entry.sealedValue, valueAssociatedData(this.keyring.keyringIdBytes, entry));
      if (value === null) throw vaultIntegrityError(fileName, `secret ${JSON.stringify(name)} does not authenticate`);
      return value;
    } finally {
      wipe(secretKey);
    }
  }

  /** Stores or replaces a secret; a replaced secret's old key is destroyed like a deleted one's. */
  async put(name: string, value: Uint8Array | string): Promise<void> {
    checkSecretName(name);
    const plaintext = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    if (plaintext.length > MAX_SECRET_BYTES) {
      throw new BacktestrError('E_INVALID_PARAMS', `secret ${JSON.stringify(name)} is ${plaintext.length} bytes, the limit is ${MAX_SECRET_BYTES}`);
    }
    try {
      await this.queue.run(async () => {
        const others = this.entries.filter((entry) => entry.name !== name);
        if (others.length >= MAX_SECRETS) throw new BacktestrError('E_INVALID_PARAMS', `the vault can contain at most ${MAX_SECRETS} secrets; delete one first`);
        await this.write([...others, this.sealEntry(name, plaintext)]);
      });
    } finally {
      // Only the copy made from a string is ours to wipe; a caller's buffer stays the caller's.
      if (typeof value === 'string') wipe(plaintext);
    }
  }

  /** Deletes a secret by writing a vault file without its wrapped key and sealed value. */
  async delete(name: string): Promise<void> {
    await this.queue.run(async () => {
      if (!this.has(name)) throw new BacktestrError('E_NOT_FOUND', `no secret named ${JSON.stringify(name)}`);
      await this.write(this.entries.filter((entry) => entry.name !== name));
    });
  }

  /**
   * Rewrites the vault under the keyring's current 'vault' generation, re-wrapping every secret
   * key. Run it after `keyring.rekey('vault')` and before retiring the older generations.
   */
  async reencrypt(): Promise<void> {
    await this.queue.run(() => this.write(this.entries));
  }

  private sealEntry(name: string, plaintext: Uint8Array): VaultEntry {
    const vaultKey = this.keyring.currentKey(VAULT_PURPOSE);
    const keyringId = this.keyring.keyringIdBytes;
    const secretId = new Uint8Array(randomBytes(SECRET_ID_SIZE));
    const secretKey = new Uint8Array(randomBytes(DATA_KEY_SIZE));
    try {
      const identity = { name, secretId, generation: vaultKey.generation };
      return {
        ...identity,
        wrappedKey: seal(vaultKey.key, secretKey, secretKeyAssociatedData(keyringId, identity)),
        sealedValue: seal(secretKey, plaintext, valueAssociatedData(keyringId, identity)),
      };
    } finally {
      wipe(secretKey);
    }
  }

  private unwrapSecretKey(entry: VaultEntry, fileName: string): Uint8Array {
    const vaultKey = vaultKeyOf(this.keyring, entry.generation, fileName);
    const secretKey = open(vaultKey.key, entry.wrappedKey, secretKeyAssociatedData(this.keyring.keyringIdBytes, entry));
    if (secretKey === null) throw vaultIntegrityError(fileName, `key of secret ${JSON.stringify(entry.name)} does not authenticate`);
    return secretKey;
  }

  /**
   * Seals `entries` as the next revision, replaces the file atomically, then records the revision
   * in the keyring. Entries wrapped under an older vault key generation are re-wrapped first.
   */
  private async write(entries: VaultEntry[]): Promise<void> {
    const vaultKey = this.keyring.currentKey(VAULT_PURPOSE);
    const keyringId = this.keyring.keyringIdBytes;
    const fileName = path.basename(this.file);
    const current = entries.map((entry) => (entry.generation === vaultKey.generation ? entry : this.rewrap(entry, vaultKey, keyringId, fileName)));

    const header: VaultHeader = { keyringId, keyId: fromHex(vaultKey.keyId), generation: vaultKey.generation, revision: this.currentRevision + 1 };
    const headerBytes = encodeVaultHeader(header);
    const body = encodeVaultBody(current);
    const sealedBody = seal(vaultKey.key, body, bodyAssociatedData(headerBytes));
    wipe(body);
    const file = new Uint8Array(headerBytes.length + sealedBody.length);
    file.set(headerBytes, 0);
    file.set(sealedBody, headerBytes.length);

    await removeStaleTempFiles(this.file);
    await writeFileAtomic(this.file, file, { onStep: this.options.onWriteStep });
    this.entries = current;
    this.currentRevision = header.revision;
    await this.keyring.setCounter(VAULT_REVISION_COUNTER, header.revision);
  }

  private rewrap(entry: VaultEntry, vaultKey: DataKey, keyringId: Uint8Array, fileName: string): VaultEntry {
    const secretKey = this.unwrapSecretKey(entry, fileName);
    try {
      const moved = { ...entry, generation: vaultKey.generation };
      return { ...moved, wrappedKey: seal(vaultKey.key, secretKey, secretKeyAssociatedData(keyringId, moved)) };
    } finally {
      wipe(secretKey);
    }
  }

}

function vaultKeyOf(keyring: Keyring, generation: number, fileName: string): DataKey {
  if (!keyring.generations(VAULT_PURPOSE).includes(generation)) {
    throw vaultIntegrityError(fileName, `sealed with vault key generation ${generation}, which the keyring does not contain`);
  }
  return keyring.keyFor(VAULT_PURPOSE, generation);
}

function checkSecretName(name: string): void {
  // Control characters are rejected so that a name can never forge a line in a log or a listing.
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(name)) {
    throw new BacktestrError('E_INVALID_PARAMS', `secret name must be 1 to ${MAX_NAME_LENGTH} characters without control characters`);
  }
}

function bodyAssociatedData(headerBytes: Uint8Array): Uint8Array {
  return associatedData('backtestr vault body v1', headerBytes);
}

function secretKeyAssociatedData(keyringId: Uint8Array, entry: Pick<VaultEntry, 'name' | 'secretId' | 'generation'>): Uint8Array {
  return associatedData('backtestr vault secret key v1', keyringId, entry.secretId, entry.name, entry.generation);
}

function valueAssociatedData(keyringId: Uint8Array, entry: Pick<VaultEntry, 'name' | 'secretId'>): Uint8Array {
  return associatedData('backtestr vault secret value v1', keyringId, entry.secretId, entry.name);
}
