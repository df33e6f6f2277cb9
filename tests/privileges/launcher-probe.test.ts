/**
 * Runs the C probe through the real launcher under each service's policy. Every forbidden action
 * must fail with the errno the policy promises, and the permitted ones must still work, so a
 * policy that broke everything would fail here too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildLauncherArguments } from '../../kernel/privileges/launch-command';
import { DEFAULT_ALLOW_MISSING, PRIVILEGE_POLICIES, privilegePolicy, serviceId } from '../../kernel/privileges/policy-table';
import { createSandbox, ERRNO, probeCommand, runProbe, RUNNING_AS_ROOT, startLive, type LiveProcess, type Sandbox } from './helpers';

let sandbox: Sandbox;

beforeAll(() => {
  sandbox = createSandbox();
});

afterAll(() => sandbox.remove());

describe.each(PRIVILEGE_POLICIES.map((policy) => [policy.service, policy] as const))('probe under the %s policy', (service, policy) => {
  const other = PRIVILEGE_POLICIES.find((candidate) => candidate.service !== service)!.service;
  let sibling: LiveProcess;
  let results: Map<string, 'ok' | number>;
  let sequence: ('ok' | number)[];
  let status: number | null;
  let report: ReturnType<typeof runProbe>['report'];

  beforeAll(async () => {
    // A sibling service process to attack: the other policy's probe, waiting on stdin.
    const command = probeCommand(sandbox, privilegePolicy(other), ['unix', 'wait']);
    sibling = await startLive(command.file, command.args);
    const ownDir = sandbox.stateDirs[service];
    const otherDir = sandbox.stateDirs[other];
    const run = runProbe(sandbox, policy, [
      'unix',
      `read:${sandbox.nodeProbe}`,
      `exec:${sandbox.probe}`,
      'inet',
      'inet6',
      'netlink',
      'unshare-user',
      'unshare-net',
      'clone-net',
      'setuid-root',
      'capset',
      'mount',
      'bpf',
      `ptrace:${sibling.pid}`,
      `proc-mem:${sibling.pid}`,
      `kill:${process.pid}`,
      `read:${path.join(otherDir, 'secret.txt')}`,
      `list:${otherDir}`,
      `read:${sandbox.outsideFile}`,
      `write:${path.join(sandbox.outsideDir, `${service}.txt`)}`,
      `write:${path.join(ownDir, 'written.txt')}`,
      `read:${path.join(ownDir, 'secret.txt')}`,
      `chmod-private:${path.join(ownDir, 'secret.txt')}`,
      `chmod-open:${path.join(ownDir, 'secret.txt')}`,
      'umask-open',
      'shm',
      'inotify',
      'lockdown',
      `exec:${sandbox.probe}`,
      'dumpable-on',
    ]);
    results = run.results;
    sequence = run.sequence;
    status = run.status;
    report = run.report;
  });

  afterAll(async () => {
    await sibling.finish();
  });

  test('runs every action', () => {
    expect(status).toBe(0);
    expect(sequence).toHaveLength(30);
  });

  test('launcher report matches the policy', () => {
    expect(report?.service).toBe(service);
    expect(report?.network).toBe('own');
    expect(report?.landlockAbi).toBeGreaterThan(0);
    expect(report?.boundingDropped).toBe(true);
    expect(report?.missing).toEqual([]);
    if (RUNNING_AS_ROOT) expect(report?.uid).toBe(serviceId(policy));
  });

  test('permitted actions work', () => {
    expect(results.get('unix')).toBe('ok');
    expect(results.get(`read:${sandbox.nodeProbe}`)).toBe('ok');
    expect(results.get(`read:${path.join(sandbox.stateDirs[service], 'secret.txt')}`)).toBe('ok');
    expect(results.get('lockdown')).toBe('ok');
  });

  test('own directory writable only by policy', () => {
    const expected = policy.write.includes('state-dir') ? 'ok' : ERRNO.EACCES;
    expect(results.get(`write:${path.join(sandbox.stateDirs[service], 'written.txt')}`)).toBe(expected);
  });

  test('network sockets fail with EPERM', () => {
    expect(results.get('inet')).toBe(ERRNO.EPERM);
    expect(results.get('inet6')).toBe(ERRNO.EPERM);
    expect(results.get('netlink')).toBe(ERRNO.EPERM);
  });

  test('namespaces and mounts fail with EPERM', () => {
    expect(results.get('unshare-user')).toBe(ERRNO.EPERM);
    expect(results.get('unshare-net')).toBe(ERRNO.EPERM);
    expect(results.get('clone-net')).toBe(ERRNO.EPERM);
    expect(results.get('mount')).toBe(ERRNO.EPERM);
    expect(results.get('bpf')).toBe(ERRNO.EPERM);
  });

  test('opening file modes fails with EPERM', () => {
    const secret = path.join(sandbox.stateDirs[service], 'secret.txt');
    expect(results.get(`chmod-private:${secret}`)).toBe('ok');
    expect(results.get(`chmod-open:${secret}`)).toBe(ERRNO.EPERM);
    expect(results.get('umask-open')).toBe(ERRNO.EPERM);
  });

  test('host IPC and file watching fail with EPERM', () => {
    expect(results.get('shm')).toBe(ERRNO.EPERM);
    expect(results.get('inotify')).toBe(ERRNO.EPERM);
  });

  test('raising privileges fails with EPERM', () => {
    expect(results.get('setuid-root')).toBe(ERRNO.EPERM);
    expect(results.get('capset')).toBe(ERRNO.EPERM);
  });

  test('sibling cannot be traced or signalled', () => {
    expect(results.get(`ptrace:${sibling.pid}`)).toBe(ERRNO.EPERM);
    // Landlock's ptrace rule and the sibling's dumpable flag both refuse; the kernel reports EACCES.
    expect(results.get(`proc-mem:${sibling.pid}`)).toBe(ERRNO.EACCES);
    expect(results.get(`kill:${process.pid}`)).toBe(ERRNO.EPERM);
  });

  test('files outside the policy fail with EACCES', () => {
    const otherDir = sandbox.stateDirs[other];
    expect(results.get(`read:${path.join(otherDir, 'secret.txt')}`)).toBe(ERRNO.EACCES);
    expect(results.get(`list:${otherDir}`)).toBe(ERRNO.EACCES);
    // World-readable and world-writable by mode: only Landlock refuses these.
    expect(results.get(`read:${sandbox.outsideFile}`)).toBe(ERRNO.EACCES);
    expect(results.get(`write:${path.join(sandbox.outsideDir, `${service}.txt`)}`)).toBe(ERRNO.EACCES);
    expect(fs.existsSync(path.join(sandbox.outsideDir, `${service}.txt`))).toBe(false);
  });

  test('execve works until lock-down only', () => {
    // The launcher's own filter must allow execve (it execs Node); the lock-down filter denies it.
    expect(sequence[2]).toBe('ok');
    expect(sequence[23]).toBe(ERRNO.EPERM);
    expect(results.get('dumpable-on')).toBe(ERRNO.EPERM);
  });
});

(RUNNING_AS_ROOT ? describe : describe.skip)('probe started by a normal user', () => {
  const userId = 71_000;
  const policy = privilegePolicy('storage');
  let stateDir: string;

  beforeAll(() => {
    stateDir = path.join(sandbox.profileDir, 'normal-user');
    fs.mkdirSync(stateDir, { mode: 0o700 });
    fs.chownSync(stateDir, userId, userId);
  });

  test('keeps its uid and gets a user namespace', () => {
    const args = buildLauncherArguments(policy, { ...sandbox.paths(policy), stateDir }, { runningAsRoot: false, allowMissing: DEFAULT_ALLOW_MISSING });
    args.push('--exec', sandbox.probe, '--', sandbox.probe, 'inet', 'unshare-user', `write:${path.join(stateDir, 'x.txt')}`, `list:${sandbox.stateDirs.auth}`, 'capset');
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const result = spawnSync(path.join(sandbox.installDir, 'native', 'backtestr-launcher'), args, { encoding: 'utf8', env: {}, uid: userId, gid: userId });
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stderr.split('\n')[0]) as { uid: number; network: string; boundingDropped: boolean; missing: string[] };
    expect(report.uid).toBe(userId);
    expect(report.network).toBe('own-in-user-namespace');
    expect(report.boundingDropped).toBe(true);
    expect(report.missing).toEqual([]);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      `inet errno ${ERRNO.EPERM}`,
      `unshare-user errno ${ERRNO.EPERM}`,
      `write:${path.join(stateDir, 'x.txt')} ok`,
      `list:${sandbox.stateDirs.auth} errno ${ERRNO.EACCES}`,
      `capset errno ${ERRNO.EPERM}`,
    ]);
  });
});
