/*
 * backtestr-launcher: applies one service's operating-system policy to itself, then execs the
 * program that runs the service (Node). Linux only.
 *
 *   backtestr-launcher --service NAME --max-open-files N [--uid N --gid N]
 *                      [--read PATH]... [--exec PATH]... [--write PATH]...
 *                      [--allow-missing MECHANISM]... [--report-fd N] -- PROGRAM [ARGS...]
 *
 * Steps, in this order, because each one needs privileges that a later one gives up:
 *   1. rlimits: RLIMIT_CORE 0 and RLIMIT_NOFILE N (soft and hard).
 *   2. a private network namespace without interfaces: unshare(CLONE_NEWNET) as root, or
 *      CLONE_NEWUSER|CLONE_NEWNET with the caller's own uid and gid mapped otherwise.
 *   3. the capability bounding and ambient sets emptied (needs CAP_SETPCAP, which root and the
 *      owner of a fresh user namespace have).
 *   4. as root only: no supplementary groups, then the service's own gid and uid.
 *   5. the permitted, effective and inheritable sets emptied with capset.
 *   6. no_new_privs, and not dumpable (execve resets dumpable, so the service sets it again).
 *   7. Landlock: read, read-and-execute and read-write path rules; no TCP bind or connect; no
 *      signals or abstract Unix sockets outside the domain.
 *   8. the base seccomp filter (see base_filter below).
 *   9. read back uid, gid, groups, capabilities and no_new_privs, then execve.
 * Mechanisms that may be missing: network-namespace, capability-bounding, landlock. Each one
 * that is missing stops the launch (exit 93) unless --allow-missing names it. Whatever is
 * missing is listed in the report, a single JSON line written to --report-fd (default 2) just
 * before execve. rlimits, the uid change, capset, no_new_privs and seccomp are never optional.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "landlock-abi.h"
#include "seccomp-bpf.h"

/* Exit status when a policy cannot be applied; 90-92 belong to the service runtime. */
#define EXIT_POLICY_FAILED 93
#define MAX_PATH_RULES 64

enum path_kind { PATH_READ, PATH_EXEC, PATH_WRITE };

struct path_rule {
  const char *path;
  enum path_kind kind;
};

struct policy {
  const char *service;
  long max_open_files;
  long uid;
  long gid;
  int report_fd;
  int allow_missing_netns;
  int allow_missing_bounding;
  int allow_missing_landlock;
  struct path_rule rules[MAX_PATH_RULES];
  int rule_count;
  char **program_argv;
};

/* What was applied, for the report line. */
struct outcome {
  const char *network;
  int landlock_abi;
  int bounding_dropped;
  int uid_changed;
  const char *missing[4];
  int missing_count;
};

static const char *service_name = "?";

static void fail(const char *step, int error) {
  fprintf(stderr, "backtestr-launcher: %s: %s failed: %s (errno %d)\n", service_name, step, strerror(error), error);
  exit(EXIT_POLICY_FAILED);
}

static void fail_usage(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "backtestr-launcher: ");
  vfprintf(stderr, format, args);
  fprintf(stderr, "\nusage: backtestr-launcher --service NAME --max-open-files N [--uid N --gid N] "
                  "[--read|--exec|--write PATH]... [--allow-missing network-namespace|capability-bounding|landlock]... "
                  "[--report-fd N] -- PROGRAM [ARGS...]\n");
  va_end(args);
  exit(EXIT_POLICY_FAILED);
}

static long parse_number(const char *option, const char *text, long min, long max) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
    fail_usage("invalid value for %s: '%s' (expected an integer from %ld to %ld)", option, text, min, max);
  }
  return value;
}

