/**
 * Runs before each test file and resets the umask to 0o022. Storage's start() sets it to 0o077,
 * which is right in the storage process but leaks into later test files when jest runs them in
 * one process. Those files create install copies that other uids must read.
 */
process.umask(0o022);
