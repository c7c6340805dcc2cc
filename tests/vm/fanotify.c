/* fanotify MODE PATH [FILE]: places one fanotify mark for tests/vm/fanotify.sh, which runs it
 * from an armored unit (where the marks that hand over other processes' files, or hold them,
 * must fail) and from its unarmored twin (where each works). Prints what happened; exits 0 when
 * the mark (and for `mount`, the read) worked, 1 when it failed, 2 on a usage error.
 *
 *   mount DIR FILE   marks the mount at DIR for FAN_OPEN, has a child open FILE, then prints
 *                    "read: " and the first line read through the descriptor the event hands
 *                    over (not opened by this process)
 *   filesystem DIR   marks the file system of DIR for FAN_OPEN
 *   perm FILE        marks FILE for FAN_OPEN_PERM (each open of it would wait for an answer)
 *   inode FILE       marks FILE for FAN_OPEN in a group that reports file handles (FAN_REPORT_FID:
 *                    what an unprivileged process may make)
 *   serve SOCKET     makes a privileged group (FAN_CLASS_CONTENT) and hands it to each client of
 *                    the unix socket SOCKET (SCM_RIGHTS), until killed
 *   take SOCKET filesystem|perm PATH
 *                    takes such a group from SOCKET and marks PATH's file system for FAN_OPEN,
 *                    or PATH for FAN_OPEN_PERM, in it
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int mark(int fan, unsigned int flags, unsigned long long mask, const char *path)
{
	if (fanotify_mark(fan, FAN_MARK_ADD | flags, mask, AT_FDCWD, path) < 0) {
		printf("mark: %s\n", strerror(errno));
		return 1;
	}
	printf("marked\n");
	return 0;
}

/* Waits up to 10 s for an open of `file` and prints its first line from the event's descriptor. */
static int read_event(int fan, const char *file)
{
	char buf[8192], link[64], target[PATH_MAX];
	struct pollfd p = { .fd = fan, .events = POLLIN };

	while (poll(&p, 1, 10000) == 1) {
		ssize_t n = read(fan, buf, sizeof(buf));
		struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;

		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			ssize_t len;

			if (m->fd < 0)
				continue;
			snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fd);
			len = readlink(link, target, sizeof(target) - 1);
			target[len > 0 ? len : 0] = 0;
			if (strcmp(target, file) == 0) {
				char line[256] = "";
				FILE *f = fdopen(m->fd, "r");

				if (f && fgets(line, sizeof(line), f))
					line[strcspn(line, "\n")] = 0;
				printf("read: %s\n", line);
				return 0;
			}
			close(m->fd);
		}
	}
	printf("no event for %s\n", file);
	return 1;
}

static int unix_socket(const char *path, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	strncpy(addr->sun_path, path, sizeof(addr->sun_path) - 1);
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static int serve(const char *path)
{
	int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
	struct sockaddr_un addr;
	int s = unix_socket(path, &addr);

	if (fan < 0 || s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s, 8) < 0) {
		perror("serve");
		return 1;
	}
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 'g';
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		int client = accept(s, NULL, NULL);

		if (client < 0)
			continue;
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fan, sizeof(int));
		sendmsg(client, &msg, 0);
		close(client);
	}
}

static int take(const char *path, const char *mode, const char *target)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct sockaddr_un addr;
	int s = unix_socket(path, &addr), fan;
	struct cmsghdr *c;

	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || recvmsg(s, &msg, 0) < 1 ||
	    !(c = CMSG_FIRSTHDR(&msg)) || c->cmsg_type != SCM_RIGHTS) {
		printf("take: %s\n", strerror(errno));
		return 1;
	}
	memcpy(&fan, CMSG_DATA(c), sizeof(int));
	if (!strcmp(mode, "perm"))
		return mark(fan, 0, FAN_OPEN_PERM, target);
	return mark(fan, FAN_MARK_FILESYSTEM, FAN_OPEN, target);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[1] : "";
	int perm = strcmp(mode, "perm") == 0;
	int fan;

	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "take"))
		return take(argv[2], argv[3], argv[4]);
	if (!(argc == 3 && (perm || !strcmp(mode, "filesystem") || !strcmp(mode, "inode"))) &&
	    !(argc == 4 && !strcmp(mode, "mount"))) {
		fprintf(stderr, "usage: fanotify mount DIR FILE | filesystem DIR | perm FILE | inode FILE |\n"
				"       serve SOCKET | take SOCKET filesystem|perm PATH\n");
		return 2;
	}
	fan = fanotify_init((perm ? FAN_CLASS_CONTENT : FAN_CLASS_NOTIF) | FAN_CLOEXEC |
				    (!strcmp(mode, "inode") ? FAN_REPORT_FID : 0),
			    O_RDONLY | O_LARGEFILE);
	if (fan < 0) {
		printf("fanotify_init: %s\n", strerror(errno));
		return 1;
	}
	if (!strcmp(mode, "filesystem"))
		return mark(fan, FAN_MARK_FILESYSTEM, FAN_OPEN, argv[2]);
	if (perm)
		return mark(fan, 0, FAN_OPEN_PERM, argv[2]);
	if (!strcmp(mode, "inode"))
		return mark(fan, 0, FAN_OPEN, argv[2]);
	if (mark(fan, FAN_MARK_MOUNT, FAN_OPEN, argv[2]))
		return 1;
	if (fork() == 0) {
		int fd = open(argv[3], O_RDONLY);

		_exit(fd < 0);
	}
	wait(NULL);
	return read_event(fan, argv[3]);
}