static void parse_arguments(int argc, char **argv, struct policy *policy) {
  memset(policy, 0, sizeof(*policy));
  policy->max_open_files = -1;
  policy->uid = -1;
  policy->gid = -1;
  policy->report_fd = 2;

  int i = 1;
  for (; i < argc; i++) {
    const char *option = argv[i];
    if (strcmp(option, "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) fail_usage("missing value for %s", option);
    const char *value = argv[++i];
    if (strcmp(option, "--service") == 0) {
      policy->service = value;
    } else if (strcmp(option, "--max-open-files") == 0) {
      policy->max_open_files = parse_number(option, value, 16, 1048576);
    } else if (strcmp(option, "--uid") == 0) {
      policy->uid = parse_number(option, value, 1, 4294967294L);
    } else if (strcmp(option, "--gid") == 0) {
      policy->gid = parse_number(option, value, 1, 4294967294L);
    } else if (strcmp(option, "--report-fd") == 0) {
      policy->report_fd = (int)parse_number(option, value, 1, 1023);
    } else if (strcmp(option, "--read") == 0 || strcmp(option, "--exec") == 0 || strcmp(option, "--write") == 0) {
      if (policy->rule_count == MAX_PATH_RULES) fail_usage("more than %d path rules", MAX_PATH_RULES);
      if (value[0] != '/') fail_usage("%s needs an absolute path, got '%s'", option, value);
      enum path_kind kind = option[2] == 'r' ? PATH_READ : option[2] == 'e' ? PATH_EXEC : PATH_WRITE;
      policy->rules[policy->rule_count++] = (struct path_rule){ value, kind };
    } else if (strcmp(option, "--allow-missing") == 0) {
      if (strcmp(value, "network-namespace") == 0) policy->allow_missing_netns = 1;
      else if (strcmp(value, "capability-bounding") == 0) policy->allow_missing_bounding = 1;
      else if (strcmp(value, "landlock") == 0) policy->allow_missing_landlock = 1;
      else fail_usage("unknown mechanism for --allow-missing: '%s'", value);
    } else {
      fail_usage("unknown option '%s'", option);
    }
  }

  if (!policy->service) fail_usage("missing --service");
  service_name = policy->service;
  if (policy->max_open_files < 0) fail_usage("missing --max-open-files");
  if ((policy->uid < 0) != (policy->gid < 0)) fail_usage("--uid and --gid go together");
  if (i >= argc) fail_usage("missing the program to run after --");
  if (argv[i][0] != '/') fail_usage("the program must be an absolute path, got '%s'", argv[i]);
  policy->program_argv = &argv[i];
}

static void note_missing(struct outcome *outcome, const char *mechanism, int allowed, int error) {
  if (!allowed) {
    fprintf(stderr, "backtestr-launcher: %s: %s is not available (%s) and the policy does not allow running without it\n",
            service_name, mechanism, strerror(error));
    exit(EXIT_POLICY_FAILED);
  }
  outcome->missing[outcome->missing_count++] = mechanism;
}

static void apply_rlimits(const struct policy *policy) {
  struct rlimit core = { 0, 0 };
  if (setrlimit(RLIMIT_CORE, &core) != 0) fail("setrlimit(RLIMIT_CORE)", errno);
  struct rlimit files = { (rlim_t)policy->max_open_files, (rlim_t)policy->max_open_files };
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) fail("setrlimit(RLIMIT_NOFILE)", errno);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(path, errno);
  size_t length = strlen(text);
  if (write(fd, text, length) != (ssize_t)length) fail(path, errno);
  close(fd);
}

/*
 * A user namespace owned by the caller, in which the caller's uid and gid map to themselves.
 * setgroups must be denied before an unprivileged process may write gid_map (user_namespaces(7)).
 */
static int enter_user_and_network_namespace(void) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return -1;
  char map[64];
  write_file("/proc/self/setgroups", "deny");
  snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
  write_file("/proc/self/gid_map", map);
  return 0;
}

