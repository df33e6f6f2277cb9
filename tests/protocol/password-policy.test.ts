/** The password policy that the kernel and storage check before a keyring is created or re-wrapped. */
import { checkPasswordPolicy, findFailedPasswordRules } from '../../protocol/password-policy';

function errorOf(action: () => void): { code: string; message: string; details: Record<string, unknown> } {
  try {
    action();
  } catch (error) {
    return error as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected the policy check to fail');
}

describe('password policy', () => {
  test.each([
    ['Sh0rt!pass', 'minLength'],
    ['lower-case-only-1', 'uppercase'],
    ['UPPER-CASE-ONLY-1', 'lowercase'],
    ['No-Digits-At-All', 'digit'],
    ['NoSpecials1234567', 'special'],
    ['abc', 'minLength,uppercase,digit,special'],
  ])('weak password %j fails rules %s', (password, rules) => {
    const error = errorOf(() => checkPasswordPolicy(password));
    expect(error.code).toBe('E_WEAK_PASSWORD');
    expect(error.details.failedRules).toBe(rules);
    expect(JSON.stringify(error.details)).not.toContain(password);
    expect(error.message).not.toContain(password);
  });

  test('good password passes', () => {
    expect(() => checkPasswordPolicy('Correct-Horse-7-battery')).not.toThrow();
  });

  test('length counts NFC code points', () => {
    // 11 code points plus "e" and a combining acute accent, which NFC joins into one: 12 in all.
    const decomposed = 'Aa1!aaaaaaa' + 'e\u0301';
    expect(decomposed.length).toBe(13);
    expect(findFailedPasswordRules(decomposed)).toEqual([]);
    expect(findFailedPasswordRules('Aa1!aaaaaaa')).toEqual(['minLength']);
  });

  test('emoji count once toward the minimum', () => {
    // 11 code points but 13 UTF-16 units: still too short.
    expect(findFailedPasswordRules('Aa1\u{1F600}\u{1F600}aaaaaa')).toEqual(['minLength']);
  });
});
