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
 *   lease FILE       a read lease (F_SETLEASE) on FILE, then gives it back
 *   vhangup-pty      TIOCVHANGUP on a new pseudo-terminal (not the caller's own)
 *   steal-tty        in a new session, TIOCSCTTY with force on a pseudo-terminal another
 *                    session has
 *   own-tty          in a new session, TIOCSCTTY with force on a new pseudo-terminal (of no
 *                    session: script and su --pty do this)
 *   vhangup          vhangup() (the caller has no terminal: nothing is hung up)
 *   compat-sendmmsg DIR  i386 socketcall(SYS_SENDMMSG) of two datagrams to a socket it binds
 *                    in DIR (`int $0x80`, x86)
 *
 * For tests/vm/peers.sh, the ptrace-class reaches of another process (PID; ADDR, in hex, one of
 * its mapped addresses); with `child` instead of PID, of a child of the caller's own (forked,
 * paused, then ended; ADDR unused: a page of the caller's, the same in the child):
 *   seize PID|child         PTRACE_SEIZE (an attach that does not stop it); the caller's exit
 *                           detaches
 *   mem PID|child ADDR      open /proc/PID/mem for reading, then pread one byte at ADDR
 *   vm-read PID|child ADDR  process_vm_readv of one byte at ADDR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/fanotify.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <signal.h>
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

/* A new pseudo-terminal's subsidiary end, not the caller's controlling terminal. */
static int new_pty(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);

	if (m < 0 || grantpt(m) || unlockpt(m))
		return -1;
	return open(ptsname(m), O_RDWR | O_NOCTTY);
}

/* TIOCSCTTY with force on a pseudo-terminal that a child's session has as its controlling
 * terminal: the caller, in a session of its own, takes it. */
