/*
 * memexec: runs code that is no file on disk, for memfd.sh.
 *
 *   memexec exec FILE [ARG...]   copies FILE into a memfd and executes it (fexecve)
 *   memexec map FILE             copies FILE into a memfd and maps it executable
 *
 * Prints "ok" (map) or what FILE prints (exec), or the errno name of the failing step; exits
 * 0 only on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

static int fail(const char *what)
{
	printf("%s: %s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "error");
	return 1;
}

static int load(const char *file)
{
	int in = open(file, O_RDONLY), fd = memfd_create("loader", 0);
	char buf[65536];
	ssize_t n;

	if (in < 0 || fd < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(fd, buf, n) != n)
			return -1;
	close(in);
	return n < 0 ? -1 : fd;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3 || (strcmp(argv[1], "exec") && strcmp(argv[1], "map"))) {
		fprintf(stderr, "usage: memexec exec|map FILE [ARG...]\n");
		return 2;
	}
	fd = load(argv[2]);
	if (fd < 0)
		return fail("memfd");
	if (strcmp(argv[1], "map") == 0) {
		if (mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
			return fail("mmap");
		puts("ok");
		return 0;
	}
	fexecve(fd, argv + 2, environ);
	return fail("fexecve");
}
