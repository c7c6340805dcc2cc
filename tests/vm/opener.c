/* opener PATH N: opens PATH for reading N times as fast as it can and prints how many opens
 * failed with EACCES and how many failed otherwise. Built on the host by tests/all, run in
 * the guest to flood the daemon with denials. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, i, denied = 0, other = 0;

	if (argc != 3)
		return 2;
	n = atol(argv[2]);
	for (i = 0; i < n; i++) {
		int fd = open(argv[1], O_RDONLY);

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