static int steal_tty(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), p[2], t;
	char *name, x;
	pid_t child;
	long r;

	if (m < 0 || grantpt(m) || unlockpt(m) || !(name = ptsname(m)) || pipe(p))
		return report("a pseudo-terminal", -1);
	child = fork();
	if (child == 0) {
		/* A session whose controlling terminal it is. */
		if (setsid() < 0 || open(name, O_RDWR) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (child < 0 || read(p[0], &x, 1) != 1)
		return report("a session for the terminal", -1);
	if (setsid() < 0) {
		kill(child, SIGKILL);
		return report("setsid", -1);
	}
	t = open(name, O_RDWR | O_NOCTTY);
	r = t < 0 ? -1 : ioctl(t, TIOCSCTTY, 1);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return report("TIOCSCTTY", r);
}

/* socketcall(SYS_SENDMMSG) as i386 makes it: the same sendmmsg(), by another number. The
 * structures are i386's, in memory below 4 GiB. */
static int compat_sendmmsg(const char *dir)
{
#ifdef __x86_64__
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int r = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char *m;
	uint32_t *iov, *h, *args;
	long ret;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/mmsg-%d", dir, getpid());
	unlink(addr.sun_path);
	if (r < 0 || s < 0 || bind(r, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return report("a socket", -1);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (m == MAP_FAILED)
		return report("mmap", -1);
	memcpy(m, &addr, sizeof(addr));
	iov = (uint32_t *)(m + 128);
	iov[0] = (uint32_t)(uintptr_t)(m + 136);
	iov[1] = 1;
	m[136] = 'x';
	/* Two struct compat_mmsghdr: the seven fields of compat_msghdr, then msg_len. */
	h = (uint32_t *)(m + 160);
	for (int i = 0; i < 2; i++) {
		uint32_t *e = h + i * 8;

		e[0] = (uint32_t)(uintptr_t)m;
		e[1] = sizeof(addr);
		e[2] = (uint32_t)(uintptr_t)iov;
		e[3] = 1;
	}
	args = (uint32_t *)(m + 256);
	args[0] = s;
	args[1] = (uint32_t)(uintptr_t)h;
	args[2] = 2;
	ret = compat(int80(102, 20, (long)(uintptr_t)args));
	unlink(addr.sun_path);
	if (ret == 2) {
		printf("ok\n");
		return 0;
	}
	if (ret >= 0) {
		printf("sent %ld\n", ret);
		return 0;
	}
	return report("socketcall(SYS_SENDMMSG)", -1);
#else
	errno = ENOSYS;
	return report("socketcall", -1);
#endif
}

static char child_page[4096] = "peer";

/* One ptrace-class reach (seize, mem, vm-read) of process `pid` at `addr`. */
static int reach(const char *op, pid_t pid, unsigned long addr)
{
	char path[64], c;
	struct iovec local = { &c, 1 }, remote = { (void *)addr, 1 };
	int fd;

	if (!strcmp(op, "seize"))
		return report("PTRACE_SEIZE", ptrace(PTRACE_SEIZE, pid, 0, 0));
	if (!strcmp(op, "mem")) {
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return report("open", -1);
		return report("pread", pread(fd, &c, 1, (off_t)addr));
	}
	return report("process_vm_readv", process_vm_readv(pid, &local, 1, &remote, 1, 0));
}

/* `reach` of a child of this process's own: same cgroup, another thread group (the kernel does
 * not ask the LSM about the caller's own). */
static int reach_child(const char *op)
{
	pid_t pid;
	int ret;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return report("fork", -1);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	ret = reach(op, pid, (unsigned long)child_page);
	fflush(stdout);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return ret;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "tiocsti") && argc == 2) {
		int t = new_pty();
		char c = 'x';

		if (t < 0)
			return report("a pseudo-terminal", -1);
		return report("TIOCSTI", ioctl(t, TIOCSTI, &c));
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
	if (!strcmp(cmd, "lease") && argc == 3) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		long r;

		if (fd < 0)
			return report("open", -1);
		r = fcntl(fd, F_SETLEASE, F_RDLCK);
		if (r == 0)
			fcntl(fd, F_SETLEASE, F_UNLCK);
		return report("F_SETLEASE", r);
	}
	if (!strcmp(cmd, "vhangup-pty") && argc == 2) {
		int t = new_pty();

		if (t < 0)
			return report("a pseudo-terminal", -1);
		return report("TIOCVHANGUP", ioctl(t, TIOCVHANGUP));
	}
	if (!strcmp(cmd, "steal-tty") && argc == 2)
		return steal_tty();
	if (!strcmp(cmd, "own-tty") && argc == 2) {
		int t;

		if (setsid() < 0)
			return report("setsid", -1);
		t = new_pty();
		if (t < 0)
			return report("a pseudo-terminal", -1);
		return report("TIOCSCTTY", ioctl(t, TIOCSCTTY, 1));
	}
	if (!strcmp(cmd, "vhangup") && argc == 2)
		return report("vhangup", vhangup());
	if (!strcmp(cmd, "compat-sendmmsg") && argc == 3)
		return compat_sendmmsg(argv[2]);
	if ((!strcmp(cmd, "seize") && argc == 3) ||
	    ((!strcmp(cmd, "mem") || !strcmp(cmd, "vm-read")) && argc == 4)) {
		if (!strcmp(argv[2], "child"))
			return reach_child(cmd);
		return reach(cmd, atoi(argv[2]), argc == 4 ? strtoul(argv[3], NULL, 16) : 0);
	}
	fprintf(stderr, "usage: calls tiocsti | thaw PATH | shutdown PATH | swapon FILE | reboot | ioperm |\n"
			"       perf-cpu | perf-self | setns-net SOCKET | compat-fanotify | compat-setns-net SOCKET |\n"
			"       open-rw PATH | lease FILE | vhangup-pty | steal-tty | own-tty | vhangup |\n"
			"       compat-sendmmsg DIR | seize PID|child | mem PID|child ADDR |\n"
			"       vm-read PID|child ADDR\n");
	return 2;
}
