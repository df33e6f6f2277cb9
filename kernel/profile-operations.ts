/**
 * Password operations the kernel serves to clients under the auth and storage method names that
 * clients have always used. Each one composes calls to auth (profile record, lockout, sessions)
 * and storage (the keyring, the one password verifier), so the password reaches storage only:
 * never auth, a log, an error message or a security event.
 *
 *   auth.createProfile {password}          -> {created: true}
 *   auth.unlock {password}                 -> {session, expiresAt}
 *   storage.changePassword {current, next} -> {changed: true}
 */
import { BacktestrError, toBacktestrError } from '../protocol/errors';
import { checkPasswordPolicy, MAX_PASSWORD_LENGTH } from '../protocol/password-policy';
import { parse, s } from '../protocol/schema';
import type { RouteAsKernel } from './operations';

const PASSWORD = s.string(MAX_PASSWORD_LENGTH);
/** Storage failures after which the unlock attempt is not counted (see verifyInStorage). */
const NOT_CHECKED_CODES: ReadonlySet<string> = new Set(['E_INTEGRITY', 'E_SERVICE_UNAVAILABLE', 'E_STORAGE', 'E_PROFILE_MISSING']);
const PASSWORD_PARAMS = s.object({ password: PASSWORD });
const CHANGE_PASSWORD_PARAMS = s.object({ current: PASSWORD, next: PASSWORD });

export interface IssuedSession {
  session: string;
  expiresAt: number;
}

/**
 * Creates the profile: the policy check here, then the keyring in storage, then the profile
 * record in auth.
 *
 * Crash safety: the keyring is written first, so a profile record never exists without a
 * keyring. A crash after the keyring and before the record leaves a keyring that auth does not
 * know. Both the next createProfile (which then fails with E_PROFILE_EXISTS, because the keyring
 * with the first password exists) and the next unlock record the missing profile, see
 * `recordProfile`. Nothing here ever replaces or deletes an existing keyring.
 */
export async function createProfile(route: RouteAsKernel, rawParams: unknown): Promise<{ created: true }> {
  const { password } = parse<{ password: string }>(PASSWORD_PARAMS, rawParams, 'params');
  checkPasswordPolicy(password);

  const auth = (await route('auth.status', {})) as { profileExists: boolean };
  if (auth.profileExists) throw new BacktestrError('E_PROFILE_EXISTS', 'a profile already exists in this profile directory');

  try {
    await route('storage.createKeyring', { password });
  } catch (error) {
    if (toBacktestrError(error).code === 'E_PROFILE_EXISTS') await recordProfile(route);
    throw error;
  }
  await recordProfile(route);
  return { created: true };
}

/**
 * Unlocks with the keyring as the verifier. auth.beginUnlock checks the lockout and counts the
 * attempt as failed on disk before storage receives the password, so an attempt stays counted when
 * storage crashes or is killed during the check. Only a right password resets the counter.
 */
export async function unlockProfile(route: RouteAsKernel, rawParams: unknown): Promise<IssuedSession> {
  const { password } = parse<{ password: string }>(PASSWORD_PARAMS, rawParams, 'params');
  const attempt = await beginUnlock(route);
  await verifyInStorage(route, attempt, () => route('storage.unlock', { password }));
  return (await route('auth.finishUnlock', { attempt, outcome: 'unlocked' })) as IssuedSession;
}

/**
 * Changes the password. The current password is checked by storage under the same lockout as
 * an unlock, and the new one against the policy before either service receives it.
 */
export async function changePassword(route: RouteAsKernel, rawParams: unknown): Promise<{ changed: true }> {
  const { current, next } = parse<{ current: string; next: string }>(CHANGE_PASSWORD_PARAMS, rawParams, 'params');
  checkPasswordPolicy(next);
  const attempt = await beginUnlock(route);
  await verifyInStorage(route, attempt, () => route('storage.changePassword', { current, next }));
  await route('auth.finishUnlock', { attempt, outcome: 'verified' });
  return { changed: true };
}

/** Starts a counted attempt, recording a profile that a crash left without a record first. */
async function beginUnlock(route: RouteAsKernel): Promise<string> {
  try {
    return ((await route('auth.beginUnlock', {})) as { attempt: string }).attempt;
  } catch (error) {
    if (toBacktestrError(error).code !== 'E_PROFILE_MISSING') throw error;
    const storage = (await route('storage.status', {})) as { keyringExists: boolean };
    if (!storage.keyringExists) throw error;
    await recordProfile(route);
    return ((await route('auth.beginUnlock', {})) as { attempt: string }).attempt;
  }
}

/**
 * Runs the storage call that checks the password and reports its outcome to auth. A wrong
 * password becomes auth's E_WRONG_PASSWORD, which carries attemptsLeft. Any other failure
 * leaves the attempt counted and is passed on.
 */
async function verifyInStorage(route: RouteAsKernel, attempt: string, check: () => Promise<unknown>): Promise<void> {
  try {
    await check();
    return;
  } catch (error) {
    const failure = toBacktestrError(error);
    if (failure.code === 'E_WRONG_PASSWORD') {
      // auth rejects with its own E_WRONG_PASSWORD (with attemptsLeft). Should auth fail instead,
      // for example after a restart, the attempt stays counted and storage's error is passed on.
      const reported = await route('auth.finishUnlock', { attempt, outcome: 'wrong-password' }).then(() => failure, toBacktestrError);
      throw reported.code === 'E_WRONG_PASSWORD' ? reported : failure;
    }
    // These codes prove that no guess was checked or that the guess was right. Either the request
    // never reached a running storage, or a profile file failed verification. A damaged keyring
    // fails its checksum before any key derivation, and the store and vault open only after the
    // password matched. Only a failure during the check itself keeps the attempt counted, so that
    // killing storage mid-check cannot buy an uncounted guess.
    const outcome = NOT_CHECKED_CODES.has(failure.code) ? 'not-checked' : 'aborted';
    // The client needs storage's error, not one from this report, and the attempt stays counted
    // if auth does not hear of it.
    await route('auth.finishUnlock', { attempt, outcome }).catch(() => undefined);
    throw failure;
  }
}

/** Records the profile in auth; a record that exists already is what the caller wanted. */
async function recordProfile(route: RouteAsKernel): Promise<void> {
  try {
    await route('auth.recordProfile', {});
  } catch (error) {
    if (toBacktestrError(error).code !== 'E_PROFILE_EXISTS') throw error;
  }
}
