/* escape SUBCOMMAND ARGS: the system calls tests/vm/protect.sh needs that no tool in the guest
 * image makes on its own. Built on the host by tests/all, run in the guest, from armored units
 * (where each must fail) and from their unarmored twins (where each must work). Exits 0 when
 * the call worked, 1 when it failed (the reason on stderr), 2 on a usage error.
 *
 *   clone-into-cgroup DIR    clone3(CLONE_INTO_CGROUP) into the cgroup DIR; the child checks
 *                            that it landed there and exits
 *   handle-save FILE OUT     name_to_handle_at(FILE), the handle written to OUT
 *   handle-read DIR HANDLE   open_by_handle_at(a directory on FILE's mount, HANDLE), then the
 *                            file's contents on stdout
 *   setxattr FILE NAME VALUE setxattr(2)
 *   removexattr FILE NAME    removexattr(2)
 *   getxattr FILE NAME       exits 0 when FILE has the xattr NAME
 *   setflags FILE +i|-i      sets or clears the immutable flag with FS_IOC_SETFLAGS
 *   immutable FILE           exits 0 when FILE has the immutable flag
 *   rename-exchange A B      renameat2(AT_FDCWD, A, AT_FDCWD, B, RENAME_EXCHANGE)
 *   open-ro PATH             open(PATH, O_RDONLY), then close: only the open is tried (a read of
 *                            /dev/mem may fail under STRICT_DEVMEM where the open works)
 *   abstract-listen NAME     binds a SOCK_STREAM unix socket to the abstract name NAME (no
 *                            trailing NULs), listens, and answers every connection with
 *                            "armortest" until killed
 *   abstract-connect NAME    connects to the abstract name NAME, then copies the answer to stdout
 *   mount-rw DIR             mount_setattr(DIR): clears MOUNT_ATTR_RDONLY of the mount at DIR
 *   fspick DIR               fspick(DIR): opens the file system at DIR for reconfiguring, closes it
 *   fsopen FSTYPE            fsopen(FSTYPE): opens a file system context, closes it
 *   fsetxattr FILE NAME VALUE  fsetxattr(2) on FILE opened read-only
 *   futimens FILE            futimens(2) on FILE opened read-only: both times set to 1 Jan 2001
 *   utimes-opath FILE        utimensat(2) with AT_EMPTY_PATH on an O_PATH descriptor of FILE
 *   enable-verity FILE       FS_IOC_ENABLE_VERITY (SHA-256) on FILE opened read-only
 *   open-trunc-ro FILE       open(FILE, O_RDONLY | O_TRUNC): Linux truncates the file
 *   xfs-attrmulti DIR FILE NAME VALUE  sets the user xattr NAME of FILE through XFS's
 *                            XFS_IOC_ATTRMULTI_BY_HANDLE, issued on a descriptor of DIR (any
 *                            directory of the same XFS file system)
 *   nvme-read DEV            reads block 0 of namespace 1 (or DEV's own) through NVMe passthrough
 *                            (NVME_IOCTL_IO_CMD) on DEV (/dev/ng*, /dev/nvme*), then prints it
 *   bsg-read DEV             reads block 0 through SCSI passthrough (SG_IO v4, READ(10)) on DEV
 *                            (/dev/bsg/...), then prints it
 *   btrfs-search DIR FILE    BTRFS_IOC_TREE_SEARCH on DIR (a directory of FILE's subvolume) for
 *                            FILE's inline extent, which is printed: FILE's contents, not opened
 *   sendmmsg-claim PID TEXT  sendmmsg() of two datagrams to /run/systemd/notify: "STATUS=" alone,
 *                            then TEXT with SCM_CREDENTIALS naming PID (the kernel asks the LSM
 *                            only about the first)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/bsg.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fsverity.h>
#include <linux/nvme_ioctl.h>
#include <scsi/sg.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define ESC_CLONE_INTO_CGROUP 0x200000000ULL
#ifndef SYS_renameat2
#define SYS_renameat2 316
#endif
#define ESC_RENAME_EXCHANGE 2

/* struct clone_args up to CLONE_ARGS_SIZE_VER2 (Linux 5.7), declared here so that the build
 * does not depend on the host's kernel headers. */
