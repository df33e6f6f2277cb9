/**
 * The storage service's locked and unlocked states. The keyring is the profile's one password
 * verifier. While unlocked, this holds the open keyring, the open store and, once first used, the
 * secrets vault. Locking closes the store and zeroes every key.
 *
 * Changes of state (create, unlock, lock, password change, rekey) run one at a time, in arrival
 * order. Queries and secret reads run beside them and fail with E_SESSION_INVALID once locked.
 */
import * as path from 'node:path';
import { BacktestrError } from '../../protocol/errors';
import { checkPasswordPolicy } from '../../protocol/password-policy';
import type { ServiceContext } from '../runtime/types';
import { SerialQueue } from '../runtime/serial-queue';
import { Keyring, SecretVault, VAULT_PURPOSE, type Argon2Params } from './crypto';
import type { StorageDatabase } from './database';
import { reportIntegrityFailure } from './integrity-events';
import { closeStore, rekeyStore, STORE_PURPOSE } from './store';

export const KEYRING_FILE = 'keyring.bin';
export const VAULT_FILE = 'vault.bin';
export const KEYRING_PURPOSES = [STORE_PURPOSE, VAULT_PURPOSE] as const;
export type KeyringPurpose = (typeof KEYRING_PURPOSES)[number];

/** Argon2id parameters of keyrings created with `weakKdfForTests`: the smallest RFC 9106 allows for one lane. */
export const TEST_KDF: Readonly<Argon2Params> = Object.freeze({ memoryKiB: 64, timeCost: 1, parallelism: 1 });

export interface ProfileKeysOptions {
  /** See ServiceSettings.weakKdfForTests. */
  weakKdfForTests?: boolean;
}

/** Opens the store for an unlocked keyring and readies it (schema, file modes). */
export type OpenStore = (ctx: ServiceContext, keyring: Keyring) => Promise<StorageDatabase>;

interface Unlocked {
  keyring: Keyring;
  db: StorageDatabase;
  vault: Promise<SecretVault> | undefined;
}

export class ProfileKeys {
  private unlocked: Unlocked | undefined;
  /** Orders changes one at a time, in call order. */
  private readonly queue = new SerialQueue();

  constructor(
    private readonly options: ProfileKeysOptions,
    private readonly openStore: OpenStore,
  ) {}

  get isUnlocked(): boolean {
    return this.unlocked !== undefined;
  }

  /** Returns the open store; E_SESSION_INVALID while locked. */
  database(): StorageDatabase {
    return this.current().db;
  }

  /** Argon2id parameters of the open keyring, or null while locked. */
  kdfParams(): Argon2Params | null {
    return this.unlocked?.keyring.kdfParams ?? null;
  }

  /**
   * Creates the keyring with a 'store' and a 'vault' data key, then locks it again: the store
   * opens at the first unlock. Without `weakKdfForTests`, Argon2id is calibrated on this machine
   * (about 0.5 s per derivation, up to 256 MiB) and the result is stored in the keyring header.
   */
  create(ctx: ServiceContext, password: string): Promise<{ created: true; kdf: Argon2Params }> {
    checkPasswordPolicy(password);
    return this.queue.run(async () => {
      const weak = this.options.weakKdfForTests === true;
      const keyring = await Keyring.create(keyringFile(ctx), password, {
        purposes: [...KEYRING_PURPOSES],
        kdf: weak ? { ...TEST_KDF } : undefined,
        allowWeakKdfForTests: weak,
      });
      const kdf = keyring.kdfParams;
      keyring.lock();

      ctx.log.info({ event: 'keyring_created', ...kdf }, 'keyring created');
      ctx.securityEvent({ type: 'storage.keyring_created', severity: weak ? 'warning' : 'info', details: { ...kdf, weakKdfForTests: weak } });
      return { created: true, kdf };
    });
  }

  /**
   * Opens the keyring with `password` and then the store. When already unlocked (another client
   * session holds it open), checks `password` against the open keyring without reopening
   * anything. E_WRONG_PASSWORD when it does not match.
   */
  unlock(ctx: ServiceContext, password: string): Promise<{ unlocked: true; alreadyUnlocked: boolean }> {
    return this.queue.run(async () => {
      if (this.unlocked) {
        if (!(await this.unlocked.keyring.verifyPassword(password))) {
          throw new BacktestrError('E_WRONG_PASSWORD', `wrong password for keyring ${KEYRING_FILE}`, { file: KEYRING_FILE });
        }
        return { unlocked: true, alreadyUnlocked: true };
      }

      const keyring = await reportingIntegrity(ctx, openKeyring(keyringFile(ctx), password, this.options));
      let db: StorageDatabase;
      try {
        db = await this.openStore(ctx, keyring);
      } catch (error) {
        keyring.lock();
        throw error;
      }
      // The vault is verified now rather than on first use, so a changed or older vault file
      // stops the unlock and is reported at once, like the keyring and the store.
      let vault: SecretVault;
      try {
        vault = await reportingIntegrity(ctx, SecretVault.open(keyring, path.join(ctx.stateDir, VAULT_FILE)));
      } catch (error) {
        await closeStore(db);
        keyring.lock();
        throw error;
      }
      this.unlocked = { keyring, db, vault: Promise.resolve(vault) };
      ctx.log.info({ event: 'unlocked' }, 'keyring and store opened');
      return { unlocked: true, alreadyUnlocked: false };
    });
  }

