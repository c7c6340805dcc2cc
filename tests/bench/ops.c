/* ops: the system calls tests/bench times, run in the guest inside the unit of each case.
 *
 *   ops [--landlock N] all [SCALE]
 *
 * With --landlock N the process first confines itself with a Landlock ruleset (ABI 1, every
 * file access handled) of N rules: full access below /, read access below N-1 directories
 * /srv/bench/ll/K, so that each access is checked against rules on its path's ancestors.
 * Then each operation runs COUNT times (scaled by SCALE, default 1), in BATCHES batches, and
 * one line per operation is printed: "OP NS MEAN" with NS the mean nanoseconds per operation
 * of its fastest batch, and MEAN that of all its runs. The fastest batch is what the report
 * compares: under emulation the guest's other tasks and the host's own take the CPU at random
 * moments, which only ever adds time, and a mean of all runs carries that noise (the same case
 * measured 43 to 80 us a shallow open in one run of three rounds). Built static on the host,
 * so that its own exec is the smallest there is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROOT "/srv/bench"
#define SHALLOW ROOT "/f"
#define DEEP ROOT "/a/b/c/d/e/f/g/h/i/j/f"
#define SOCK ROOT "/sock"
#define BATCHES 20

/* Landlock's ABI 1, declared here so that the build does not depend on the host's headers. */
#define LL_CREATE_RULESET 444
#define LL_ADD_RULE 445
#define LL_RESTRICT_SELF 446
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_ALL 0x1fffULL
#define LL_FS_READ (0x4ULL | 0x8ULL) /* READ_FILE | READ_DIR */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
};
struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static void die(const char *what)
{
	fprintf(stderr, "ops: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void ll_allow(int ruleset, const char *dir, uint64_t access)
{
	struct ll_path_beneath pb = { .allowed_access = access };

	pb.parent_fd = open(dir, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		die(dir);
	if (syscall(LL_ADD_RULE, ruleset, LL_RULE_PATH_BENEATH, &pb, 0))
		die("landlock_add_rule");
	close(pb.parent_fd);
}

static void landlock(int n)
{
	struct ll_ruleset_attr attr = { .handled_access_fs = LL_FS_ALL };
	int ruleset = syscall(LL_CREATE_RULESET, &attr, sizeof(attr), 0);
	char dir[64];

	if (ruleset < 0)
		die("landlock_create_ruleset");
	ll_allow(ruleset, "/", LL_FS_ALL);
	for (int k = 0; k < n - 1; k++) {
		snprintf(dir, sizeof(dir), ROOT "/ll/%d", k);
		ll_allow(ruleset, dir, LL_FS_READ);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(LL_RESTRICT_SELF, ruleset, 0))
		die("landlock_restrict_self");
	close(ruleset);
}

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void open_close(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(path);
	close(fd);
}

static void op_open_shallow(void) { open_close(SHALLOW); }
static void op_open_deep(void) { open_close(DEEP); }

static void op_stat_deep(void)
{
	struct stat st;

	if (stat(DEEP, &st))
		die("stat");
}

static void op_exec(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execl(ROOT "/true", "true", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("exec " ROOT "/true");
}

static void op_mkdir_rmdir(void)
{
	if (mkdir(ROOT "/w/d", 0700) || rmdir(ROOT "/w/d"))
		die("mkdir/rmdir " ROOT "/w/d");
}

static int listener = -1;

static void op_unix_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), c;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect " SOCK);
	c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		die("accept");
	close(c);
	close(fd);
}

static void op_kill(void)
{
	/* A signal to itself: task_kill runs; SIGCHLD is ignored by default. */
	if (kill(getpid(), SIGCHLD))
		die("kill");
}

static void listen_sock(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCK };

	unlink(SOCK);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) || listen(listener, 16))
		die("listen " SOCK);
}

static const struct {
	const char *name;
	void (*fn)(void);
	int count;
} OPS[] = {
	{ "open-shallow", op_open_shallow, 20000 },
	{ "open-deep", op_open_deep, 20000 },
	{ "stat-deep", op_stat_deep, 20000 },
	{ "exec", op_exec, 300 },
	{ "mkdir-rmdir", op_mkdir_rmdir, 5000 },
	{ "unix-connect", op_unix_connect, 5000 },
	{ "kill", op_kill, 20000 },
};

int main(int argc, char **argv)
{
	double scale = 1;
	int a = 1;

	if (argc > 2 && strcmp(argv[1], "--landlock") == 0) {
		landlock(atoi(argv[2]));
		a = 3;
	}
	if (argc <= a || strcmp(argv[a], "all") != 0) {
		fprintf(stderr, "usage: ops [--landlock N] all [SCALE]\n");
		return 2;
	}
	if (argc > a + 1)
		scale = atof(argv[a + 1]);
	listen_sock();
	for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
		int n = (int)(OPS[i].count * scale / BATCHES);
		uint64_t t0, t, best = UINT64_MAX, all = 0;

		if (n < 1)
			n = 1;
		for (int k = 0; k < n; k++) /* warm the caches */
			OPS[i].fn();
		for (int b = 0; b < BATCHES; b++) {
			t0 = now();
			for (int k = 0; k < n; k++)
				OPS[i].fn();
			t = now() - t0;
			all += t;
			if (t < best)
				best = t;
		}
		printf("%s %.0f %.0f\n", OPS[i].name, (double)best / n,
		       (double)all / ((double)n * BATCHES));
		fflush(stdout);
	}
	unlink(SOCK);
	return 0;
}