struct esc_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "escape: %s %s: %s\n", what, arg, strerror(errno));
	return 1;
}

static int clone_into_cgroup(const char *dir)
{
	struct esc_clone_args args;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long pid;
	int status;

	if (fd < 0)
		return fail("open", dir);
	memset(&args, 0, sizeof(args));
	args.flags = ESC_CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)fd;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		return fail("clone3(CLONE_INTO_CGROUP) into", dir);
	if (pid == 0) {
		/* The child: exit 0 only if it runs in a cgroup whose path ends with DIR's name. */
		char buf[4096], want[512];
		const char *base = strrchr(dir, '/');
		int cg = open("/proc/self/cgroup", O_RDONLY);
		ssize_t n = cg < 0 ? -1 : read(cg, buf, sizeof(buf) - 1);

		if (n <= 0)
			_exit(3);
		buf[n] = 0;
		snprintf(want, sizeof(want), "%s\n", base ? base : dir);
		n = (ssize_t)strlen(buf) - (ssize_t)strlen(want);
		_exit(n >= 0 && strcmp(buf + n, want) == 0 ? 0 : 4);
	}
	if (waitpid((pid_t)pid, &status, 0) < 0)
		return fail("waitpid", "");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "escape: the child did not run in %s (status %#x)\n", dir, status);
		return 1;
	}
	printf("child %ld ran in %s\n", pid, dir);
	return 0;
}

static int handle_save(const char *file, const char *out)
{
	char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	struct file_handle *fh = (struct file_handle *)buf;
	int mount_id, fd;
	size_t len;

	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, file, fh, &mount_id, 0) < 0)
		return fail("name_to_handle_at", file);
	len = sizeof(*fh) + fh->handle_bytes;
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail("open", out);
	if (write(fd, buf, len) != (ssize_t)len)
		return fail("write", out);
	close(fd);
	return 0;
}

static int handle_read(const char *dir, const char *in)
{
	char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ], data[4096];
	struct file_handle *fh = (struct file_handle *)buf;
	int fd, mfd;
	ssize_t n;

	fd = open(in, O_RDONLY);
	if (fd < 0)
		return fail("open", in);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < (ssize_t)sizeof(*fh) || n != (ssize_t)(sizeof(*fh) + fh->handle_bytes)) {
		fprintf(stderr, "escape: %s is not a handle\n", in);
		return 1;
	}
	mfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (mfd < 0)
		return fail("open", dir);
	fd = open_by_handle_at(mfd, fh, O_RDONLY);
	if (fd < 0)
		return fail("open_by_handle_at", in);
	while ((n = read(fd, data, sizeof(data))) > 0)
		if (write(1, data, (size_t)n) != n)
			return fail("write", "stdout");
	if (n < 0)
		return fail("read from the handle of", in);
	return 0;
}

static int get_flags(const char *file, int *fd, int *flags)
{
	*fd = open(file, O_RDONLY | O_NONBLOCK);
	if (*fd < 0)
		return fail("open", file);
	if (ioctl(*fd, FS_IOC_GETFLAGS, flags) < 0)
		return fail("FS_IOC_GETFLAGS", file);
	return 0;
}

static int set_flags(const char *file, const char *how)
{
	int fd, flags;

	if (strcmp(how, "+i") != 0 && strcmp(how, "-i") != 0)
		return 2;
	if (get_flags(file, &fd, &flags))
		return 1;
	if (how[0] == '+')
		flags |= FS_IMMUTABLE_FL;
	else
		flags &= ~FS_IMMUTABLE_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		return fail("FS_IOC_SETFLAGS", file);
	return 0;
}

static int immutable(const char *file)
{
	int fd, flags;

	if (get_flags(file, &fd, &flags))
		return 1;
	return flags & FS_IMMUTABLE_FL ? 0 : 1;
}

static int rename_exchange(const char *a, const char *b)
{
	if (syscall(SYS_renameat2, (long)AT_FDCWD, a, (long)AT_FDCWD, b, (long)ESC_RENAME_EXCHANGE) < 0)
		return fail("renameat2(RENAME_EXCHANGE) of", a);
	printf("exchanged %s and %s\n", a, b);
	return 0;
}

