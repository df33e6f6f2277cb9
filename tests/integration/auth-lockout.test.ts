/** Wrong passwords through the real kernel, and a lockout that survives a restart of everything. */
import { expectCode, startKernel, temporaryProfile, TEST_PASSWORD } from '../support/harness';

describe('auth lockout', () => {
  test('sixth attempt is locked out, also after a restart', async () => {
    const profileDir = temporaryProfile();
    let running = await startKernel({ profileDir });
    try {
      await running.client.call('auth.createProfile', { password: TEST_PASSWORD });
      for (let attempt = 1; attempt <= 5; attempt++) {
        const details = await expectCode(running.client.call('auth.unlock', { password: `Wrong-password-${attempt}!` }), 'E_WRONG_PASSWORD');
        expect(details.attemptsLeft).toBe(5 - attempt);
      }
      await expectCode(running.client.call('auth.unlock', { password: TEST_PASSWORD }), 'E_LOCKED_OUT');
      await expectCode(running.client.call('storage.listSymbols', {}), 'E_POLICY_DENIED');
    } finally {
      await running.stop();
    }

    running = await startKernel({ profileDir });
    try {
      const details = await expectCode(running.client.call('auth.unlock', { password: TEST_PASSWORD }), 'E_LOCKED_OUT');
      expect(details.retryAfterMs).toBeGreaterThan(14 * 60_000);
      const status = await running.client.call<{ lockedOut: boolean }>('auth.status', {});
      expect(status.lockedOut).toBe(true);
    } finally {
      await running.stop();
    }
  });

  test('weak password is refused with the failed rules', async () => {
    const running = await startKernel();
    try {
      const details = await expectCode(running.client.call('auth.createProfile', { password: 'short' }), 'E_WEAK_PASSWORD');
      expect(JSON.stringify(details)).not.toContain('short');
      const status = await running.client.call<{ profileExists: boolean }>('auth.status', {});
      expect(status.profileExists).toBe(false);
    } finally {
      await running.stop();
    }
  });
});
