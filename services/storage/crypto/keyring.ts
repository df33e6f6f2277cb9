/**
 * The keyring: random 256-bit data keys, one or more generations per named purpose ('store',
 * 'vault', ...), wrapped under a KEK that Argon2id derives from the password. Layout in
 * keyring-format.ts.
 *
 * Changing the password re-wraps the data keys and rewrites this one file, so no data is
 * re-encrypted. Every change is a single atomic file replacement: after a crash at any moment the
 * file on disk is the complete old keyring or the complete new one, never a mix.
 *
 * NOTE: the in-memory state assumes one process owns the file. Two processes changing the same
 * keyring would each replace the other's version (last writer wins).
 */
import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import * as path from 'node:path';
import { BacktestrError } from '../../../protocol/errors';
import { SerialQueue } from '../../runtime/serial-queue';
import { readFileCapped, removeStaleTempFiles, writeFileAtomic, type AtomicWriteStep } from '../../runtime/atomic-file';
import { constantTimeEqual, toHex, wipe } from './bytes';
import { calibrateArgon2, checkArgon2Params, deriveKek, newSalt, type Argon2Params, type CalibrateOptions, type KdfPolicy } from './kdf';
import {
  KEY_ID_SIZE, KEYRING_ID_SIZE, MAX_COUNTERS, MAX_KEYRING_BYTES, MAX_WRAPPED_KEYS, NAME_PATTERN, decodeKeyring,
  encodeHeader, encodeMacInput, finishKeyringFile, integrityError, type KeyringHeader, type KeyringRecord,
} from './keyring-format';
import {
  computeKeyCheck, deriveSubkeys, hmacSha256, unwrapDataKey, verifyMac, wipeSubkeys, wrapDataKey, type KekSubkeys,
} from './keyring-keys';

export const DATA_KEY_SIZE = 32;

/**
 * One data key. `key` is the keyring's own buffer: it is zeroed when the keyring locks, so callers
 * must not keep it (or copies of it) past `lock()`.
 */
export interface DataKey {
  /** Random id, 32 hex characters, to be written into the headers of files sealed with the key. */
  readonly keyId: string;
  readonly purpose: string;
  /** 1 for a purpose's first key, raised by one with every rekey. */
  readonly generation: number;
  readonly key: Uint8Array;
}

export interface KeyringOptions extends KdfPolicy {
  /** Called after each step of every write of the keyring file; for crash tests. */
  onWriteStep?: (step: AtomicWriteStep) => void;
}

export interface CreateKeyringOptions extends KeyringOptions {
  /** Purposes that get a first data key. */
  purposes: string[];
  /** Argon2id parameters; when absent, `calibrateArgon2(calibration)` picks them on this machine. */
  kdf?: Argon2Params;
  calibration?: CalibrateOptions;
}

export interface ChangePasswordOptions {
  /** Argon2id parameters for the new password; default: the current ones. */
  kdf?: Argon2Params;
}

interface LiveKey {
  keyId: Uint8Array;
  purpose: string;
  generation: number;
  key: Uint8Array;
  wrapped: Uint8Array;
}

interface KeyringState {
  header: KeyringHeader;
  keyCheck: Uint8Array;
  revision: number;
  keys: LiveKey[];
  counters: Map<string, number>;
}

export class Keyring {
  private kek: Uint8Array;
  private subkeys: KekSubkeys;
  private state: KeyringState;
  private isLocked = false;
  /** Orders changes one at a time, in call order. */
  private readonly queue = new SerialQueue();

  private constructor(
    private readonly file: string,
    private readonly options: KeyringOptions,
    kek: Uint8Array,
    subkeys: KekSubkeys,
    state: KeyringState,
  ) {
    this.kek = kek;
    this.subkeys = subkeys;
    this.state = state;
  }

  /** Creates a new keyring file; fails with E_PROFILE_EXISTS if `file` already exists. */
  static async create(file: string, password: string, options: CreateKeyringOptions): Promise<Keyring> {
    if (await exists(file)) {
      throw new BacktestrError('E_PROFILE_EXISTS', `keyring file ${path.basename(file)} already exists`, { file: path.basename(file) });
    }
    const purposes = [...new Set(options.purposes)];
    purposes.forEach(checkName);
    const kdf = options.kdf ?? (await calibrateArgon2(options.calibration)).params;
    checkKdfParams(kdf, options);

    const header: KeyringHeader = { keyringId: new Uint8Array(randomBytes(KEYRING_ID_SIZE)), kdf, salt: newSalt() };
    const kek = await deriveKek(password, header.salt, kdf);
    const subkeys = deriveSubkeys(kek, header.keyringId);
    const keys = purposes.map((purpose) => newLiveKey(subkeys, header.keyringId, purpose, 1));
    const state: KeyringState = { header, keyCheck: computeKeyCheck(subkeys, encodeHeader(header)), revision: 1, keys, counters: new Map() };

    const keyring = new Keyring(file, options, kek, subkeys, state);
    try {
      await keyring.writeState(state, subkeys);
    } catch (error) {
      keyring.lock();
      throw error;
    }
    return keyring;
  }