static int open_ro(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail("open (read-only)", path);
	close(fd);
	printf("opened %s read-only\n", path);
	return 0;
}

/* The address of the abstract name NAME: a NUL, then NAME, and no padding (the length counts
 * only what is used, so that the name has no trailing NULs). 0 if NAME is too long. */
static socklen_t abstract_addr(struct sockaddr_un *sa, const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > sizeof(sa->sun_path) - 1)
		return 0;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static int abstract_listen(const char *name)
{
	static const char answer[] = "armortest\n";
	char at[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	struct sockaddr_un sa;
	socklen_t len = abstract_addr(&sa, name);
	int fd, c;

	if (!len)
		return 2;
	snprintf(at, sizeof(at), "@%s", name);
	signal(SIGPIPE, SIG_IGN);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket for", at);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		return fail("bind", at);
	if (listen(fd, 16) < 0)
		return fail("listen on", at);
	printf("listening on %s\n", at);
	fflush(stdout);
	for (;;) {
		ssize_t n;

		c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return fail("accept on", at);
		}
		n = write(c, answer, sizeof(answer) - 1);
		(void)n;
		close(c);
	}
}

static int abstract_connect(const char *name)
{
	char at[sizeof(((struct sockaddr_un *)0)->sun_path) + 1], buf[256];
	struct timeval tv = { .tv_sec = 10 };
	struct sockaddr_un sa;
	socklen_t len = abstract_addr(&sa, name);
	ssize_t n;
	int fd;

	if (!len)
		return 2;
	snprintf(at, sizeof(at), "@%s", name);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket for", at);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return fail("SO_RCVTIMEO for", at);
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		return fail("connect to", at);
	printf("connected to %s\n", at);
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(1, buf, (size_t)n) != n)
			return fail("write", "stdout");
	if (n < 0)
		return fail("read from", at);
	close(fd);
	return 0;
}

/* mount_setattr(2) and fspick(2) through syscall(): glibc 2.36's <sys/mount.h> wrappers clash
 * with <linux/mount.h>, which defines the argument. */
struct mount_attr_arg {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static int mount_rw(const char *dir)
{
	struct mount_attr_arg attr = { .attr_clr = 0x1 /* MOUNT_ATTR_RDONLY */ };

	if (syscall(SYS_mount_setattr, AT_FDCWD, dir, 0, &attr, sizeof(attr)) < 0)
		return fail("mount_setattr", dir);
	return 0;
}

static int fspick_dir(const char *dir)
{
	long fd = syscall(SYS_fspick, AT_FDCWD, dir, 0);

	if (fd < 0)
		return fail("fspick", dir);
	close(fd);
	return 0;
}

static int fsopen_type(const char *type)
{
	long fd = syscall(SYS_fsopen, type, 0);

	if (fd < 0)
		return fail("fsopen", type);
	close(fd);
	return 0;
}

static int sendmmsg_claim(const char *pid, const char *text)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/notify" };
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
		{ .iov_base = "STATUS=", .iov_len = 7 },
		{ .iov_base = (void *)text, .iov_len = strlen(text) },
	};
	struct mmsghdr msgs[2];
	struct ucred cred = { .pid = atoi(pid), .uid = getuid(), .gid = getgid() };
	struct cmsghdr *c;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	if (fd < 0)
		return fail("socket", "AF_UNIX");
	memset(msgs, 0, sizeof(msgs));
	memset(&ctl, 0, sizeof(ctl));
	for (int i = 0; i < 2; i++) {
		msgs[i].msg_hdr.msg_name = &addr;
		msgs[i].msg_hdr.msg_namelen = sizeof(addr);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	msgs[1].msg_hdr.msg_control = ctl.buf;
	msgs[1].msg_hdr.msg_controllen = sizeof(ctl.buf);
	c = CMSG_FIRSTHDR(&msgs[1].msg_hdr);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	if (sendmmsg(fd, msgs, 2, 0) != 2)
		return fail("sendmmsg", "/run/systemd/notify");
	return 0;
}