  /** Closes the store and zeroes the keys. Locking a locked profile does nothing. */
  lock(ctx: ServiceContext, reason: string): Promise<{ locked: true; wasUnlocked: boolean }> {
    return this.queue.run(() => this.lockNow(ctx, reason));
  }

  /** Re-wraps the data keys under `next`; the current password must match the keyring. */
  changePassword(ctx: ServiceContext, current: string, next: string): Promise<{ changed: true }> {
    checkPasswordPolicy(next);
    return this.queue.run(async () => {
      const { keyring } = this.current();
      await keyring.changePassword(current, next);
      ctx.log.info({ event: 'password_changed', revision: keyring.revision }, 'keyring re-wrapped under a new password');
      ctx.securityEvent({ type: 'storage.password_changed', severity: 'info', details: { revision: keyring.revision } });
      return { changed: true };
    });
  }

  /**
   * Adds a new data key generation for each purpose, moves what the old generations sealed to it
   * and retires the old ones. A crash in between leaves the old generations beside the new one,
   * so nothing becomes unreadable; the next rekey retires them.
   */
  rekey(ctx: ServiceContext, purposes: readonly KeyringPurpose[]): Promise<{ rekeyed: { purpose: KeyringPurpose; generation: number }[] }> {
    return this.queue.run(async () => {
      const unlocked = this.current();
      const rekeyed: { purpose: KeyringPurpose; generation: number }[] = [];
      for (const purpose of purposes) {
        const fresh = await unlocked.keyring.rekey(purpose);
        if (purpose === STORE_PURPOSE) {
          await rekeyStore(ctx, unlocked.db, unlocked.keyring, fresh);
        } else {
          await (await this.vaultOf(ctx, unlocked)).reencrypt();
        }
        await unlocked.keyring.retireGenerationsBefore(purpose, fresh.generation);
        rekeyed.push({ purpose, generation: fresh.generation });
        ctx.securityEvent({ type: 'storage.rekeyed', severity: 'info', details: { purpose, generation: fresh.generation } });
      }
      ctx.log.info({ event: 'rekeyed', purposes: purposes.join(',') }, 'data keys replaced');
      return { rekeyed };
    });
  }

  /** Returns the secrets vault, opened on first use; E_SESSION_INVALID while locked. */
  vault(ctx: ServiceContext): Promise<SecretVault> {
    return this.vaultOf(ctx, this.current());
  }

  private vaultOf(ctx: ServiceContext, unlocked: Unlocked): Promise<SecretVault> {
    if (!unlocked.vault) {
      const opening = SecretVault.open(unlocked.keyring, path.join(ctx.stateDir, VAULT_FILE));
      unlocked.vault = opening;
      // A failed open (for example E_INTEGRITY) is tried again on the next call, not cached.
      opening.catch(() => {
        if (unlocked.vault === opening) unlocked.vault = undefined;
      });
    }
    return unlocked.vault;
  }

  private async lockNow(ctx: ServiceContext, reason: string): Promise<{ locked: true; wasUnlocked: boolean }> {
    const unlocked = this.unlocked;
    if (!unlocked) return { locked: true, wasUnlocked: false };
    this.unlocked = undefined;
    try {
      await closeStore(unlocked.db);
    } finally {
      unlocked.keyring.lock();
      ctx.log.info({ event: 'locked', reason }, 'store closed and keys zeroed');
    }
    return { locked: true, wasUnlocked: true };
  }

  private current(): Unlocked {
    if (!this.unlocked) throw new BacktestrError('E_SESSION_INVALID', 'storage is locked; unlock the profile first');
    return this.unlocked;
  }

}

function keyringFile(ctx: ServiceContext): string {
  return path.join(ctx.stateDir, KEYRING_FILE);
}

/** Awaits `opening` and reports an E_INTEGRITY failure as a security event before passing it on. */
async function reportingIntegrity<T>(ctx: ServiceContext, opening: Promise<T>): Promise<T> {
  try {
    return await opening;
  } catch (error) {
    if (error instanceof BacktestrError && error.code === 'E_INTEGRITY') reportIntegrityFailure(ctx, error);
    throw error;
  }
}

async function openKeyring(file: string, password: string, options: ProfileKeysOptions): Promise<Keyring> {
  try {
    return await Keyring.open(file, password, { allowWeakKdfForTests: options.weakKdfForTests === true });
  } catch (error) {
    if (error instanceof BacktestrError && error.code === 'E_NOT_FOUND') {
      // Auth recorded a profile (the kernel checked that first), so the keyring was removed.
      throw new BacktestrError('E_INTEGRITY', `keyring file ${KEYRING_FILE} is missing, so the profile cannot be unlocked; restore it from a backup`, { file: KEYRING_FILE, kind: 'missing' });
    }
    throw error;
  }
}
