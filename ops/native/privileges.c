/*
 * backtestr_privileges.node: the part of a service's lock-down that must run inside Node.
 *
 *   lockDown(): makes the process not dumpable (execve reset what the launcher set) and stacks
 *               the lock-down seccomp filter on every thread (see lockdown-filter.h).
 *   selfStatus(): facts the kernel cannot read from /proc/<pid>: the dumpable flag, and whether
 *               a Landlock domain confines this process.
 *
 * Written against Node-API version 8 only (node_api.h), so one build serves every Node release
 * with that API; the symbols resolve against the running node binary when the addon loads.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>

#include "lockdown-filter.h"

#define LANDLOCK_CREATE_RULESET_VERSION_FLAG (1U << 0)

static napi_value throw_errno(napi_env env, const char *what, int error) {
  char message[160];
  snprintf(message, sizeof(message), "%s failed: %s", what, strerror(error));
  char code[32];
  snprintf(code, sizeof(code), "%d", error);
  napi_throw_error(env, code, message);
  return NULL;
}

static napi_value lock_down(napi_env env, napi_callback_info info) {
  (void)info;
  if (backtestr_lock_down() != 0) return throw_errno(env, "lockDown", errno);
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

static void set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value number;
  napi_create_double(env, value, &number);
  napi_set_named_property(env, object, name, number);
}

static void set_boolean(napi_env env, napi_value object, const char *name, int value) {
  napi_value boolean;
  napi_get_boolean(env, value != 0, &boolean);
  napi_set_named_property(env, object, name, boolean);
}

/*
 * Landlock offers no query for "am I confined"; this tries to list "/", which every user may read
 * under normal permissions, and takes EACCES as proof of a domain. Another LSM that denies it
 * would read the same, so the field is named for what it measures.
 */
static int root_listing_denied(void) {
  int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == EACCES;
}

static napi_value self_status(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value status;
  napi_create_object(env, &status);
  set_boolean(env, status, "dumpable", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0);
  set_boolean(env, status, "noNewPrivs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
  set_number(env, status, "seccompMode", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION_FLAG);
  set_number(env, status, "landlockAbi", abi > 0 ? (double)abi : 0);
  set_boolean(env, status, "rootListingDenied", root_listing_denied());
  return status;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    { "lockDown", NULL, lock_down, NULL, NULL, NULL, napi_enumerable, NULL },
    { "selfStatus", NULL, self_status, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