static int fsetxattr_ro(const char *file, const char *name, const char *value)
{
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return fail("open", file);
	if (fsetxattr(fd, name, value, strlen(value), 0) < 0)
		return fail("fsetxattr", name);
	close(fd);
	return 0;
}

static int futimens_ro(const char *file)
{
	struct timespec ts[2] = { { .tv_sec = 978307200 }, { .tv_sec = 978307200 } };
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return fail("open", file);
	if (futimens(fd, ts) < 0)
		return fail("futimens", file);
	close(fd);
	return 0;
}

static int utimes_opath(const char *file)
{
	struct timespec ts[2] = { { .tv_sec = 978307200 }, { .tv_sec = 978307200 } };
	int fd = open(file, O_PATH);

	if (fd < 0)
		return fail("open", file);
	if (utimensat(fd, "", ts, AT_EMPTY_PATH) < 0)
		return fail("utimensat", file);
	close(fd);
	return 0;
}

static int enable_verity(const char *file)
{
	struct fsverity_enable_arg arg = {
		.version = 1,
		.hash_algorithm = FS_VERITY_HASH_ALG_SHA256,
		.block_size = 4096,
	};
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return fail("open", file);
	if (ioctl(fd, FS_IOC_ENABLE_VERITY, &arg) < 0)
		return fail("FS_IOC_ENABLE_VERITY", file);
	close(fd);
	return 0;
}

/* fs/xfs/libxfs/xfs_fs.h (xfsprogs' headers are not on the build machine). */
struct xfs_handlereq {
	uint32_t fd;
	void *path;
	uint32_t oflags;
	void *ihandle;
	uint32_t ihandlen;
	void *ohandle;
	uint32_t *ohandlen;
};
struct xfs_attr_multiop {
	uint32_t am_opcode;
	int32_t am_error;
	void *am_attrname;
	void *am_attrvalue;
	uint32_t am_length;
	uint32_t am_flags;
};
struct xfs_attrmulti_handlereq {
	struct xfs_handlereq hreq;
	uint32_t opcount;
	struct xfs_attr_multiop *ops;
};
#define XFS_IOC_PATH_TO_HANDLE _IOWR('X', 105, struct xfs_handlereq)
#define XFS_IOC_ATTRMULTI_BY_HANDLE _IOW('X', 123, struct xfs_attrmulti_handlereq)
#define XFS_ATTR_OP_SET 2

static int xfs_attrmulti(const char *dir, const char *file, const char *name, const char *value)
{
	char handle[64];
	uint32_t hlen = sizeof(handle);
	struct xfs_handlereq h = { .path = (void *)file, .ohandle = handle, .ohandlen = &hlen };
	struct xfs_attr_multiop op = {
		.am_opcode = XFS_ATTR_OP_SET,
		.am_attrname = (void *)name,
		.am_attrvalue = (void *)value,
		.am_length = strlen(value),
	};
	struct xfs_attrmulti_handlereq m = { .opcount = 1, .ops = &op };
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return fail("open", dir);
	if (ioctl(fd, XFS_IOC_PATH_TO_HANDLE, &h) < 0)
		return fail("XFS_IOC_PATH_TO_HANDLE", file);
	m.hreq.ihandle = handle;
	m.hreq.ihandlen = hlen;
	if (ioctl(fd, XFS_IOC_ATTRMULTI_BY_HANDLE, &m) < 0)
		return fail("XFS_IOC_ATTRMULTI_BY_HANDLE", file);
	if (op.am_error) {
		errno = -op.am_error;
		return fail("XFS_IOC_ATTRMULTI_BY_HANDLE set", name);
	}
	close(fd);
	return 0;
}

/* One 512-byte block read through passthrough, printed up to its first NUL. */
static int print_block(const char *dev, const unsigned char *buf)
{
	printf("%s block 0: %.*s\n", dev, (int)strnlen((const char *)buf, 512), buf);
	return 0;
}