  /**
   * Opens and verifies a keyring. Checks run in this order: size cap, checksum and structure
   * (E_INTEGRITY), Argon2id parameter bounds (E_INTEGRITY), key check value (E_WRONG_PASSWORD),
   * MAC over the whole file (E_INTEGRITY), then each wrapped key (E_INTEGRITY).
   *
   * NOTE: a wrong password and a header rewritten with a recomputed checksum cannot be told
   * apart; both fail the key check value and report E_WRONG_PASSWORD. Anyone who can edit the
   * file can always make it unusable. What they cannot do is get a changed file accepted.
   */
  static async open(file: string, password: string, options: KeyringOptions = {}): Promise<Keyring> {
    const fileName = path.basename(file);
    const bytes = await readFileCapped(file, MAX_KEYRING_BYTES);
    if (bytes === null) throw new BacktestrError('E_NOT_FOUND', `keyring file ${fileName} not found`, { file: fileName });

    const { record, headerBytes, macInput, mac } = decodeKeyring(bytes, fileName);
    const paramsProblem = checkArgon2Params(record.header.kdf, options);
    if (paramsProblem) throw integrityError(fileName, paramsProblem);

    const kek = await deriveKek(password, record.header.salt, record.header.kdf);
    const subkeys = deriveSubkeys(kek, record.header.keyringId);
    let keys: LiveKey[] = [];
    try {
      if (!constantTimeEqual(computeKeyCheck(subkeys, headerBytes), record.keyCheck)) {
        throw new BacktestrError('E_WRONG_PASSWORD', `wrong password for keyring ${fileName}`, { file: fileName });
      }
      if (!verifyMac(subkeys, macInput, mac)) throw integrityError(fileName, 'MAC mismatch');
      keys = unwrapAll(record, subkeys, fileName);
    } catch (error) {
      wipe(kek);
      wipeSubkeys(subkeys);
      throw error;
    }

    const keyring = new Keyring(file, options, kek, subkeys, { ...record, keys });
    // Only after the password proved right, so a failed attempt changes nothing on disk.
    await removeStaleTempFiles(file);
    return keyring;
  }

  get locked(): boolean {
    return this.isLocked;
  }

  /** Random keyring id, 32 hex characters. Files sealed with this keyring's keys record it. */
  get id(): string {
    return toHex(this.unlocked().header.keyringId);
  }

  get keyringIdBytes(): Uint8Array {
    return this.unlocked().header.keyringId.slice();
  }

  /** Raised by one with every rewrite of the file. */
  get revision(): number {
    return this.unlocked().revision;
  }

  get kdfParams(): Argon2Params {
    return { ...this.unlocked().header.kdf };
  }

  purposes(): string[] {
    return [...new Set(this.unlocked().keys.map((key) => key.purpose))].sort();
  }

  /** Generations kept for `purpose`, ascending. */
  generations(purpose: string): number[] {
    return this.keysOf(purpose).map((key) => key.generation);
  }

  /** The newest generation's key: the one to seal new data with. */
  currentKey(purpose: string): DataKey {
    const keys = this.keysOf(purpose);
    return toDataKey(keys[keys.length - 1]);
  }

  /** The key of one generation: the one to open data that records this generation. */
  keyFor(purpose: string, generation: number): DataKey {
    const key = this.keysOf(purpose).find((candidate) => candidate.generation === generation);
    if (!key) {
      throw new BacktestrError('E_NOT_FOUND', `keyring has no generation ${generation} for purpose ${purpose}`, { purpose, generation });
    }
    return toDataKey(key);
  }

  /** Value of a monotonic counter stored in the keyring (0 if never set). */
  counter(name: string): number {
    return this.unlocked().counters.get(name) ?? 0;
  }

  /**
   * Stores a counter value under the keyring's MAC. Files kept beside the keyring record their
   * revision here, so that an older copy of such a file is detected. Values never go down.
   */
  async setCounter(name: string, value: number): Promise<void> {
    checkName(name);
    if (!Number.isSafeInteger(value) || value < 0) throw new BacktestrError('E_INVALID_PARAMS', `counter ${name} must be a non-negative integer, got ${value}`);
    await this.queue.run(async () => {
      const state = this.unlocked();
      const current = state.counters.get(name) ?? 0;
      if (value < current) throw new BacktestrError('E_INTERNAL', `counter ${name} cannot go down from ${current} to ${value}`, { name });
      if (value === current && state.counters.has(name)) return;
      if (!state.counters.has(name) && state.counters.size >= MAX_COUNTERS) {
        throw new BacktestrError('E_INVALID_PARAMS', `keyring can contain at most ${MAX_COUNTERS} counters`);
      }
      const counters = new Map(state.counters).set(name, value);
      await this.commit({ ...state, revision: state.revision + 1, counters }, this.subkeys);
    });
  }

