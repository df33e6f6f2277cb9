/**
 * Runs before each test file. Storage's start() sets the process umask to 0o077, which is right
 * in the storage process but leaks into later test files when jest runs them in one process;
 * those files create install copies that other uids must read. Every file starts from 0o022.
 */
process.umask(0o022);