static int nvme_read(const char *dev)
{
	unsigned char buf[512] = { 0 };
	struct nvme_passthru_cmd cmd = { 0 };
	int fd = open(dev, O_RDONLY | O_CLOEXEC), nsid;

	if (fd < 0)
		return fail("open (read-only)", dev);
	/* A namespace device names its namespace; a controller's takes the first. */
	nsid = ioctl(fd, NVME_IOCTL_ID);
	cmd.opcode = 0x02; /* read */
	cmd.nsid = nsid > 0 ? (uint32_t)nsid : 1;
	cmd.addr = (uintptr_t)buf;
	cmd.data_len = sizeof(buf);
	cmd.cdw12 = 0; /* one block (0-based count) from block 0 (cdw10, cdw11) */
	if (ioctl(fd, NVME_IOCTL_IO_CMD, &cmd) != 0) {
		close(fd);
		return fail("NVME_IOCTL_IO_CMD", dev);
	}
	close(fd);
	return print_block(dev, buf);
}

static int bsg_read(const char *dev)
{
	unsigned char buf[512] = { 0 }, sense[32];
	unsigned char cdb[10] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0 }; /* READ(10), block 0, 1 block */
	struct sg_io_v4 io = { 0 };
	int fd = open(dev, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail("open (read-only)", dev);
	io.guard = 'Q';
	io.protocol = BSG_PROTOCOL_SCSI;
	io.subprotocol = BSG_SUB_PROTOCOL_SCSI_CMD;
	io.request_len = sizeof(cdb);
	io.request = (uintptr_t)cdb;
	io.max_response_len = sizeof(sense);
	io.response = (uintptr_t)sense;
	io.din_xfer_len = sizeof(buf);
	io.din_xferp = (uintptr_t)buf;
	io.timeout = 10000;
	if (ioctl(fd, SG_IO, &io) != 0 || io.device_status || io.transport_status || io.driver_status) {
		close(fd);
		return fail("SG_IO (READ(10))", dev);
	}
	close(fd);
	return print_block(dev, buf);
}

static int btrfs_search(const char *dir, const char *file)
{
	struct btrfs_ioctl_search_args args = { 0 };
	struct btrfs_ioctl_search_key *k = &args.key;
	struct btrfs_ioctl_search_header sh;
	struct stat st;
	int fd;

	if (stat(file, &st) < 0)
		return fail("stat", file);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("open (read-only)", dir);
	k->tree_id = 0; /* the subvolume of fd */
	k->min_objectid = k->max_objectid = st.st_ino;
	k->min_type = k->max_type = BTRFS_EXTENT_DATA_KEY;
	k->max_offset = k->max_transid = (uint64_t)-1;
	k->nr_items = 1;
	if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0) {
		close(fd);
		return fail("BTRFS_IOC_TREE_SEARCH", dir);
	}
	close(fd);
	if (k->nr_items < 1)
		return fail("BTRFS_IOC_TREE_SEARCH found no extent of", file);
	memcpy(&sh, args.buf, sizeof(sh));
	/* An inline extent: 21 bytes of struct btrfs_file_extent_item, then the data. */
	if (sh.len <= 21 || sizeof(sh) + sh.len > sizeof(args.buf))
		return fail("no inline extent for", file);
	printf("%s inline: %.*s\n", file, (int)(sh.len - 21), args.buf + sizeof(sh) + 21);
	return 0;
}

/* prctl(PR_SET_MM_EXE_FILE): names FILE the process's executable (what /proc/PID/exe shows and
 * from= rules match). Prints the outcome: "ok", or the error's name. The kernel refuses with
 * EBUSY while the old executable is still mapped, after the security hook's say. */