  /** Adds a purpose with a first (generation 1) data key. */
  async addPurpose(purpose: string): Promise<DataKey> {
    checkName(purpose);
    return this.queue.run(async () => {
      const state = this.unlocked();
      if (state.keys.some((key) => key.purpose === purpose)) {
        throw new BacktestrError('E_INVALID_PARAMS', `keyring already has purpose ${purpose}`, { purpose });
      }
      return this.addKey(state, purpose, 1);
    });
  }

  /**
   * Adds a fresh data key for `purpose` as a new generation and returns it. Older generations stay
   * until `retireGenerationsBefore` is called, so data sealed with them stays readable while the
   * caller re-encrypts it.
   */
  async rekey(purpose: string): Promise<DataKey> {
    return this.queue.run(async () => {
      const state = this.unlocked();
      const keys = this.keysOf(purpose);
      return this.addKey(state, purpose, keys[keys.length - 1].generation + 1);
    });
  }

  /**
   * Destroys the keys of every generation of `purpose` below `generation`. Call it only once
   * nothing sealed with those generations remains: their data becomes unreadable.
   */
  async retireGenerationsBefore(purpose: string, generation: number): Promise<void> {
    await this.queue.run(async () => {
      const state = this.unlocked();
      const keys = this.keysOf(purpose);
      if (!keys.some((key) => key.generation === generation)) {
        throw new BacktestrError('E_NOT_FOUND', `keyring has no generation ${generation} for purpose ${purpose}`, { purpose, generation });
      }
      const retired = keys.filter((key) => key.generation < generation);
      if (retired.length === 0) return;
      await this.commit({ ...state, revision: state.revision + 1, keys: state.keys.filter((key) => !retired.includes(key)) }, this.subkeys);
      for (const key of retired) wipe(key.key);
    });
  }

  /**
   * Re-wraps every data key under a KEK derived from `newPassword` with a new salt. The data keys
   * and everything sealed with them stay unchanged. After it returns, only `newPassword` opens the
   * keyring; after a crash inside it, exactly one of the two passwords does.
   */
  async changePassword(currentPassword: string, newPassword: string, options: ChangePasswordOptions = {}): Promise<void> {
    await this.queue.run(async () => {
      const state = this.unlocked();
      const fileName = path.basename(this.file);

      if (!(await this.matchesKek(currentPassword, state))) {
        throw new BacktestrError('E_WRONG_PASSWORD', `wrong current password for keyring ${fileName}`, { file: fileName });
      }

      const kdf = options.kdf ?? state.header.kdf;
      checkKdfParams(kdf, this.options);
      const header: KeyringHeader = { keyringId: state.header.keyringId, kdf, salt: newSalt() };
      const newKek = await deriveKek(newPassword, header.salt, kdf);
      const newSubkeys = deriveSubkeys(newKek, header.keyringId);
      const keys = state.keys.map((key) => ({ ...key, wrapped: wrapDataKey(newSubkeys, key.key, bindingOf(header.keyringId, key)) }));
      const next: KeyringState = { ...state, header, keyCheck: computeKeyCheck(newSubkeys, encodeHeader(header)), revision: state.revision + 1, keys };

      try {
        await this.commit(next, newSubkeys);
      } catch (error) {
        wipe(newKek);
        wipeSubkeys(newSubkeys);
        throw error;
      }
      wipe(this.kek);
      wipeSubkeys(this.subkeys);
      this.kek = newKek;
      this.subkeys = newSubkeys;
    });
  }

  /**
   * Returns whether `password` opens this keyring, without reading the file or touching the data
   * keys. It derives a KEK with the stored salt and parameters (one full Argon2id run) and
   * compares it with the open keyring's KEK in constant time. It waits for any pending change, so
   * during a password change it checks against the new password.
   */
  async verifyPassword(password: string): Promise<boolean> {
    return this.queue.run(() => this.matchesKek(password, this.unlocked()));
  }

  /**
   * Zeroes the KEK, its subkeys and every data key, and makes every later call fail with
   * E_SESSION_INVALID. Buffers handed out as `DataKey.key` are zeroed too.
   * NOTE: see `wipe` in bytes.ts for what zeroing cannot guarantee in JavaScript.
   */
  lock(): void {
    if (this.isLocked) return;
    this.isLocked = true;
    wipe(this.kek);
    wipeSubkeys(this.subkeys);
    for (const key of this.state.keys) wipe(key.key);
    this.state = { ...this.state, keys: [] };
  }

