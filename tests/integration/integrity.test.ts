/** A modified service file stops start-up and leaves an integrity event in the security log. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kernel } from '../../kernel/kernel';
import { BUILD_DIR, expectCode, REPO_ROOT, temporaryProfile } from '../support/harness';

function copyOfBuild(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-install-'));
  // As root, services run under their own uids and must be able to reach the install.
  fs.chmodSync(root, 0o755);
  fs.cpSync(BUILD_DIR, path.join(root, 'build'), { recursive: true });
  // The copied build resolves its packages from the repository's node_modules.
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return path.join(root, 'build');
}

describe('integrity at start-up', () => {
  test('unmodified copy of the build starts', async () => {
    const kernel = new Kernel({ profileDir: temporaryProfile(), installDir: copyOfBuild() });
    await kernel.start();
    await kernel.stop();
  });

  test('modified service file stops start-up', async () => {
    const installDir = copyOfBuild();
    const target = path.join(installDir, 'services', 'storage', 'service.js');
    fs.appendFileSync(target, '\n// tampered\n');
    const profileDir = temporaryProfile();
    const kernel = new Kernel({ profileDir, installDir });

    const details = await expectCode(kernel.start(), 'E_INTEGRITY');
    expect(JSON.stringify(details)).toContain('services/storage/service.js');

    const log = fs.readFileSync(path.join(profileDir, 'logs', 'security.log'), 'utf8');
    expect(log).toMatch(/integrity/);
    expect(log).toContain('startup.refused');
  });
});