static void enter_network_namespace(const struct policy *policy, struct outcome *outcome) {
  if (geteuid() == 0) {
    if (unshare(CLONE_NEWNET) == 0) {
      outcome->network = "own";
      return;
    }
  } else if (enter_user_and_network_namespace() == 0) {
    outcome->network = "own-in-user-namespace";
    return;
  }
  outcome->network = "shared";
  note_missing(outcome, "network-namespace", policy->allow_missing_netns, errno);
}

static int last_capability(void) {
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[16] = { 0 };
    ssize_t count = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (count > 0) return atoi(text);
  }
  return CAP_LAST_CAP;
}

static void drop_bounding_and_ambient(const struct policy *policy, struct outcome *outcome) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) fail("clearing the ambient capability set", errno);
  int last = last_capability();
  for (int cap = 0; cap <= last; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      /* Without CAP_SETPCAP nothing can be dropped; with no_new_privs the set can never be used. */
      if (errno == EPERM && cap == 0) {
        note_missing(outcome, "capability-bounding", policy->allow_missing_bounding, errno);
        return;
      }
      fail("dropping the capability bounding set", errno);
    }
  }
  outcome->bounding_dropped = 1;
}

static void change_ids(const struct policy *policy, struct outcome *outcome) {
  if (geteuid() != 0 || policy->uid < 0) return;
  if (setgroups(0, NULL) != 0) fail("setgroups", errno);
  if (setresgid((gid_t)policy->gid, (gid_t)policy->gid, (gid_t)policy->gid) != 0) fail("setresgid", errno);
  if (setresuid((uid_t)policy->uid, (uid_t)policy->uid, (uid_t)policy->uid) != 0) fail("setresuid", errno);
  outcome->uid_changed = 1;
}

static void clear_capabilities(void) {
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  if (syscall(SYS_capset, &header, data) != 0) fail("capset", errno);
}

/* The access rights that ABI version `abi` knows, so that all of them are handled (denied by default). */
static uint64_t handled_fs_rights(int abi) {
  uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
  if (abi >= 2) rights |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return rights;
}

static uint64_t rule_rights(enum path_kind kind, int is_directory, uint64_t handled) {
  uint64_t rights = LANDLOCK_ACCESS_FS_READ_FILE;
  if (kind == PATH_EXEC) rights |= LANDLOCK_ACCESS_FS_EXECUTE;
  if (kind == PATH_WRITE) {
    rights |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
    if (is_directory) {
      rights |= LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
                LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REFER;
    }
  }
  if (is_directory) rights |= LANDLOCK_ACCESS_FS_READ_DIR;
  return rights & handled;
}

static void apply_landlock(const struct policy *policy, struct outcome *outcome) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) {
    note_missing(outcome, "landlock", policy->allow_missing_landlock, abi < 0 ? errno : ENOSYS);
    return;
  }

  struct backtestr_landlock_ruleset_attr attributes = { 0 };
  attributes.handled_access_fs = handled_fs_rights((int)abi);
  size_t size = sizeof(attributes.handled_access_fs);
  if (abi >= 4) {
    /* Handled with no rule, so no TCP bind or connect at all. */
    attributes.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    size = offsetof(struct backtestr_landlock_ruleset_attr, scoped);
  }
  if (abi >= 6) {
    attributes.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
    size = sizeof(attributes);
  }
  int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attributes, size, 0);
  if (ruleset < 0) fail("landlock_create_ruleset", errno);

  for (int i = 0; i < policy->rule_count; i++) {
    const struct path_rule *rule = &policy->rules[i];
    int fd = open(rule->path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
      /* A missing library directory (no /lib64 on some systems) grants nothing, so it is skipped. */
      if (errno == ENOENT && rule->kind != PATH_WRITE) continue;
      fprintf(stderr, "backtestr-launcher: %s: cannot open %s for a Landlock rule: %s\n", service_name, rule->path, strerror(errno));
      exit(EXIT_POLICY_FAILED);
    }
    struct stat info;
    if (fstat(fd, &info) != 0) fail("fstat of a Landlock path", errno);
    struct backtestr_landlock_path_beneath_attr beneath = {
      .allowed_access = rule_rights(rule->kind, S_ISDIR(info.st_mode), attributes.handled_access_fs),
      .parent_fd = fd,
    };
    if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) != 0) fail(rule->path, errno);
    close(fd);
  }

  if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) fail("landlock_restrict_self", errno);
  close(ruleset);
  outcome->landlock_abi = (int)abi;
}