  private async matchesKek(password: string, state: KeyringState): Promise<boolean> {
    const candidate = await deriveKek(password, state.header.salt, state.header.kdf);
    // A lock() during the derivation zeroed the KEK, so the check fails instead of comparing with zeros.
    const matches = !this.isLocked && constantTimeEqual(candidate, this.kek);
    wipe(candidate);
    return matches;
  }

  private async addKey(state: KeyringState, purpose: string, generation: number): Promise<DataKey> {
    if (state.keys.length >= MAX_WRAPPED_KEYS) throw new BacktestrError('E_INVALID_PARAMS', `keyring can contain at most ${MAX_WRAPPED_KEYS} keys; retire old generations first`);
    const key = newLiveKey(this.subkeys, state.header.keyringId, purpose, generation);
    try {
      await this.commit({ ...state, revision: state.revision + 1, keys: [...state.keys, key] }, this.subkeys);
    } catch (error) {
      wipe(key.key);
      throw error;
    }
    return toDataKey(key);
  }

  /** Writes `next` and makes it the current state only once it is durable. */
  private async commit(next: KeyringState, subkeys: KekSubkeys): Promise<void> {
    await this.writeState(next, subkeys);
    if (this.isLocked) {
      // lock() ran during the write: the new keys it could not see are zeroed here.
      for (const key of next.keys) wipe(key.key);
      throw lockedError();
    }
    this.state = next;
  }

  private async writeState(state: KeyringState, subkeys: KekSubkeys): Promise<void> {
    const record: KeyringRecord = { ...state, keys: state.keys.map(({ keyId, purpose, generation, wrapped }) => ({ keyId, purpose, generation, wrapped })) };
    const macInput = encodeMacInput(record);
    const bytes = finishKeyringFile(macInput, hmacSha256(subkeys.mac, macInput));
    await removeStaleTempFiles(this.file);
    await writeFileAtomic(this.file, bytes, { onStep: this.options.onWriteStep });
  }

  private keysOf(purpose: string): LiveKey[] {
    const keys = this.unlocked()
      .keys.filter((key) => key.purpose === purpose)
      .sort((a, b) => a.generation - b.generation);
    if (keys.length === 0) throw new BacktestrError('E_NOT_FOUND', `keyring has no purpose ${purpose}`, { purpose });
    return keys;
  }

  private unlocked(): KeyringState {
    if (this.isLocked) throw lockedError();
    return this.state;
  }

  /** Runs keyring changes one at a time, in call order. */
}

function lockedError(): BacktestrError {
  return new BacktestrError('E_SESSION_INVALID', 'keyring is locked; unlock the profile again');
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new BacktestrError('E_INVALID_PARAMS', `invalid purpose or counter name ${JSON.stringify(name)}: expected ${NAME_PATTERN}`);
  }
}

function checkKdfParams(kdf: Argon2Params, policy: KdfPolicy): void {
  const problem = checkArgon2Params(kdf, policy);
  if (problem) throw new BacktestrError('E_INVALID_PARAMS', problem);
}

function bindingOf(keyringId: Uint8Array, key: Pick<LiveKey, 'keyId' | 'purpose' | 'generation'>) {
  return { keyringId, keyId: key.keyId, purpose: key.purpose, generation: key.generation };
}

function newLiveKey(subkeys: KekSubkeys, keyringId: Uint8Array, purpose: string, generation: number): LiveKey {
  const key = { keyId: new Uint8Array(randomBytes(KEY_ID_SIZE)), purpose, generation, key: new Uint8Array(randomBytes(DATA_KEY_SIZE)) };
  return { ...key, wrapped: wrapDataKey(subkeys, key.key, bindingOf(keyringId, key)) };
}

function unwrapAll(record: KeyringRecord, subkeys: KekSubkeys, fileName: string): LiveKey[] {
  const keys: LiveKey[] = [];
  const seen = new Set<string>();
  try {
    for (const wrappedKey of record.keys) {
      const slot = `${wrappedKey.purpose}/${wrappedKey.generation}`;
      const id = toHex(wrappedKey.keyId);
      if (seen.has(slot) || seen.has(id)) throw integrityError(fileName, `repeated key ${slot}`);
      seen.add(slot).add(id);
      const key = unwrapDataKey(subkeys, wrappedKey.wrapped, bindingOf(record.header.keyringId, wrappedKey));
      if (key === null || key.length !== DATA_KEY_SIZE) throw integrityError(fileName, `wrapped key ${slot} does not authenticate`);
      keys.push({ ...wrappedKey, key });
    }
  } catch (error) {
    for (const key of keys) wipe(key.key);
    throw error;
  }
  return keys;
}

function toDataKey(key: LiveKey): DataKey {
  return { keyId: toHex(key.keyId), purpose: key.purpose, generation: key.generation, key: key.key };
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
