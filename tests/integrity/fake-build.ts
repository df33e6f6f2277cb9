/** A small fake build tree in a temporary directory, shaped like the output of `tsc`. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const FAKE_FILES: Record<string, string> = {
  'kernel/main.js': 'console.log("kernel");\n',
  'kernel/main.js.map': '{"version":3}\n',
  'services/auth/service.js': 'exports.authService = {};\n',
  'services/monitor/service.js': 'exports.monitorService = {};\n',
  'protocol/errors.js': 'exports.ERROR_CODES = [];\n',
  'ops/manifest/manifest.js': 'exports.hashTree = null;\n',
  // Outside the covered folders: never listed.
  'bench/run-all.js': 'console.log("bench");\n',
  'tests/support/helper.js': 'exports.helper = 1;\n',
};

/** Number of covered code files in FAKE_FILES. */
export const FAKE_COVERED_COUNT = 5;

export interface FakeBuild {
  root: string;
  buildDir: string;
  write(relative: string, content: string): void;
  cleanup(): void;
}

export function createFakeBuild(files: Record<string, string> = FAKE_FILES): FakeBuild {
  const root = mkdtempSync(path.join(tmpdir(), 'backtestr-build-'));
  const buildDir = path.join(root, 'build');

  const write = (relative: string, content: string): void => {
    const target = path.join(buildDir, relative);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, content);
  };
  for (const [relative, content] of Object.entries(files)) write(relative, content);

  return { root, buildDir, write, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
