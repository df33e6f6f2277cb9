/**
 * Password policy for the local profile. Length is counted in Unicode code points after NFC
 * normalisation, so that "é" typed as one precomposed character or as "e" plus a combining accent
 * counts the same, and an emoji counts once rather than as two UTF-16 units.
 *
 * The kernel checks a new password before it reaches any service, and the storage service checks it
 * again before the keyring is created or re-wrapped under it.
 */
import { BacktestrError } from './errors';

export const MIN_PASSWORD_CODE_POINTS = 12;

/** Upper bound in UTF-16 units, checked by the method schema before any work is done. */
export const MAX_PASSWORD_LENGTH = 1024;

export const PASSWORD_RULES = ['minLength', 'uppercase', 'lowercase', 'digit', 'special'] as const;
export type PasswordRule = (typeof PASSWORD_RULES)[number];

const UPPERCASE = /\p{Lu}/u;
const LOWERCASE = /\p{Ll}/u;
const DIGIT = /\p{Nd}/u;
/** Any code point that is not an upper-case letter, a lower-case letter or a decimal digit. */
const SPECIAL = /[^\p{Lu}\p{Ll}\p{Nd}]/u;

/** Returns the rules that `password` breaks, in the order of PASSWORD_RULES; empty when it passes. */
export function findFailedPasswordRules(password: string): PasswordRule[] {
  const normalized = password.normalize('NFC');
  const failed: PasswordRule[] = [];

  let codePoints = 0;
  for (const _ of normalized) codePoints++;
  if (codePoints < MIN_PASSWORD_CODE_POINTS) failed.push('minLength');

  if (!UPPERCASE.test(normalized)) failed.push('uppercase');
  if (!LOWERCASE.test(normalized)) failed.push('lowercase');
  if (!DIGIT.test(normalized)) failed.push('digit');
  if (!SPECIAL.test(normalized)) failed.push('special');

  return failed;
}

/** Throws E_WEAK_PASSWORD naming the broken rules, never the password. */
export function checkPasswordPolicy(password: string): void {
  const failedRules = findFailedPasswordRules(password);
  if (failedRules.length > 0) {
    throw new BacktestrError('E_WEAK_PASSWORD', `password does not meet the policy: ${failedRules.join(', ')}`, {
      failedRules: failedRules.join(','),
      minCodePoints: MIN_PASSWORD_CODE_POINTS,
    });
  }
}
