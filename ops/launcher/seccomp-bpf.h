/*
 * Helpers shared by the launcher's base seccomp filter and the addon's lock-down filter: the
 * audit architecture this file is compiled for and short macros for classic BPF programs.
 * The filter program format is described in the kernel's Documentation/userspace-api/seccomp_filter.rst.
 */
#ifndef BACKTESTR_SECCOMP_BPF_H
#define BACKTESTR_SECCOMP_BPF_H

#include <errno.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define BACKTESTR_AUDIT_ARCH AUDIT_ARCH_X86_64
/* x32 system calls share the x86-64 arch value and set this bit in the number. */
#define BACKTESTR_X32_SYSCALL_BIT 0x40000000U
#elif defined(__aarch64__)
#define BACKTESTR_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "backtestr: seccomp filters are written for x86-64 and aarch64 only"
#endif

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif

#define BPF_LOAD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define BPF_LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
/* Low 32 bits of argument `i` on a little-endian machine; every argument we test is an int. */
#define BPF_LOAD_ARG_LOW(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[(i)]))
#define BPF_RETURN(value) BPF_STMT(BPF_RET | BPF_K, (value))
#define BPF_DENY(err) BPF_RETURN(SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))
#define BPF_ALLOW BPF_RETURN(SECCOMP_RET_ALLOW)
/* Two instructions: if the number in the accumulator is `nr`, fail the call with `err`. */
#define BPF_DENY_NR(nr, err) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_DENY(err)
/* Kill the process on a foreign architecture, whose system call numbers mean other calls. */
#define BPF_CHECK_ARCH \
  BPF_LOAD_ARCH, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BACKTESTR_AUDIT_ARCH, 1, 0), BPF_RETURN(SECCOMP_RET_KILL_PROCESS)

#endif
