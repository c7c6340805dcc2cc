/* calls SUBCOMMAND ARGS: system calls and ioctls for tests/vm/calls.sh, run from an armored unit
 * (where each must be refused) and its unarmored twin (where each reaches the kernel's own
 * handler). The harmless ones are made for real; the others are made with an argument the
 * kernel rejects only after its capability check, so that the twin sees that error (EINVAL)
 * and the armored unit EPERM. Prints "ok" or the error; exits 0 either way, 2 on a usage error.
 *
 *   tiocsti          TIOCSTI of one byte into a new pseudo-terminal (not the caller's own)
 *   thaw PATH        FITHAW on PATH's file system (not frozen: EINVAL after the check)
 *   shutdown PATH    the ext4/XFS shutdown ioctl on PATH's file system, with flags it rejects
 *   swapon FILE      swapon() of FILE, which holds no swap signature (EINVAL after the check)
 *   reboot           reboot() with a wrong second magic number (EINVAL after the check)
 *   ioperm           ioperm() of port 0x80, then gives it back (x86)
 *   perf-cpu         a software perf event of CPU 0, every process on it
 *   perf-self        a software perf event of the caller itself, user space only
 *   setns-net SOCKET setns() into the network namespace whose descriptor SOCKET hands over
 *   compat-fanotify  fanotify_init() of a privileged group as a 32-bit call (`int $0x80`, x86)
 *   compat-setns-net SOCKET  setns-net, as a 32-bit call
 *   open-rw PATH     open(PATH, O_RDWR), then close (a device node)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/fanotify.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/io.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define FITHAW_NR 0xC0045878
#define SHUTDOWN_NR 0x8004587D

static int report(const char *what, long ret)
{
	if (ret < 0)
		printf("%s: %s\n", what, strerror(errno));
	else
		printf("ok\n");
	return 0;
}

static int path_ioctl(const char *path, unsigned long cmd, const char *what)
{
	unsigned int arg = 99;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return report("open", -1);
	return report(what, ioctl(fd, cmd, &arg));
}

static int perf(pid_t pid, int cpu)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};

	return report("perf_event_open", syscall(SYS_perf_event_open, &attr, pid, cpu, -1, 0));
}

/* A 32-bit system call from this 64-bit process (i386 numbers and arguments); -errno on
 * failure, as the kernel returns it. */
static long int80(long nr, long a, long b)
{
#ifdef __x86_64__
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
	return ret;
#else
	return -ENOSYS;
#endif
}

/* int80()'s result as report() takes it. */
static long compat(long ret)
{
	if (ret < 0 && ret > -4096) {
		errno = -ret;
		return -1;
	}
	return ret;
}

static int setns_net(const char *path, int compat_call)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), fd;
	struct cmsghdr *c;

	strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || recvmsg(s, &msg, 0) < 1 ||
	    !(c = CMSG_FIRSTHDR(&msg)) || c->cmsg_type != SCM_RIGHTS)
		return report("receiving the descriptor", -1);
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (compat_call)
		return report("setns", compat(int80(346, fd, CLONE_NEWNET)));
	return report("setns", setns(fd, CLONE_NEWNET));
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "tiocsti") && argc == 2) {
		int m = posix_openpt(O_RDWR | O_NOCTTY), s;
		char c = 'x';

		if (m < 0 || grantpt(m) || unlockpt(m) || (s = open(ptsname(m), O_RDWR | O_NOCTTY)) < 0)
			return report("a pseudo-terminal", -1);
		return report("TIOCSTI", ioctl(s, TIOCSTI, &c));
	}
	if (!strcmp(cmd, "thaw") && argc == 3)
		return path_ioctl(argv[2], FITHAW_NR, "FITHAW");
	if (!strcmp(cmd, "shutdown") && argc == 3)
		return path_ioctl(argv[2], SHUTDOWN_NR, "shutdown ioctl");
	if (!strcmp(cmd, "swapon") && argc == 3)
		return report("swapon", swapon(argv[2], 0));
	if (!strcmp(cmd, "reboot") && argc == 2)
		return report("reboot", syscall(SYS_reboot, 0xfee1dead, 0, 0, NULL));
	if (!strcmp(cmd, "ioperm") && argc == 2) {
		long r = ioperm(0x80, 1, 1);

		if (r == 0)
			ioperm(0x80, 1, 0);
		return report("ioperm", r);
	}
	if (!strcmp(cmd, "perf-cpu") && argc == 2)
		return perf(-1, 0);
	if (!strcmp(cmd, "perf-self") && argc == 2)
		return perf(0, -1);
	if (!strcmp(cmd, "setns-net") && argc == 3)
		return setns_net(argv[2], 0);
	if (!strcmp(cmd, "compat-setns-net") && argc == 3)
		return setns_net(argv[2], 1);
	if (!strcmp(cmd, "open-rw") && argc == 3) {
		int fd = open(argv[2], O_RDWR | O_CLOEXEC);

		if (fd >= 0)
			close(fd);
		return report("open", fd);
	}
	if (!strcmp(cmd, "compat-fanotify") && argc == 2)
		return report("fanotify_init", compat(int80(338, FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY)));
	fprintf(stderr, "usage: calls tiocsti | thaw PATH | shutdown PATH | swapon FILE | reboot | ioperm |\n"
			"       perf-cpu | perf-self | setns-net SOCKET | compat-fanotify | compat-setns-net SOCKET |\n"
			"       open-rw PATH\n");
	return 2;
}
