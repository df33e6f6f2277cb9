/** The file systems that keep their files in RAM, shared by the kernel and the storage service. */

/** statfs(2) f_type values of tmpfs and ramfs, from linux/magic.h. */
export const RAM_FILESYSTEM_TYPES: ReadonlySet<number> = new Set([0x01021994, 0x858458f6]);
