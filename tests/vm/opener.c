/* opener PATH N: opens PATH for reading N times as fast as it can and prints how many opens
 * failed with EACCES and how many failed otherwise. A PATH with %ld in it is a new path each
 * time: the %ld is replaced by 0, 1, ... N-1. Built on the host by tests/all, run in
 * the guest to flood the daemon with denials. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, i, denied = 0, other = 0;

	if (argc != 3)
		return 2;
	n = atol(argv[2]);
	for (i = 0; i < n; i++) {
		char path[4096];
		int fd;

		if (strstr(argv[1], "%ld"))
			snprintf(path, sizeof(path), argv[1], i);
		else
			snprintf(path, sizeof(path), "%s", argv[1]);
		fd = open(path, O_RDONLY);

		if (fd >= 0)
			close(fd);
		else if (errno == EACCES)
			denied++;
		else
			other++;
	}
	printf("%ld %ld\n", denied, other);
	return 0;
}
