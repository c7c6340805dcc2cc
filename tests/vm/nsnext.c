/* nsnext FILE: walks the system's mount namespaces from the caller's own with nsfs's
 * NS_MNT_GET_PREV (towards the host's, the oldest) and then NS_MNT_GET_NEXT (Linux 6.11 and
 * later), joins each with setns() and tries to read FILE there. Built on the host by tests/all, run in the guest by nsnext.sh from an armored unit
 * (refused) and its unarmored twin, whose InaccessiblePaths= hides FILE in its own namespace.
 * Prints "read: CONTENTS" and exits 0 when FILE was read in another namespace; prints
 * "unsupported" and exits 3 when the kernel has no such ioctl; prints why and exits 1
 * otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct mnt_ns_info {
	uint32_t size;
	uint32_t nr_mounts;
	uint64_t mnt_ns_id;
};
#define NSIO 0xb7
#define NS_MNT_GET_NEXT _IOR(NSIO, 11, struct mnt_ns_info)
#define NS_MNT_GET_PREV _IOR(NSIO, 12, struct mnt_ns_info)

/* Walks from the namespace of `fd` with `cmd`: 0 when FILE was read, 3 when the kernel has no
 * such ioctl, 1 otherwise. */
static int walk(int fd, unsigned long cmd, const char *file)
{
	int i;

	for (i = 0; i < 4096; i++) {
		struct mnt_ns_info info = { .size = sizeof(info) };
		int next = ioctl(fd, cmd, &info);
		char buf[256];
		ssize_t n;
		int f;

		if (next < 0) {
			if (errno == ENOTTY && i == 0) {
				printf("unsupported\n");
				return 3;
			}
			printf("%s after %d namespaces: %s\n",
			       cmd == NS_MNT_GET_PREV ? "NS_MNT_GET_PREV" : "NS_MNT_GET_NEXT", i,
			       strerror(errno));
			return 1;
		}
		close(fd);
		fd = next;
		if (setns(fd, CLONE_NEWNS) < 0)
			continue;
		f = open(file, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue;
		n = read(f, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			printf("read: %s", buf);
			return 0;
		}
		close(f);
	}
	return 1;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc != 2)
		return 2;
	rc = walk(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC), NS_MNT_GET_PREV, argv[1]);
	if (rc != 1)
		return rc;
	/* setns() moved this task: its own namespace is the one to walk on from. */
	return walk(open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC), NS_MNT_GET_NEXT, argv[1]);
}
