/**
 * Reads every audit item from /proc for every service of a running kernel and fails on any
 * difference from the policy table. Also checks that the services still work under it.
 */
import { AUDIT_ITEMS, type ServiceAudit } from '../../kernel/privileges/proc-audit';
import { PRIVILEGE_POLICIES, serviceId } from '../../kernel/privileges/policy-table';
import fs from 'node:fs';
import { SMA_STRATEGY, SP500_CSV, startKernel, TEST_PASSWORD, type RunningKernel } from '../support/harness';

let running: RunningKernel;

beforeAll(async () => {
  running = await startKernel();
});

afterAll(async () => {
  await running.stop();
});

function audits(): Map<string, ServiceAudit> {
  const audit = running.kernel.audit() as { services: { name: string; privileges: ServiceAudit | null }[] };
  return new Map(audit.services.map((service) => [service.name, service.privileges!]));
}

describe.each(PRIVILEGE_POLICIES.map((policy) => [policy.service, policy] as const))('running %s service', (service, policy) => {
  test('holds exactly its policy', () => {
    const audit = audits().get(service)!;
    expect(audit.entries.map((entry) => entry.item)).toEqual([...AUDIT_ITEMS]);
    expect(audit.differences).toEqual([]);
    expect(audit.entries.filter((entry) => entry.state !== 'ok')).toEqual([]);
  });

  test('runs under its own uid as root', () => {
    const audit = audits().get(service)!;
    const uid = audit.entries.find((entry) => entry.item === 'uid')!.actual;
    const expected = process.getuid?.() === 0 ? serviceId(policy) : process.getuid!();
    expect(uid).toBe(`${expected} ${expected} ${expected} ${expected}`);
  });
});

test('backtest runs under the policies', async () => {
  const { client } = running;
  await client.call('auth.createProfile', { password: TEST_PASSWORD });
  await client.call('auth.unlock', { password: TEST_PASSWORD });
  const imported = await client.call<{ bars: number }>('storage.importBars', { symbol: 'SPX', csv: fs.readFileSync(SP500_CSV) });
  expect(imported.bars).toBe(5105);
  const source = fs.readFileSync(SMA_STRATEGY, 'utf8');
  const result = await client.call<{ metrics: Record<string, number> }>('backtest.run', { source, filename: 'sma-crossover.ts', symbol: 'SPX', params: { fast: 50, slow: 200 } });
  expect(Number.isFinite(result.metrics.final_equity)).toBe(true);
  // The sandbox's worker threads started after lock-down and the limits still hold.
  for (const audit of audits().values()) expect(audit.differences).toEqual([]);
});

test('storage RAM directory is private tmpfs', () => {
  const ramRoot = running.kernel.ramRoot;
  expect(ramRoot).toBeDefined();
  const ramDir = `${ramRoot}/storage-ram`;
  const stats = fs.lstatSync(ramDir);
  expect(stats.isDirectory()).toBe(true);
  expect(stats.mode & 0o777).toBe(0o700);
  const storage = PRIVILEGE_POLICIES.find((policy) => policy.service === 'storage')!;
  expect(stats.uid).toBe(process.getuid?.() === 0 ? serviceId(storage) : process.getuid!());
  // tmpfs magic number from linux/magic.h.
  expect(fs.statfsSync(ramDir).type).toBe(0x01021994);
  // Only storage's policy names a RAM directory.
  const others = PRIVILEGE_POLICIES.filter((policy) => policy.service !== 'storage' && policy.write.includes('ram-dir'));
  expect(others).toEqual([]);
});