/*
 * Namespace flags of clone(2). clone3 takes its flags in memory, out of a filter's reach, and
 * CLONE_NEWTIME exists only for clone3 and unshare (in clone's flags that bit is part of the
 * exit signal).
 */
/* Group and other permission bits (0077): a service's files stay private to its uid. */
#define PRIVATE_MODE_BITS 0077U
/*
 * Five instructions: if the call is `nr` and its mode argument `arg` has any PRIVATE_MODE_BITS,
 * fail it with EPERM, else allow it. The number is still in the accumulator when it is not `nr`.
 */
#define BPF_DENY_MODE_BITS(nr, arg) \
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 4), \
  BPF_LOAD_ARG_LOW(arg), \
  BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PRIVATE_MODE_BITS, 0, 1), \
  BPF_DENY(EPERM), \
  BPF_ALLOW

#define NAMESPACE_CLONE_FLAGS \
  (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/*
 * The base filter: every listed call fails with EPERM. Calls that reach other processes
 * (ptrace, process_vm_*, pidfd_getfd, kcmp), change mounts or namespaces, load kernel code
 * (modules, kexec, bpf), observe the kernel (perf_event_open, syslog), reach the kernel
 * keyring, or bypass the filter (io_uring runs its operations outside seccomp's view) are
 * denied. socket and socketpair are allowed for AF_UNIX only; clone is denied when it asks for
 * a new namespace, and clone3 returns ENOSYS so that the C library falls back to clone.
 */
static struct sock_filter base_filter[] = {
  BPF_CHECK_ARCH,
  BPF_LOAD_NR,
#ifdef BACKTESTR_X32_SYSCALL_BIT
  BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, BACKTESTR_X32_SYSCALL_BIT, 0, 1),
  BPF_DENY(EPERM),
#endif
  BPF_DENY_NR(__NR_ptrace, EPERM),
  BPF_DENY_NR(__NR_process_vm_readv, EPERM),
  BPF_DENY_NR(__NR_process_vm_writev, EPERM),
  BPF_DENY_NR(__NR_pidfd_getfd, EPERM),
  BPF_DENY_NR(__NR_kcmp, EPERM),
  BPF_DENY_NR(__NR_mount, EPERM),
  BPF_DENY_NR(__NR_umount2, EPERM),
  BPF_DENY_NR(__NR_pivot_root, EPERM),
  BPF_DENY_NR(__NR_chroot, EPERM),
  BPF_DENY_NR(__NR_fsopen, EPERM),
  BPF_DENY_NR(__NR_fsconfig, EPERM),
  BPF_DENY_NR(__NR_fsmount, EPERM),
  BPF_DENY_NR(__NR_fspick, EPERM),
  BPF_DENY_NR(__NR_move_mount, EPERM),
  BPF_DENY_NR(__NR_open_tree, EPERM),
  BPF_DENY_NR(__NR_unshare, EPERM),
  BPF_DENY_NR(__NR_setns, EPERM),
  BPF_DENY_NR(__NR_init_module, EPERM),
  BPF_DENY_NR(__NR_finit_module, EPERM),
  BPF_DENY_NR(__NR_delete_module, EPERM),
#ifdef __NR_kexec_load
  BPF_DENY_NR(__NR_kexec_load, EPERM),
#endif
#ifdef __NR_kexec_file_load
  BPF_DENY_NR(__NR_kexec_file_load, EPERM),
#endif
  BPF_DENY_NR(__NR_bpf, EPERM),
  BPF_DENY_NR(__NR_perf_event_open, EPERM),
  BPF_DENY_NR(__NR_syslog, EPERM),
  BPF_DENY_NR(__NR_keyctl, EPERM),
  BPF_DENY_NR(__NR_add_key, EPERM),
  BPF_DENY_NR(__NR_request_key, EPERM),
  BPF_DENY_NR(__NR_userfaultfd, EPERM),
  BPF_DENY_NR(__NR_reboot, EPERM),
  BPF_DENY_NR(__NR_swapon, EPERM),
  BPF_DENY_NR(__NR_swapoff, EPERM),
  BPF_DENY_NR(__NR_acct, EPERM),
  BPF_DENY_NR(__NR_open_by_handle_at, EPERM),
  BPF_DENY_NR(__NR_io_uring_setup, ENOSYS),
  BPF_DENY_NR(__NR_io_uring_enter, ENOSYS),
  BPF_DENY_NR(__NR_io_uring_register, ENOSYS),
  BPF_DENY_NR(__NR_clone3, ENOSYS),
  /* System V IPC and POSIX message queues are shared by every process of the host (the IPC
   * namespace is not unshared), so they would be a channel around the kernel's routing. */
  BPF_DENY_NR(__NR_shmget, EPERM),
  BPF_DENY_NR(__NR_shmat, EPERM),
  BPF_DENY_NR(__NR_shmctl, EPERM),
  BPF_DENY_NR(__NR_shmdt, EPERM),
  BPF_DENY_NR(__NR_msgget, EPERM),
  BPF_DENY_NR(__NR_msgsnd, EPERM),
  BPF_DENY_NR(__NR_msgrcv, EPERM),
  BPF_DENY_NR(__NR_msgctl, EPERM),
  BPF_DENY_NR(__NR_semget, EPERM),
  BPF_DENY_NR(__NR_semop, EPERM),
  BPF_DENY_NR(__NR_semtimedop, EPERM),
  BPF_DENY_NR(__NR_semctl, EPERM),
  BPF_DENY_NR(__NR_mq_open, EPERM),
  /* inotify and fanotify report names and opens in directories that Landlock keeps the service
   * from listing; no service watches files. */
#ifdef __NR_inotify_init
  BPF_DENY_NR(__NR_inotify_init, EPERM),
#endif
  BPF_DENY_NR(__NR_inotify_init1, EPERM),
  BPF_DENY_NR(__NR_inotify_add_watch, EPERM),
  BPF_DENY_NR(__NR_fanotify_init, EPERM),
  BPF_DENY_NR(__NR_fanotify_mark, EPERM),
  /* Extended attributes could grant access through POSIX ACLs; no service sets any. */
  BPF_DENY_NR(__NR_setxattr, EPERM),
  BPF_DENY_NR(__NR_lsetxattr, EPERM),
  BPF_DENY_NR(__NR_fsetxattr, EPERM),
#ifdef __NR_setxattrat
  BPF_DENY_NR(__NR_setxattrat, EPERM),
#endif
  /* Modes: Landlock does not cover chmod, so a service could open its files (or, with the same
   * uid, another profile's) to every local user. Any mode with group or other bits is refused,
   * and so is a umask that would let new files get them. */
#ifdef __NR_chmod
  BPF_DENY_MODE_BITS(__NR_chmod, 1),
#endif
  BPF_DENY_MODE_BITS(__NR_fchmod, 1),
  BPF_DENY_MODE_BITS(__NR_fchmodat, 2),
#ifdef __NR_fchmodat2
  BPF_DENY_MODE_BITS(__NR_fchmodat2, 2),
#endif
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_umask, 0, 5),
  BPF_LOAD_ARG_LOW(0),
  BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PRIVATE_MODE_BITS),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PRIVATE_MODE_BITS, 1, 0),
  BPF_DENY(EPERM),
  BPF_ALLOW,
  /* socket(domain, ...) and socketpair(domain, ...): AF_UNIX only. */
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 0, 4),
  BPF_LOAD_ARG_LOW(0),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
  BPF_ALLOW,
  BPF_DENY(EPERM),
  /* clone(flags, ...): the flags are the first argument on x86-64 and aarch64. */
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
  BPF_LOAD_ARG_LOW(0),
  BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NAMESPACE_CLONE_FLAGS, 0, 1),
  BPF_DENY(EPERM),
  BPF_ALLOW,
};

