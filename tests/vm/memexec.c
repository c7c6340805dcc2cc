/*
 * memexec: runs code that is no file on disk, for memfd.sh.
 *
 *   memexec exec FILE [ARG...]   copies FILE into a memfd and executes it (fexecve)
 *   memexec map FILE             copies FILE into a memfd and maps it executable
 *   memexec deleted COPY FILE [ARG...]
 *                                copies FILE to COPY, opens COPY, unlinks it and executes the
 *                                descriptor of the deleted file (fexecve)
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

/* Copies FILE to a memfd, or to the new file COPY if it is not NULL. */
static int load(const char *file, const char *copy)
{
	int in = open(file, O_RDONLY);
	int fd = copy ? open(copy, O_RDWR | O_CREAT | O_EXCL, 0755) : memfd_create("loader", 0);
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

	if (argc < 3 || (strcmp(argv[1], "exec") && strcmp(argv[1], "map") &&
			 (strcmp(argv[1], "deleted") || argc < 4))) {
		fprintf(stderr, "usage: memexec exec|map FILE [ARG...] | deleted COPY FILE [ARG...]\n");
		return 2;
	}
	if (strcmp(argv[1], "deleted") == 0) {
		/* The copy is closed before it is executed (a file open for writing is ETXTBSY). */
		fd = load(argv[3], argv[2]);
		if (fd < 0)
			return fail("copy");
		close(fd);
		fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return fail("open");
		if (unlink(argv[2]))
			return fail("unlink");
		fexecve(fd, argv + 3, environ);
		return fail("fexecve");
	}
	fd = load(argv[2], NULL);
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
