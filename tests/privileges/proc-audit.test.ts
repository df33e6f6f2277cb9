/**
 * Starts a Node probe with each service's real launch command (launcher, Node permission flags,
 * lock-down addon) and checks what Node code can and cannot do there. Then reads every audit
 * item from the probe's /proc entry and fails on any difference from the policy.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { auditService, AUDIT_ITEMS, type AuditContext } from '../../kernel/privileges/proc-audit';
import { DEFAULT_ALLOW_MISSING, PRIVILEGE_POLICIES, privilegePolicy } from '../../kernel/privileges/policy-table';
import { ownNetNamespace, readProcFacts } from '../../kernel/privileges/proc-read';
import { createSandbox, RUNNING_AS_ROOT, startNodeProbe, type LiveProcess, type Sandbox } from './helpers';

let sandbox: Sandbox;
let server: net.Server;
let socketPath: string;

beforeAll(async () => {
  sandbox = createSandbox();
  const socketDir = path.join(sandbox.root, 'sockets');
  fs.mkdirSync(socketDir, { mode: 0o711 });
  socketPath = path.join(socketDir, 'probe.sock');
  server = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  // Connecting needs write permission on the socket file; the probes run under other uids as root.
  fs.chmodSync(socketPath, 0o666);
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  sandbox.remove();
});

function auditContext(service: string, live: LiveProcess): AuditContext {
  return {
    kernelUid: process.getuid!(),
    kernelGid: process.getgid!(),
    kernelNetNamespace: ownNetNamespace(),
    runningAsRoot: RUNNING_AS_ROOT,
    paths: sandbox.paths(privilegePolicy(service as never)),
    allowMissing: DEFAULT_ALLOW_MISSING,
    launcherReport: live.report,
  };
}

describe.each(PRIVILEGE_POLICIES.map((policy) => [policy.service, policy] as const))('node probe under the %s policy', (service, policy) => {
  const other = PRIVILEGE_POLICIES.find((candidate) => candidate.service !== service)!.service;
  let live: LiveProcess;
  let results: Record<string, string>;
  // The layer that refuses file access first: Node's permission model where the policy enables it.
  const fileDenial = policy.node.permission ? 'ERR_ACCESS_DENIED' : 'EACCES';

  beforeAll(async () => {
    live = await startNodeProbe(sandbox, policy, other, socketPath);
    results = JSON.parse(live.stdout.split('\n')[0]) as Record<string, string>;
  });

  afterAll(async () => {
    await live.finish();
  });

  test('permitted actions work', () => {
    expect(results.readCode).toBe('ok');
    expect(results.unix).toBe('ok');
    expect(results.writeOwn).toBe(policy.write.includes('state-dir') ? 'ok' : fileDenial);
  });

  test('files outside the policy are refused', () => {
    expect(results.readOther).toBe(fileDenial);
    expect(results.readOutside).toBe(fileDenial);
    expect(results.writeOutside).toBe(fileDenial);
  });

  test('programs, network and setuid are refused', () => {
    expect(results.spawn).toBe(policy.node.permission ? 'ERR_ACCESS_DENIED' : 'EPERM');
    expect(results.inet).toBe('EPERM');
    expect(results.setuidRoot).toBe('EPERM');
  });

  test('/proc shows exactly the policy', () => {
    const audit = auditService(policy, readProcFacts(live.pid), auditContext(service, live));
    expect(audit.entries.map((entry) => entry.item)).toEqual([...AUDIT_ITEMS]);
    expect(audit.differences).toEqual([]);
    expect(audit.entries.filter((entry) => entry.state !== 'ok')).toEqual([]);
    expect(audit.degraded).toEqual([]);
  });

  test('exposure is low', () => {
    const audit = auditService(policy, readProcFacts(live.pid), auditContext(service, live));
    expect(audit.exposure.rating).toBe('low');
    expect(audit.exposure.reasons.map((reason) => reason.check)).toEqual(policy.node.permission ? [] : ['node-permission-off']);
  });
});

describe('audit of an unrestricted process', () => {
  test('reports every difference', async () => {
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("ready\\n"); process.stdin.resume(); process.stdin.on("end", () => process.exit(0))'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const live = await new Promise<LiveProcess>((resolve) => {
      child.stdout!.once('data', () =>
        resolve({ child, pid: child.pid!, stdout: '', stderr: '', report: undefined, finish: () => new Promise((done) => { child.once('exit', done); child.stdin!.end(); }) }),
      );
    });
    const policy = privilegePolicy('storage');
    const audit = auditService(policy, readProcFacts(live.pid), auditContext('storage', live));
    await live.finish();

    const differing = audit.differences.map((entry) => entry.item);
    for (const item of ['cap-bounding', 'no-new-privs', 'seccomp-mode', 'seccomp-filters', 'dumpable', 'core-limit', 'open-files-limit', 'network-namespace', 'node-permissions'] as const) {
      expect(differing).toContain(item);
    }
    if (RUNNING_AS_ROOT) expect(differing).toEqual(expect.arrayContaining(['uid', 'gid', 'cap-effective', 'cap-permitted']));
    expect(audit.entries.find((entry) => entry.item === 'landlock')?.state).toBe('unreadable');
    expect(audit.exposure.rating).not.toBe('low');
  });
});