static void apply_seccomp(void) {
  struct sock_fprog program = {
    .len = (unsigned short)(sizeof(base_filter) / sizeof(base_filter[0])),
    .filter = base_filter,
  };
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) fail("seccomp", errno);
}

/* Reads back what the kernel now holds; any difference from the policy stops the launch. */
static void verify(const struct policy *policy, const struct outcome *outcome) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0) fail("getresuid", errno);
  if (outcome->uid_changed && (ruid != (uid_t)policy->uid || euid != ruid || suid != ruid || rgid != (gid_t)policy->gid || egid != rgid || sgid != rgid)) {
    fail("verifying the uid and gid change", EPERM);
  }
  if (outcome->uid_changed && getgroups(0, NULL) != 0) fail("verifying that no supplementary groups remain", EPERM);
  /* A second safeguard: the kernel always passes --uid when it runs as root, so a service with
   * uid 0 means a wrong call, even though every capability is gone below. */
  if (ruid == 0 || euid == 0 || suid == 0) fail("verifying that the service does not run as root (pass --uid and --gid)", EPERM);

  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0) fail("capget", errno);
  for (int i = 0; i < 2; i++) {
    if (data[i].effective || data[i].permitted || data[i].inheritable) fail("verifying that no capability remains", EPERM);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SYS_ADMIN, 0, 0) != 0) fail("verifying the ambient set", EPERM);
  if (outcome->bounding_dropped && prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0) fail("verifying the bounding set", EPERM);
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) fail("verifying no_new_privs", EPERM);
}