static int set_exe(const char *file)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail("open", file);
	if (prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd, 0, 0) == 0) {
		printf("set-exe: ok\n");
		return 0;
	}
	printf("set-exe: %s\n", errno == EPERM ? "EPERM" : errno == EBUSY ? "EBUSY" :
			  errno == EACCES ? "EACCES" : strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "set-exe") == 0 && argc == 3)
		return set_exe(argv[2]);
	if (strcmp(cmd, "clone-into-cgroup") == 0 && argc == 3)
		return clone_into_cgroup(argv[2]);
	if (strcmp(cmd, "handle-save") == 0 && argc == 4)
		return handle_save(argv[2], argv[3]);
	if (strcmp(cmd, "handle-read") == 0 && argc == 4)
		return handle_read(argv[2], argv[3]);
	if (strcmp(cmd, "setxattr") == 0 && argc == 5) {
		if (setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0) < 0)
			return fail("setxattr", argv[3]);
		return 0;
	}
	if (strcmp(cmd, "getxattr") == 0 && argc == 4) {
		char v[256];

		if (getxattr(argv[2], argv[3], v, sizeof(v)) < 0)
			return fail("getxattr", argv[3]);
		return 0;
	}
	if (strcmp(cmd, "removexattr") == 0 && argc == 4) {
		if (removexattr(argv[2], argv[3]) < 0)
			return fail("removexattr", argv[3]);
		return 0;
	}
	if (strcmp(cmd, "setflags") == 0 && argc == 4)
		return set_flags(argv[2], argv[3]);
	if (strcmp(cmd, "immutable") == 0 && argc == 3)
		return immutable(argv[2]);
	if (strcmp(cmd, "rename-exchange") == 0 && argc == 4)
		return rename_exchange(argv[2], argv[3]);
	if (strcmp(cmd, "open-ro") == 0 && argc == 3)
		return open_ro(argv[2]);
	if (strcmp(cmd, "abstract-listen") == 0 && argc == 3)
		return abstract_listen(argv[2]);
	if (strcmp(cmd, "abstract-connect") == 0 && argc == 3)
		return abstract_connect(argv[2]);
	if (strcmp(cmd, "mount-rw") == 0 && argc == 3)
		return mount_rw(argv[2]);
	if (strcmp(cmd, "fspick") == 0 && argc == 3)
		return fspick_dir(argv[2]);
	if (strcmp(cmd, "fsopen") == 0 && argc == 3)
		return fsopen_type(argv[2]);
	if (strcmp(cmd, "sendmmsg-claim") == 0 && argc == 4)
		return sendmmsg_claim(argv[2], argv[3]);
	if (strcmp(cmd, "fsetxattr") == 0 && argc == 5)
		return fsetxattr_ro(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "futimens") == 0 && argc == 3)
		return futimens_ro(argv[2]);
	if (strcmp(cmd, "utimes-opath") == 0 && argc == 3)
		return utimes_opath(argv[2]);
	if (strcmp(cmd, "open-trunc-ro") == 0 && argc == 3) {
		int fd = open(argv[2], O_RDONLY | O_TRUNC);

		if (fd < 0)
			return fail("open O_RDONLY|O_TRUNC", argv[2]);
		close(fd);
		return 0;
	}
	if (strcmp(cmd, "enable-verity") == 0 && argc == 3)
		return enable_verity(argv[2]);
	if (strcmp(cmd, "nvme-read") == 0 && argc == 3)
		return nvme_read(argv[2]);
	if (strcmp(cmd, "btrfs-search") == 0 && argc == 4)
		return btrfs_search(argv[2], argv[3]);
	if (strcmp(cmd, "bsg-read") == 0 && argc == 3)
		return bsg_read(argv[2]);
	if (strcmp(cmd, "xfs-attrmulti") == 0 && argc == 6)
		return xfs_attrmulti(argv[2], argv[3], argv[4], argv[5]);
	fprintf(stderr, "usage: escape clone-into-cgroup DIR | handle-save FILE OUT | handle-read DIR HANDLE |\n"
			"       setxattr FILE NAME VALUE | getxattr FILE NAME | removexattr FILE NAME | setflags FILE +i|-i | immutable FILE |\n"
			"       rename-exchange A B | open-ro PATH | abstract-listen NAME | abstract-connect NAME |\n"
			"       mount-rw DIR | fspick DIR | fsopen FSTYPE | sendmmsg-claim PID TEXT |\n"
			"       fsetxattr FILE NAME VALUE | futimens FILE | utimes-opath FILE | enable-verity FILE | open-trunc-ro FILE |\n"
			"       xfs-attrmulti DIR FILE NAME VALUE | nvme-read DEV | bsg-read DEV |\n"
			"       btrfs-search DIR FILE\n");
	return 2;
}
