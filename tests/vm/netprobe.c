/*
 * netprobe: the socket operations net.sh tries from armored units and their twins.
 * Prints "ok" or the errno name of the first failing step, and exits 0 only on success.
 *
 *   netprobe socket FAMILY TYPE [PROTO]     socket(2) with these numbers
 *   netprobe connect tcp|udp|mptcp ADDR PORT
 *   netprobe mapped ADDR4 PORT              TCP connect of an IPv6 socket to ::ffff:ADDR4
 *   netprobe sendto ADDR PORT               one UDP datagram, no connect()
 *   netprobe fastopen ADDR PORT             TCP Fast Open: sendto(MSG_FASTOPEN), no connect()
 *   netprobe bind tcp|udp ADDR PORT
 *   netprobe listen-unbound                 listen() on a TCP socket with no port
 *   netprobe bind-unspec PORT               bind() of an IPv4 TCP socket to AF_UNSPEC, PORT
 *   netprobe sendto-unspec ADDR4 PORT       one UDP datagram to AF_UNSPEC, ADDR4, PORT
 *   netprobe ipopts                         sets a loose source route (IP_OPTIONS)
 *   netprobe serve ADDR PORT...             listens on each (ADDR PORT) and accepts forever
 *   netprobe unix stream|dgram NAME         connect() to a unix socket; NAME is a path, or
 *                                           @NAME for an abstract one
 *   netprobe unix-sendto NAME               one datagram to a unix socket, no connect()
 *   netprobe unix-serve NAME...             binds each NAME (a path ending in .dgram is a
 *                                           datagram socket, the rest listen) and serves forever
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static int result(int ok)
{
	if (ok) {
		puts("ok");
		return 0;
	}
	puts(strerrorname_np(errno) ? strerrorname_np(errno) : "error");
	return 1;
}

/* Fills `ss` from a numeric IPv4 or IPv6 address and a port; returns its length or 0. */
static socklen_t address(const char *addr, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (void *)ss;
	struct sockaddr_in6 *in6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(atoi(port));
		return sizeof(*in);
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(atoi(port));
		return sizeof(*in6);
	}
	fprintf(stderr, "netprobe: '%s' is not a numeric address\n", addr);
	exit(2);
}

static int proto_socket(const char *proto, int family)
{
	if (strcmp(proto, "udp") == 0)
		return socket(family, SOCK_DGRAM, 0);
	if (strcmp(proto, "mptcp") == 0)
		return socket(family, SOCK_STREAM, IPPROTO_MPTCP);
	return socket(family, SOCK_STREAM, 0);
}

