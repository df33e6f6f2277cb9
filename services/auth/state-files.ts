/**
 * The two files auth keeps in its state directory: the profile record (that a profile exists and
 * when it was created) and the lockout record (consecutive failures and lock end). Neither contains
 * anything derived from the password: the storage service's keyring is the one password verifier. Both are small JSON files written atomically with
 * mode 0600. A file that exists but does not parse is an error, never treated as absent, so a
 * damaged lockout record cannot reset the failure counter.
 */
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import { ensurePrivateDir, readFileCapped, writeFileAtomic } from '../runtime/atomic-file';

const PROFILE_FILE = 'profile.json';
const LOCKOUT_FILE = 'lockout.json';
const MAX_STATE_FILE_BYTES = 64 * 1024;

export interface ProfileRecord {
  version: 2;
  /** Epoch milliseconds. */
  createdAt: number;
}

export interface LockoutRecord {
  version: 1;
  /** Consecutive failed unlocks since the last success or expired lock. */
  failures: number;
  /** Epoch milliseconds at which the lock ends, or null when not locked. */
  lockedUntil: number | null;
}

export const EMPTY_LOCKOUT: LockoutRecord = { version: 1, failures: 0, lockedUntil: null };

function corrupt(file: string): BacktestrError {
  return new BacktestrError('E_INTERNAL', `auth state file ${file} is corrupt; restore it from a backup or remove the profile`, { file });
}

function parseJson(file: string, bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new BacktestrError('E_INTERNAL', `auth state file ${file} is not valid JSON`, { file }, { cause: error });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw corrupt(file);
  return value as Record<string, unknown>;
}

export class AuthStateFiles {
  constructor(private readonly stateDir: string) {}

  async readProfile(): Promise<ProfileRecord | null> {
    const bytes = await readFileCapped(path.join(this.stateDir, PROFILE_FILE), MAX_STATE_FILE_BYTES);
    if (bytes === null) return null;

    const value = parseJson(PROFILE_FILE, bytes);
    if (value.version === 1) {
      // Version 1 kept an Argon2id hash beside a plain database. Unlocking it would need that hash
      // as a second password verifier, which this version removed on purpose.
      throw new BacktestrError('E_PROFILE_MISSING', 'the profile was created by a version without encryption at rest and cannot be unlocked; create a new profile in an empty directory', { file: PROFILE_FILE });
    }
    if (value.version !== 2 || !Number.isSafeInteger(value.createdAt)) throw corrupt(PROFILE_FILE);
    return { version: 2, createdAt: value.createdAt as number };
  }

  /** Writes the profile only if none exists; throws E_PROFILE_EXISTS otherwise, also across processes. */
  async createProfile(profile: ProfileRecord): Promise<void> {
    await ensurePrivateDir(this.stateDir);
    try {
      await writeFileAtomic(path.join(this.stateDir, PROFILE_FILE), JSON.stringify(profile), { exclusive: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new BacktestrError('E_PROFILE_EXISTS', 'a profile already exists in this profile directory', {}, { cause: error });
      }
      throw error;
    }
  }

  async readLockout(): Promise<LockoutRecord> {
    const bytes = await readFileCapped(path.join(this.stateDir, LOCKOUT_FILE), MAX_STATE_FILE_BYTES);
    if (bytes === null) return EMPTY_LOCKOUT;

    const value = parseJson(LOCKOUT_FILE, bytes);
    const failuresValid = Number.isSafeInteger(value.failures) && (value.failures as number) >= 0;
    const lockedUntilValid = value.lockedUntil === null || Number.isSafeInteger(value.lockedUntil);
    if (value.version !== 1 || !failuresValid || !lockedUntilValid) throw corrupt(LOCKOUT_FILE);
    return { version: 1, failures: value.failures as number, lockedUntil: value.lockedUntil as number | null };
  }

  async writeLockout(record: LockoutRecord): Promise<void> {
    await ensurePrivateDir(this.stateDir);
    await writeFileAtomic(path.join(this.stateDir, LOCKOUT_FILE), JSON.stringify(record));
  }
}
