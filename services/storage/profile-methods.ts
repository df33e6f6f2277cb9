/**
 * Storage methods for the keyring (create, unlock, lock, password change, rekey) and the secrets
 * vault. The method table is documented at the top of service.ts.
 *
 * Passwords and secret values arrive as JS strings, which cannot be wiped: each handler takes
 * them out of the params object so that no other reference outlives the call, and wipes the byte
 * copies it makes. Secret names are not secret: they appear in errors and security events.
 */
import { access } from 'node:fs/promises';
import * as path from 'node:path';
import { MAX_PASSWORD_LENGTH } from '../../protocol/password-policy';
import { s } from '../../protocol/schema';
import type { MethodHandler, ServiceContext } from '../runtime/types';
import { MAX_NAME_LENGTH, MAX_SECRET_BYTES } from './crypto/vault-format';
import { KEYRING_FILE, KEYRING_PURPOSES, type KeyringPurpose, type ProfileKeys } from './profile-keys';

const PASSWORD = s.string(MAX_PASSWORD_LENGTH);
const SECRET_NAME = s.string(MAX_NAME_LENGTH);
/** The vault limits bytes; a string of this many UTF-16 units can still exceed it, which the vault rejects. */
const SECRET_VALUE = s.string(MAX_SECRET_BYTES);
/** Reason a lock was requested, for the log: a short word such as 'last-session-locked'. */
const LOCK_REASON = s.string(64, /^[a-z][a-z-]*$/);

export function profileMethods(keys: ProfileKeys): Record<string, MethodHandler> {
  const createKeyring: MethodHandler<{ password: string }> = {
    params: s.object({ password: PASSWORD }),
    handle: (params, ctx) => keys.create(ctx, take(params, 'password')),
  };

  const unlock: MethodHandler<{ password: string }> = {
    params: s.object({ password: PASSWORD }),
    handle: (params, ctx) => keys.unlock(ctx, take(params, 'password')),
  };

  const lock: MethodHandler<{ reason: string }> = {
    params: s.object({ reason: LOCK_REASON }),
    handle: (params, ctx) => keys.lock(ctx, params.reason),
  };

  const status: MethodHandler<Record<string, never>> = {
    params: s.object({}),
    handle: async (_params, ctx) => ({ keyringExists: await keyringExists(ctx), unlocked: keys.isUnlocked, kdf: keys.kdfParams() }),
  };

  const changePassword: MethodHandler<{ current: string; next: string }> = {
    params: s.object({ current: PASSWORD, next: PASSWORD }),
    handle: (params, ctx) => {
      const current = take(params, 'current');
      const next = take(params, 'next');
      return keys.changePassword(ctx, current, next);
    },
  };

  const rekey: MethodHandler<{ purpose?: KeyringPurpose }> = {
    params: s.object({ purpose: s.literal(...KEYRING_PURPOSES) }, ['purpose']),
    handle: (params, ctx) => keys.rekey(ctx, params.purpose ? [params.purpose] : KEYRING_PURPOSES),
  };

  const putSecret: MethodHandler<{ name: string; value: string }> = {
    params: s.object({ name: SECRET_NAME, value: SECRET_VALUE }),
    async handle(params, ctx) {
      const value = take(params, 'value');
      const vault = await keys.vault(ctx);
      await vault.put(params.name, value);
      ctx.log.info({ event: 'secret_stored', secrets: vault.list().length }, 'secret stored');
      // Secret names are user data (a name can reveal the broker), so the events carry none.
      ctx.securityEvent({ type: 'storage.secret_stored', severity: 'info', details: {} });
      return { stored: true };
    },
  };

  const getSecret: MethodHandler<{ name: string }> = {
    params: s.object({ name: SECRET_NAME }),
    async handle({ name }, ctx) {
      const bytes = (await keys.vault(ctx)).get(name);
      // NOTE: the decoded string cannot be wiped; it lives until the reply is sent and collected.
      const value = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      bytes.fill(0);
      ctx.securityEvent({ type: 'storage.secret_read', severity: 'info', details: {} });
      return { name, value };
    },
  };

  const listSecrets: MethodHandler<Record<string, never>> = {
    params: s.object({}),
    handle: async (_params, ctx) => ({ names: (await keys.vault(ctx)).list() }),
  };

  const deleteSecret: MethodHandler<{ name: string }> = {
    params: s.object({ name: SECRET_NAME }),
    async handle({ name }, ctx) {
      await (await keys.vault(ctx)).delete(name);
      ctx.log.info({ event: 'secret_deleted' }, 'secret deleted');
      ctx.securityEvent({ type: 'storage.secret_deleted', severity: 'info', details: {} });
      return { deleted: true };
    },
  };

  return { createKeyring, unlock, lock, status, changePassword, rekey, putSecret, getSecret, listSecrets, deleteSecret };
}

/** Moves a secret string out of the params object so that no other reference to it outlives the call. */
function take<K extends string>(params: Record<K, string>, key: K): string {
  const value = params[key];
  params[key] = '';
  return value;
}

async function keyringExists(ctx: ServiceContext): Promise<boolean> {
  try {
    await access(path.join(ctx.stateDir, KEYRING_FILE));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