static int serve(int n, char **args)
{
	struct pollfd fds[16];
	int i, one = 1;

	for (i = 0; i < n / 2 && i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t len = address(args[2 * i], args[2 * i + 1], &ss);
		int fd = socket(ss.ss_family, SOCK_STREAM, 0);

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (fd < 0 || bind(fd, (void *)&ss, len) || listen(fd, 64))
			return result(0);
		fds[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	for (;;) {
		if (poll(fds, i, -1) < 0)
			continue;
		for (int j = 0; j < i; j++)
			if (fds[j].revents & POLLIN) {
				int c = accept(fds[j].fd, 0, 0);
				if (c >= 0)
					close(c);
			}
	}
}

/* Fills `un` from a path or an @abstract name; returns its length. */
static socklen_t unix_address(const char *name, struct sockaddr_un *un)
{
	size_t n = strlen(name);

	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	if (n >= sizeof(un->sun_path)) {
		fprintf(stderr, "netprobe: '%s' is too long\n", name);
		exit(2);
	}
	memcpy(un->sun_path, name, n);
	if (name[0] != '@')
		return sizeof(un->sun_family) + n + 1;
	un->sun_path[0] = 0;
	return sizeof(un->sun_family) + n;
}

static int unix_serve(int n, char **names)
{
	struct pollfd fds[16];
	int i;

	for (i = 0; i < n && i < 16; i++) {
		struct sockaddr_un un;
		socklen_t len = unix_address(names[i], &un);
		size_t l = strlen(names[i]);
		int dgram = l > 6 && strcmp(names[i] + l - 6, ".dgram") == 0;
		int fd = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);

		if (names[i][0] != '@')
			unlink(names[i]);
		if (fd < 0 || bind(fd, (void *)&un, len) || (!dgram && listen(fd, 64)))
			return result(0);
		fds[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	for (;;) {
		char buf[64];

		if (poll(fds, i, -1) < 0)
			continue;
		for (int j = 0; j < i; j++) {
			if (!(fds[j].revents & POLLIN))
				continue;
			int c = accept(fds[j].fd, 0, 0);

			if (c >= 0)
				close(c);
			else
				(void)!read(fds[j].fd, buf, sizeof(buf));
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	const char *cmd = argc > 1 ? argv[1] : "";
	socklen_t len;
	int fd;

	if (strcmp(cmd, "socket") == 0 && argc >= 4) {
		fd = socket(atoi(argv[2]), atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 0);
		return result(fd >= 0);
	}
	if (strcmp(cmd, "connect") == 0 && argc == 5) {
		len = address(argv[3], argv[4], &ss);
		fd = proto_socket(argv[2], ss.ss_family);
		return result(fd >= 0 && connect(fd, (void *)&ss, len) == 0);
	}
	if (strcmp(cmd, "mapped") == 0 && argc == 4) {
		struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[3])) };
		char v6[64];

		snprintf(v6, sizeof(v6), "::ffff:%s", argv[2]);
		if (inet_pton(AF_INET6, v6, &in6.sin6_addr) != 1)
			return 2;
		fd = socket(AF_INET6, SOCK_STREAM, 0);
		return result(fd >= 0 && connect(fd, (void *)&in6, sizeof(in6)) == 0);
	}
	if (strcmp(cmd, "sendto") == 0 && argc == 4) {
		len = address(argv[2], argv[3], &ss);
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		return result(fd >= 0 && sendto(fd, "x", 1, 0, (void *)&ss, len) == 1);
	}
	if (strcmp(cmd, "fastopen") == 0 && argc == 4) {
		len = address(argv[2], argv[3], &ss);
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		return result(fd >= 0 && sendto(fd, "x", 1, MSG_FASTOPEN, (void *)&ss, len) == 1);
	}
	if (strcmp(cmd, "bind") == 0 && argc == 5) {
		int one = 1;

		len = address(argv[3], argv[4], &ss);
		fd = proto_socket(argv[2], ss.ss_family);
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		return result(fd >= 0 && bind(fd, (void *)&ss, len) == 0);
	}
	if (strcmp(cmd, "listen-unbound") == 0) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		return result(fd >= 0 && listen(fd, 1) == 0);
	}
	if ((strcmp(cmd, "bind-unspec") == 0 && argc == 3) ||
	    (strcmp(cmd, "sendto-unspec") == 0 && argc == 4)) {
		/* The kernel reads AF_UNSPEC as AF_INET on IPv4 sockets here. */
		struct sockaddr_in in = { .sin_family = AF_UNSPEC };
		int udp = argc == 4;

		in.sin_port = htons(atoi(argv[argc - 1]));
		if (udp && inet_pton(AF_INET, argv[2], &in.sin_addr) != 1)
			return 2;
		fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (udp)
			return result(fd >= 0 && sendto(fd, "x", 1, 0, (void *)&in, sizeof(in)) == 1);
		return result(fd >= 0 && bind(fd, (void *)&in, sizeof(in)) == 0);
	}
	if (strcmp(cmd, "ipopts") == 0) {
		/* Loose source route through 127.0.0.1: NOP, LSRR, length 7, pointer 4, address. */
		unsigned char opt[8] = { 1, 131, 7, 4, 127, 0, 0, 1 };

		fd = socket(AF_INET, SOCK_STREAM, 0);
		return result(fd >= 0 && setsockopt(fd, IPPROTO_IP, IP_OPTIONS, opt, sizeof(opt)) == 0);
	}
	if (strcmp(cmd, "unix") == 0 && argc == 4) {
		struct sockaddr_un un;

		len = unix_address(argv[3], &un);
		fd = socket(AF_UNIX, strcmp(argv[2], "dgram") == 0 ? SOCK_DGRAM : SOCK_STREAM, 0);
		return result(fd >= 0 && connect(fd, (void *)&un, len) == 0);
	}
	if (strcmp(cmd, "unix-sendto") == 0 && argc == 3) {
		struct sockaddr_un un;

		len = unix_address(argv[2], &un);
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		return result(fd >= 0 && sendto(fd, "x", 1, 0, (void *)&un, len) == 1);
	}
	if (strcmp(cmd, "unix-serve") == 0 && argc >= 3)
		return unix_serve(argc - 2, argv + 2);
	if (strcmp(cmd, "serve") == 0 && argc >= 4 && argc % 2 == 0)
		return serve(argc - 2, argv + 2);
	fprintf(stderr, "netprobe: bad arguments (see the comment at the top of netprobe.c)\n");
	return 2;
}
