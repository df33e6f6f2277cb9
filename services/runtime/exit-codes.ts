/**
 * Exit codes of service processes, read by the kernel to name a crash reason. They sit in the
 * range that sysexits(3) leaves to programs (64-113) and avoid the ones it defines.
 */
export const ServiceExit = {
  ok: 0,
  /** Start-up failed: bad arguments, no secret on fd 3, or the service's start() threw. */
  startFailed: 90,
  /** The kernel sent an envelope that failed verification; the channel was closed. */
  protocolViolation: 91,
  /** The channel to the kernel failed or the kernel went away. */
  channelLost: 92,
} as const;

/**
 * Security event a sandbox sends when an isolate was lost and the process will end itself (by
 * abort) once its runs in flight finish. The kernel then restarts it without the crash backoff.
 */
export const SANDBOX_RESTART_EVENT = 'sandbox.isolate_lost';
