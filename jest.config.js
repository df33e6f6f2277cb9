/** Jest runs the TypeScript tests directly; the services they start run from build/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
  setupFiles: ['<rootDir>/tests/support/umask.ts'],
  testTimeout: 60000,
  // NOTE: about one full run in three on this 2-core machine passed every test and then did not
  // exit: some handle stayed open, not yet identified (a sandbox worker thread is the suspect).
  // forceExit ends the process after the results, with their exit status, so CI cannot hang.
  forceExit: true,
};
