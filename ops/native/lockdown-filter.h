/*
 * The second seccomp filter, stacked once a service has started: it denies execve and execveat
 * (services never start programs, but the launcher had to exec Node, so the first filter allows
 * them) and prctl(PR_SET_DUMPABLE), so that a compromised service cannot make itself dumpable
 * again. Shared by the N-API addon and the test probe so that both install the same program.
 */
#ifndef BACKTESTR_LOCKDOWN_FILTER_H
#define BACKTESTR_LOCKDOWN_FILTER_H

#include <sys/prctl.h>
#include "../launcher/seccomp-bpf.h"

static struct sock_filter backtestr_lockdown_program[] = {
  BPF_CHECK_ARCH,
  BPF_LOAD_NR,
  BPF_DENY_NR(__NR_execve, EPERM),
  BPF_DENY_NR(__NR_execveat, EPERM),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prctl, 0, 3),
  BPF_LOAD_ARG_LOW(0),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_DUMPABLE, 0, 1),
  BPF_DENY(EPERM),
  BPF_ALLOW,
};

/*
 * Makes the calling process not dumpable and installs the lock-down filter on every thread
 * (SECCOMP_FILTER_FLAG_TSYNC). Returns 0, or -1 with errno set. Requires no_new_privs, which the
 * launcher sets; a positive return from seccomp() with TSYNC names a thread that could not be
 * synchronized, reported here as ESRCH.
 */
static int backtestr_lock_down(void) {
  struct sock_fprog program = {
    .len = (unsigned short)(sizeof(backtestr_lockdown_program) / sizeof(backtestr_lockdown_program[0])),
    .filter = backtestr_lockdown_program,
  };
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -1;
  long result = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program);
  if (result > 0) {
    errno = ESRCH;
    return -1;
  }
  return result == 0 ? 0 : -1;
}

#endif
