/* nlprobe SUBCOMMAND: netlink messages whose kernel handlers need CAP_SYS_ADMIN, for
 * tests/vm/protect.sh. Built on the host by tests/all, run in the guest from an armored unit
 * (where each must be refused) and from its unarmored twin (where each must work). Exits 0 when
 * the kernel took the message, 1 when it refused it (the reason on stderr), 2 on a usage error.
 *
 *   uevent TAG   sends a kobject uevent (ACTION=change, SUBSYSTEM=TAG) from user space, as
 *                udev would see one from the kernel, and waits until this process's own
 *                listener on the kernel's uevent group receives it back
 *   multicast TAG  sends "armortest-TAG" to the uevent family's multicast group 2, where udevd
 *                sends the events PID 1 and libudev listeners act on (they drop this one: it
 *                is no udev message), and waits until a listener of this process receives it
 *   nbd          connects a network block device to one end of a socket pair over NBD's
 *                generic netlink family (NBD_CMD_CONNECT), prints its index, then disconnects
 *                it (NBD_CMD_DISCONNECT). The nbd module must be loaded.
 */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	return 1;
}

static int uevent(const char *tag)
{
	struct sockaddr_nl me = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char msg[512], buf[4096], *env;
	struct nlmsghdr *h = (struct nlmsghdr *)msg;
	struct pollfd p;
	int fd, len, n;

	fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return fail("socket");
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0)
		return fail("bind to the uevent group");
	/* A request whose payload the kernel broadcasts as a uevent (with a SEQNUM= added):
	 * "ACTION@DEVPATH" and KEY=VALUE strings, each ending in NUL, as the kernel sends them. */
	env = msg + NLMSG_HDRLEN;
	len = snprintf(env, 128, "change@/devices/virtual/%s", tag) + 1;
	len += snprintf(env + len, 128, "ACTION=change") + 1;
	len += snprintf(env + len, 128, "DEVPATH=/devices/virtual/%s", tag) + 1;
	len += snprintf(env + len, 128, "SUBSYSTEM=%s", tag) + 1;
	*h = (struct nlmsghdr){
		.nlmsg_len = NLMSG_HDRLEN + len,
		.nlmsg_type = NLMSG_MIN_TYPE,
		.nlmsg_flags = NLM_F_REQUEST,
	};
	if (sendto(fd, msg, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return fail("sendto the kernel");
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	for (;;) {
		if (poll(&p, 1, 5000) <= 0) {
			fprintf(stderr, "no uevent came back within 5 s\n");
			return 1;
		}
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			return fail("recv");
		buf[n] = 0;
		/* A refusal comes back as an error acknowledgement of the request. */
		h = (struct nlmsghdr *)buf;
		if (n >= (int)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR) {
			errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
			return fail("the kernel refused the uevent");
		}
		if (n > len && memcmp(buf, env, len) == 0) {
			printf("received %s (%s)\n", buf, buf + len);
			return 0;
		}
	}
}

static int multicast(const char *tag)
{
	struct sockaddr_nl listen_on = { .nl_family = AF_NETLINK, .nl_groups = 2 };
	struct sockaddr_nl group = { .nl_family = AF_NETLINK, .nl_groups = 2 };
	char msg[256], buf[4096];
	struct pollfd p;
	int in, out, len, n;

	in = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	out = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	if (in < 0 || out < 0)
		return fail("socket");
	if (bind(in, (struct sockaddr *)&listen_on, sizeof(listen_on)) < 0)
		return fail("bind to group 2");
	len = snprintf(msg, sizeof(msg), "armortest-%s", tag) + 1;
	if (sendto(out, msg, len, 0, (struct sockaddr *)&group, sizeof(group)) < 0)
		return fail("sendto group 2");
	p = (struct pollfd){ .fd = in, .events = POLLIN };
	for (;;) {
		if (poll(&p, 1, 5000) <= 0) {
			fprintf(stderr, "nothing came back to group 2 within 5 s\n");
			return 1;
		}
		n = recv(in, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			return fail("recv");
		buf[n] = 0;
		if (strcmp(buf, msg) == 0) {
			printf("group 2 received %s\n", buf);
			return 0;
		}
	}
}

/* A netlink request in one buffer: header, generic netlink header, attributes. */
struct req {
	char *buf;
	size_t len;
};

static struct nlattr *put(struct req *r, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(r->buf + r->len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (data)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	r->len += NLA_ALIGN(a->nla_len);
	return a;
}

/* Sends the request in `buf` (type, command) and returns the kernel's acknowledgement's error
 * (0, or a negative errno), with the first message of its answer copied to `answer`. */
static int ask(int fd, char *buf, size_t len, uint16_t type, uint8_t cmd, char *answer, size_t cap)
{
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g = NLMSG_DATA(h);
	static char in[16384];
	static uint32_t seq;
	int n, err = 1, kept = 0;

	memset(answer, 0, cap);
	h->nlmsg_len = len;
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = ++seq;
	g->cmd = cmd;
	g->version = 1;
	if (send(fd, buf, len, 0) < 0)
		return -errno;
	while (err == 1) {
		n = recv(fd, in, sizeof(in), 0);
		if (n < 0)
			return -errno;
		for (h = (struct nlmsghdr *)in; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				break;
			}
			if (!kept && h->nlmsg_len <= cap) {
				memcpy(answer, h, h->nlmsg_len);
				kept = 1;
			}
		}
	}
	return err;
}

/* The attribute `type` of the first message in `answer`, or NULL. */
static struct nlattr *attr(char *answer, uint16_t type)
{
	struct nlmsghdr *h = (struct nlmsghdr *)answer;
	int left = h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN);

	while (left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left) {
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		left -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return NULL;
}

static int nbd(void)
{
	static char buf[4096], answer[16384];
	struct req r = { .buf = buf };
	struct nlattr *sockets, *item, *a;
	uint64_t size = 1 << 20, timeout = 2;
	uint32_t fdnum, index;
	uint16_t family;
	int fd, sv[2], err;

	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (fd < 0)
		return fail("socket");
	/* The family's number, by name. */
	memset(buf, 0, sizeof(buf));
	r.len = NLMSG_LENGTH(GENL_HDRLEN);
	put(&r, CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME, sizeof(NBD_GENL_FAMILY_NAME));
	err = ask(fd, buf, r.len, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, answer, sizeof(answer));
	a = err ? NULL : attr(answer, CTRL_ATTR_FAMILY_ID);
	if (!a) {
		fprintf(stderr, "no generic netlink family nbd (%s): is the nbd module loaded?\n",
			strerror(-err));
		return 1;
	}
	memcpy(&family, (char *)a + NLA_HDRLEN, sizeof(family));

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return fail("socketpair");
	fdnum = sv[0];
	memset(buf, 0, sizeof(buf));
	r.len = NLMSG_LENGTH(GENL_HDRLEN);
	put(&r, NBD_ATTR_SIZE_BYTES, &size, sizeof(size));
	put(&r, NBD_ATTR_TIMEOUT, &timeout, sizeof(timeout));
	sockets = put(&r, NBD_ATTR_SOCKETS | NLA_F_NESTED, NULL, 0);
	item = put(&r, NBD_SOCK_ITEM | NLA_F_NESTED, NULL, 0);
	put(&r, NBD_SOCK_FD, &fdnum, sizeof(fdnum));
	item->nla_len = buf + r.len - (char *)item;
	sockets->nla_len = buf + r.len - (char *)sockets;
	err = ask(fd, buf, r.len, family, NBD_CMD_CONNECT, answer, sizeof(answer));
	if (err) {
		errno = -err;
		return fail("NBD_CMD_CONNECT");
	}
	a = attr(answer, NBD_ATTR_INDEX);
	if (!a) {
		fprintf(stderr, "NBD_CMD_CONNECT answered without an index\n");
		return 1;
	}
	memcpy(&index, (char *)a + NLA_HDRLEN, sizeof(index));
	printf("connected /dev/nbd%u to a socket of this process\n", index);
	fflush(stdout);

	memset(buf, 0, sizeof(buf));
	r.len = NLMSG_LENGTH(GENL_HDRLEN);
	put(&r, NBD_ATTR_INDEX, &index, sizeof(index));
	err = ask(fd, buf, r.len, family, NBD_CMD_DISCONNECT, answer, sizeof(answer));
	if (err) {
		errno = -err;
		return fail("NBD_CMD_DISCONNECT");
	}
	close(sv[1]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "uevent") == 0)
		return uevent(argv[2]);
	if (argc == 3 && strcmp(argv[1], "multicast") == 0)
		return multicast(argv[2]);
	if (argc == 2 && strcmp(argv[1], "nbd") == 0)
		return nbd();
	fprintf(stderr, "usage: nlprobe uevent TAG | nlprobe multicast TAG | nlprobe nbd\n");
	return 2;
}
