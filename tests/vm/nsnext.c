/* nsnext FILE [odd]: walks the system's mount namespaces from the caller's own with nsfs's
 * NS_MNT_GET_PREV (towards the host's, the oldest) and then NS_MNT_GET_NEXT (Linux 6.11 and
 * later), joins each with setns() and tries to read FILE there. With "odd", the ioctls are
 * encoded with another type and direction ('X', write): nsfs picks them by number alone.
 * nsnext join SOCKET FILE: receives a descriptor of a mount namespace over the unix socket
 * SOCKET (SCM_RIGHTS: fdpass serve SOCKET /proc/1/ns/mnt), joins it with setns() and reads FILE
 * there.
 * Built on the host by tests/all, run in the guest by nsnext.sh from an armored unit (refused)
 * and its unarmored twin, whose InaccessiblePaths= hides FILE in its own namespace.
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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct mnt_ns_info {
	uint32_t size;
	uint32_t nr_mounts;
	uint64_t mnt_ns_id;
};
#define NSIO 0xb7
#define NS_MNT_GET_NEXT _IOR(NSIO, 11, struct mnt_ns_info)
#define NS_MNT_GET_PREV _IOR(NSIO, 12, struct mnt_ns_info)
#define ODD_GET_NEXT _IOW('X', 11, struct mnt_ns_info)
#define ODD_GET_PREV _IOW('X', 12, struct mnt_ns_info)

/* Reads FILE and prints it: 0 if it could be read. */
static int read_file(const char *file)
{
	char buf[256];
	ssize_t n;
	int f = open(file, O_RDONLY | O_CLOEXEC);

	if (f < 0)
		return 1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return 1;
	buf[n] = 0;
	printf("read: %s", buf);
	return 0;
}

/* Walks from the namespace of `fd` with `cmd`: 0 when FILE was read, 3 when the kernel has no
 * such ioctl, 1 otherwise. */
static int walk(int fd, unsigned long cmd, const char *file)
{
	int i;

	for (i = 0; i < 4096; i++) {
		struct mnt_ns_info info = { .size = sizeof(info) };
		int next = ioctl(fd, cmd, &info);
		if (next < 0) {
			if (errno == ENOTTY && i == 0) {
				printf("unsupported\n");
				return 3;
			}
			printf("%s after %d namespaces: %s\n",
			       cmd == NS_MNT_GET_PREV || cmd == ODD_GET_PREV ? "NS_MNT_GET_PREV" :
									   "NS_MNT_GET_NEXT",
			       i, strerror(errno));
			return 1;
		}
		close(fd);
		fd = next;
		if (setns(fd, CLONE_NEWNS) < 0)
			continue;
		if (read_file(file) == 0)
			return 0;
	}
	return 1;
}

/* A descriptor received over the unix socket at `path`, or -1 (why is printed). */
static int receive(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char byte, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h;
	int s = socket(AF_UNIX, SOCK_STREAM, 0), fd;

	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if (s < 0 || connect(s, (void *)&sun, sizeof(sun)) < 0) {
		printf("connect %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (recvmsg(s, &m, 0) != 1) {
		printf("recvmsg: %s\n", strerror(errno));
		return -1;
	}
	for (h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			memcpy(&fd, CMSG_DATA(h), sizeof(int));
			return fd;
		}
	}
	printf("no descriptor\n");
	return -1;
}

int main(int argc, char **argv)
{
	int odd = argc == 3 && strcmp(argv[2], "odd") == 0;
	int rc, fd;

	if (argc == 4 && strcmp(argv[1], "join") == 0) {
		fd = receive(argv[2]);
		if (fd < 0)
			return 1;
		if (setns(fd, CLONE_NEWNS) < 0) {
			printf("setns: %s\n", strerror(errno));
			return 1;
		}
		if (read_file(argv[3]) == 0)
			return 0;
		printf("joined, but %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	if (argc != 2 && !odd)
		return 2;
	rc = walk(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC),
		  odd ? ODD_GET_PREV : NS_MNT_GET_PREV, argv[1]);
	if (rc != 1)
		return rc;
	/* setns() moved this task: its own namespace is the one to walk on from. */
	return walk(open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC),
		    odd ? ODD_GET_NEXT : NS_MNT_GET_NEXT, argv[1]);
}
