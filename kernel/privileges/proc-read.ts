/**
 * Reads what a process actually holds from /proc (proc(5), Linux 5.9 or later for
 * Seccomp_filters). Reading only: comparing with the policy is proc-audit.ts's work.
 *
 * Access: status, limits and cmdline are readable by every user. fd/ and ns/net need ptrace
 * read access, which a process that is not dumpable grants only to a caller with CAP_SYS_PTRACE
 * over it: the kernel as root, or the owner of the user namespace the service created. Items
 * that cannot be read are returned with their errno code, never guessed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BacktestrError } from '../../protocol/errors';

export interface IdSet {
  real: number;
  effective: number;
  saved: number;
  filesystem: number;
}

export interface ProcStatus {
  uid: IdSet;
  gid: IdSet;
  groups: number[];
  capInheritable: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  capBounding: bigint;
  capAmbient: bigint;
  noNewPrivs: number;
  /** 0 disabled, 1 strict, 2 filter. */
  seccompMode: number;
  /** Number of stacked filters; undefined before Linux 5.9. */
  seccompFilters: number | undefined;
}

/** A limit value; Infinity stands for "unlimited". */
export interface LimitPair {
  soft: number;
  hard: number;
}

export interface FileDescriptor {
  fd: number;
  /** readlink of /proc/<pid>/fd/<fd>: a path, or a pseudo-file such as socket:[123] or pipe:[45]. */
  target: string;
}

/** A value read from /proc, or the errno code that stopped the read. */
export type Readable<T> = { ok: true; value: T } | { ok: false; errno: string };

export interface ProcFacts {
  pid: number;
  status: ProcStatus;
  limits: { core: LimitPair; openFiles: LimitPair };
  fileDescriptors: Readable<FileDescriptor[]>;
  /** Link text of /proc/<pid>/ns/net, for example net:[4026531833]. */
  netNamespace: Readable<string>;
  cmdline: string[];
  /**
   * Owner of /proc/<pid>/status: root when the process is not dumpable, else its effective uid.
   * The /proc/<pid> directory itself always shows the effective uid (procps reads it that way),
   * so it is no evidence.
   */
  statusOwnerUid: number;
}

function parseIdSet(text: string): IdSet {
  const [real, effective, saved, filesystem] = text.trim().split(/\s+/).map(Number);
  return { real, effective, saved, filesystem };
}

/** Parses the key/value lines of /proc/<pid>/status. */
export function parseStatus(text: string): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const field = (name: string): string => {
    const value = fields.get(name);
    if (value === undefined) throw new BacktestrError('E_INTERNAL', `/proc status has no ${name} line`, { field: name });
    return value;
  };
  const hex = (name: string): bigint => BigInt(`0x${field(name)}`);
  const filters = fields.get('Seccomp_filters');
  const groups = field('Groups');
  return {
    uid: parseIdSet(field('Uid')),
    gid: parseIdSet(field('Gid')),
    groups: groups.length === 0 ? [] : groups.split(/\s+/).map(Number),
    capInheritable: hex('CapInh'),
    capPermitted: hex('CapPrm'),
    capEffective: hex('CapEff'),
    capBounding: hex('CapBnd'),
    capAmbient: hex('CapAmb'),
    noNewPrivs: Number(field('NoNewPrivs')),
    seccompMode: Number(field('Seccomp')),
    seccompFilters: filters === undefined ? undefined : Number(filters),
  };
}

function parseLimitValue(text: string): number {
  return text === 'unlimited' ? Infinity : Number(text);
}

/** Parses the table of /proc/<pid>/limits; columns are fixed-width, names contain spaces. */
export function parseLimits(text: string): { core: LimitPair; openFiles: LimitPair } {
  const find = (name: string): LimitPair => {
    const line = text.split('\n').find((candidate) => candidate.startsWith(name));
    if (!line) throw new BacktestrError('E_INTERNAL', `/proc limits has no "${name}" line`, { field: name });
    const [soft, hard] = line.slice(name.length).trim().split(/\s+/);
    return { soft: parseLimitValue(soft), hard: parseLimitValue(hard) };
  };
  return { core: find('Max core file size'), openFiles: find('Max open files') };
}

function attempt<T>(read: () => T): Readable<T> {
  try {
    return { ok: true, value: read() };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw error;
    return { ok: false, errno: code };
  }
}

function readFileDescriptors(dir: string): FileDescriptor[] {
  const descriptors: FileDescriptor[] = [];
  for (const entry of fs.readdirSync(dir)) {
    const fd = Number(entry);
    // An fd closed between readdir and readlink is skipped: it is no longer held.
    const target = attempt(() => fs.readlinkSync(path.join(dir, entry)));
    if (target.ok) descriptors.push({ fd, target: target.value });
    else if (target.errno !== 'ENOENT') throw Object.assign(new Error(`readlink of fd ${fd} failed`), { code: target.errno });
  }
  return descriptors.sort((a, b) => a.fd - b.fd);
}

/** Reads every item for `pid`; throws ENOENT (as a Node error) when the process is gone. */
export function readProcFacts(pid: number, procRoot = '/proc'): ProcFacts {
  const dir = path.join(procRoot, String(pid));
  return {
    pid,
    status: parseStatus(fs.readFileSync(path.join(dir, 'status'), 'utf8')),
    limits: parseLimits(fs.readFileSync(path.join(dir, 'limits'), 'utf8')),
    fileDescriptors: attempt(() => readFileDescriptors(path.join(dir, 'fd'))),
    netNamespace: attempt(() => fs.readlinkSync(path.join(dir, 'ns', 'net'))),
    cmdline: fs.readFileSync(path.join(dir, 'cmdline'), 'utf8').split('\0').filter((part) => part.length > 0),
    statusOwnerUid: fs.statSync(path.join(dir, 'status')).uid,
  };
}

/** Returns the network namespace of the calling process (the kernel's own). */
export function ownNetNamespace(): string {
  return fs.readlinkSync('/proc/self/ns/net');
}