static void report(const struct policy *policy, const struct outcome *outcome) {
  char missing[128] = "";
  for (int i = 0; i < outcome->missing_count; i++) {
    size_t used = strlen(missing);
    snprintf(missing + used, sizeof(missing) - used, "%s\"%s\"", i ? "," : "", outcome->missing[i]);
  }
  /* The service name was checked by the kernel against a closed list; it needs no JSON escaping. */
  dprintf(policy->report_fd,
          "{\"backtestrLauncher\":1,\"service\":\"%s\",\"pid\":%d,\"uid\":%u,\"gid\":%u,\"network\":\"%s\","
          "\"landlockAbi\":%d,\"boundingDropped\":%s,\"missing\":[%s]}\n",
          policy->service, (int)getpid(), (unsigned)getuid(), (unsigned)getgid(), outcome->network, outcome->landlock_abi,
          outcome->bounding_dropped ? "true" : "false", missing);
}

static void validate_service_name(const char *name) {
  for (const char *c = name; *c; c++) {
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) fail_usage("invalid service name '%s'", name);
  }
}

int main(int argc, char **argv) {
  struct policy policy;
  struct outcome outcome = { .network = "shared" };
  parse_arguments(argc, argv, &policy);
  validate_service_name(policy.service);

  apply_rlimits(&policy);
  enter_network_namespace(&policy, &outcome);
  drop_bounding_and_ambient(&policy, &outcome);
  change_ids(&policy, &outcome);
  clear_capabilities();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS", errno);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail("PR_SET_DUMPABLE", errno);
  apply_landlock(&policy, &outcome);
  apply_seccomp();
  verify(&policy, &outcome);

  report(&policy, &outcome);
  /* Only stdin, stdout, stderr and the secret pipe (fd 3) pass to the service. */
  if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) fail("close_range", errno);
  execve(policy.program_argv[0], policy.program_argv, environ);
  fail("execve", errno);
  return EXIT_POLICY_FAILED;
}
