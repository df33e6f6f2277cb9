/**
 * The whole system started by a normal user, as on a desktop: services keep that user's uid but
 * hold everything else of their policy. The test switches to an unused uid with setpriv
 * (util-linux), which only the test needs; the product never starts other programs to drop
 * privileges. It runs when the tests run as root and the checkout is readable by other users.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, RUNNING_AS_ROOT } from './helpers';

const NORMAL_UID = 71_500;
const CLI = path.join(REPO_ROOT, 'bin', 'backtestr');

function readableByOthers(dir: string): boolean {
  for (let current = dir; ; current = path.dirname(current)) {
    if ((fs.statSync(current).mode & 0o001) === 0) return false;
    if (current === path.dirname(current)) return true;
  }
}

const canRun = RUNNING_AS_ROOT && readableByOthers(REPO_ROOT) && spawnSync('setpriv', ['--version']).status === 0;
const describeAsNormalUser = canRun ? describe : describe.skip;

function asNormalUser(args: string[]): string[] {
  return ['--reuid', String(NORMAL_UID), '--regid', String(NORMAL_UID), '--clear-groups', 'env', 'HOME=/tmp', CLI, ...args];
}

describeAsNormalUser('kernel started by a normal user', () => {
  let profile: string;

  beforeEach(() => {
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-normal-user-'));
    fs.chownSync(profile, NORMAL_UID, NORMAL_UID);
  });

  test('demo runs with every service restricted', () => {
    const result = spawnSync('setpriv', asNormalUser(['demo', '--json']), { encoding: 'utf8', timeout: 120_000 });
    expect(result.stderr).not.toMatch(/error E_/);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).bars).toBe(5105);
  });

  test('audit shows no difference but unreadable descriptors', async () => {
    const serve = spawn('setpriv', asNormalUser(['serve', '--profile', profile, '--json']));
    try {
      let output = '';
      serve.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const deadline = Date.now() + 30_000;
      while (!output.includes('runtimeDir') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(output).toContain('runtimeDir');

      const audit = spawnSync('setpriv', asNormalUser(['audit', 'ps', '--profile', profile, '--json']), { encoding: 'utf8', timeout: 30_000 });
      expect(audit.status).toBe(0);
      const services = JSON.parse(audit.stdout).services as { name: string; privileges: { entries: { item: string; state: string; actual: string }[] } }[];
      expect(services).toHaveLength(5);
      for (const service of services) {
        const byItem = new Map(service.privileges.entries.map((entry) => [entry.item, entry]));
        expect(byItem.get('uid')?.actual).toBe(`${NORMAL_UID} ${NORMAL_UID} ${NORMAL_UID} ${NORMAL_UID}`);
        for (const item of ['cap-effective', 'cap-permitted', 'cap-bounding', 'no-new-privs', 'seccomp-filters', 'dumpable', 'network-namespace', 'landlock', 'core-limit', 'open-files-limit']) {
          expect({ service: service.name, item, state: byItem.get(item)?.state }).toEqual({ service: service.name, item, state: 'ok' });
        }
        // A non-dumpable process's /proc/<pid>/fd belongs to root, so a normal user cannot list it.
        const others = service.privileges.entries.filter((entry) => entry.state !== 'ok' && entry.item !== 'file-descriptors');
        expect(others).toEqual([]);
      }
    } finally {
      serve.kill('SIGTERM');
      await new Promise((resolve) => serve.once('exit', resolve));
    }
  });
});
