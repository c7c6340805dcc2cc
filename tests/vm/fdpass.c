/*
 * fdpass: hands a descriptor over a unix socket (SCM_RIGHTS), for receive.sh.
 *
 *   fdpass serve SOCKET FILE   listens at SOCKET; sends each client a descriptor of FILE,
 *                              opened read-only by this process
 *   fdpass recv SOCKET         connects, receives one descriptor and prints the first bytes
 *                              read through it ("read: ..."), or "no descriptor"; exits 0 only
 *                              when it read through a received descriptor
 */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", path);
	return socket(AF_UNIX, SOCK_STREAM, 0);
}

static int serve(const char *path, const char *file)
{
	struct sockaddr_un sun;
	int s = addr(path, &sun);

	unlink(path);
	if (s < 0 || bind(s, (void *)&sun, sizeof(sun)) || listen(s, 8)) {
		perror("fdpass: listen");
		return 1;
	}
	for (;;) {
		int c = accept(s, 0, 0), fd = open(file, O_RDONLY);
		char byte = 'x', ctl[CMSG_SPACE(sizeof(int))] = { 0 };
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				    .msg_controllen = sizeof(ctl) };
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);

		if (c < 0 || fd < 0) {
			perror("fdpass: accept or open");
			return 1;
		}
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
		if (sendmsg(c, &m, 0) != 1)
			perror("fdpass: sendmsg");
		close(fd);
		close(c);
	}
}

static int recv_fd(const char *path)
{
	struct sockaddr_un sun;
	int s = addr(path, &sun), fd = -1;
	char byte, buf[64] = { 0 }, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			    .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h;
	ssize_t n;

	if (s < 0 || connect(s, (void *)&sun, sizeof(sun))) {
		perror("fdpass: connect");
		return 2;
	}
	if (recvmsg(s, &m, 0) != 1) {
		perror("fdpass: recvmsg");
		return 2;
	}
	for (h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(h), sizeof(int));
	if (fd < 0) {
		printf("no descriptor%s\n", m.msg_flags & MSG_CTRUNC ? " (control data truncated)" : "");
		return 1;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0) {
		perror("fdpass: read");
		return 1;
	}
	buf[strcspn(buf, "\n")] = 0;
	printf("read: %s\n", buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "recv") == 0)
		return recv_fd(argv[2]);
	fprintf(stderr, "usage: fdpass serve SOCKET FILE | fdpass recv SOCKET\n");
	return 2;
}
