/*
 * vmc-faultfs: a FUSE pass-through file system that a test can make fail,
 * for the volume-failure tests (a volume that returns EIO, or hangs like
 * an NFS server gone, on one node only: mount it over the volume's path
 * in that node's mount namespace).
 *
 *   vmc-faultfs SOURCE MOUNTPOINT        (stays in the foreground)
 *
 * Every operation is passed to SOURCE, except while the file .faultfs at
 * the root of the mount says otherwise: write "eio" to it and every
 * other operation fails with EIO; "hang" and they block until it says
 * "ok" again (or the file system is unmounted). Reads and writes bypass
 * the page cache (direct_io), so each one reaches here and can fail;
 * SOURCE itself is used without O_DIRECT (FUSE's buffers are not
 * aligned). A request that hangs here cannot be interrupted, not even by
 * SIGKILL, like I/O on a hard NFS mount: it ends when the mode goes back
 * to ok or this process dies (then it fails with ENOTCONN).
 */
#define FUSE_USE_VERSION 31
#include "config.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CONTROL "/.faultfs"

enum mode { MODE_OK, MODE_EIO, MODE_HANG };

static char source[PATH_MAX];
/* SOURCE opened before the mount: it may be the mount point itself, which the mount then hides. */
static int src = -1;
static enum mode mode = MODE_OK;
static pthread_mutex_t mode_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mode_cv = PTHREAD_COND_INITIALIZER;

static const char *mode_word(enum mode m)
{
	return m == MODE_EIO ? "eio\n" : m == MODE_HANG ? "hang\n" : "ok\n";
}

/* 0 to go on, -EIO to fail; blocks while the mode is hang. */
static int gate(void)
{
	int rc;

	pthread_mutex_lock(&mode_mu);
	while (mode == MODE_HANG) {
		pthread_cond_wait(&mode_cv, &mode_mu);
	}
	rc = mode == MODE_EIO ? -EIO : 0;
	pthread_mutex_unlock(&mode_mu);
	return rc;
}

/* The path relative to SOURCE, for the *at() calls. */
static int real(const char *path, char *out)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s", path[1] ? path + 1 : ".") >= PATH_MAX) {
		return -ENAMETOOLONG;
	}
	return 0;
}

/* The control file, and the root's attributes (a path to the control file needs them), never fail. */
static bool exempt(const char *path)
{
	return strcmp(path, CONTROL) == 0 || strcmp(path, "/") == 0;
}

#define PASS(path, buf)                              \
	char buf[PATH_MAX];                          \
	int rc_ = exempt(path) ? 0 : gate();         \
	if (rc_ == 0) {                              \
		rc_ = real(path, buf);               \
	}                                            \
	if (rc_ != 0) {                              \
		return rc_;                          \
	}

static int ret(int r)
{
	return r < 0 ? -errno : r;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = 8;
		return 0;
	}
	PASS(path, p);
	(void)fi;
	return ret(fstatat(src, p, st, AT_SYMLINK_NOFOLLOW));
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	DIR *dir;
	struct dirent *e;
	int rc = gate();

	if (rc != 0) {
		return rc;
	}
	PASS(path, p);
	(void)off, (void)fi, (void)flags;
	{
		int fd = openat(src, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (dir == NULL) {
			int err = errno;
			if (fd >= 0) {
				close(fd);
			}
			return -err;
		}
	}
	while ((e = readdir(dir)) != NULL) {
		if (fill(buf, e->d_name, NULL, 0, 0) != 0) {
			break;
		}
	}
	closedir(dir);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if (strcmp(path, CONTROL) == 0) {
		fi->direct_io = 1;
		return 0;
	}
	PASS(path, p);
	fd = openat(src, p, (fi->flags & ~O_DIRECT) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1;
	return 0;
}

static int fs_create(const char *path, mode_t m, struct fuse_file_info *fi)
{
	int fd;

	PASS(path, p);
	fd = openat(src, p, (fi->flags & ~O_DIRECT) | O_NOFOLLOW | O_CLOEXEC, m);
	if (fd < 0) {
		return -errno;
	}
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0) {
		const char *w;
		size_t n;
		pthread_mutex_lock(&mode_mu);
		w = mode_word(mode);
		pthread_mutex_unlock(&mode_mu);
		n = strlen(w);
		if ((size_t)off >= n) {
			return 0;
		}
		n -= (size_t)off;
		memcpy(buf, w + off, n < size ? n : size);
		return (int)(n < size ? n : size);
	}
	{
		int rc = gate();
		if (rc != 0) {
			return rc;
		}
	}
	return ret((int)pread((int)fi->fh, buf, size, off));
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0) {
		enum mode m = strncmp(buf, "eio", 3) == 0 ? MODE_EIO : strncmp(buf, "hang", 4) == 0 ? MODE_HANG : MODE_OK;
		pthread_mutex_lock(&mode_mu);
		mode = m;
		pthread_cond_broadcast(&mode_cv);
		pthread_mutex_unlock(&mode_mu);
		fprintf(stderr, "vmc-faultfs: %s: now %s", source, mode_word(m));
		return (int)size;
	}
	{
		int rc = gate();
		if (rc != 0) {
			return rc;
		}
	}
	return ret((int)pwrite((int)fi->fh, buf, size, off));
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) != 0) {
		close((int)fi->fh);
	}
	return 0;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int rc = strcmp(path, CONTROL) == 0 ? 0 : gate();

	if (rc != 0 || strcmp(path, CONTROL) == 0) {
		return rc;
	}
	return ret(datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh));
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0) {
		return 0;
	}
	PASS(path, p);
	if (fi != NULL) {
		return ret(ftruncate((int)fi->fh, size));
	}
	{
		int fd = openat(src, p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC), rc;
		if (fd < 0) {
			return -errno;
		}
		rc = ret(ftruncate(fd, size));
		close(fd);
		return rc;
	}
}

static int fs_unlink(const char *path)
{
	PASS(path, p);
	return ret(unlinkat(src, p, 0));
}

static int fs_mkdir(const char *path, mode_t m)
{
	PASS(path, p);
	return ret(mkdirat(src, p, m));
}

static int fs_rmdir(const char *path)
{
	PASS(path, p);
	return ret(unlinkat(src, p, AT_REMOVEDIR));
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	char t[PATH_MAX];

	PASS(from, f);
	if (flags != 0) {
		return -EINVAL;
	}
	if (real(to, t) != 0) {
		return -ENAMETOOLONG;
	}
	return ret(renameat(src, f, src, t));
}

static int fs_chmod(const char *path, mode_t m, struct fuse_file_info *fi)
{
	PASS(path, p);
	(void)fi;
	return ret(fchmodat(src, p, m, 0));
}

static int fs_chown(const char *path, uid_t u, gid_t g, struct fuse_file_info *fi)
{
	PASS(path, p);
	(void)fi;
	return ret(fchownat(src, p, u, g, AT_SYMLINK_NOFOLLOW));
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (strcmp(path, CONTROL) == 0) {
		return 0;
	}
	PASS(path, p);
	(void)fi;
	return ret(utimensat(src, p, tv, AT_SYMLINK_NOFOLLOW));
}

static int fs_statfs(const char *path, struct statvfs *st)
{
	PASS(path, p);
	(void)p;
	return ret(fstatvfs(src, st));
}

static int fs_access(const char *path, int m)
{
	if (strcmp(path, CONTROL) == 0) {
		return 0;
	}
	PASS(path, p);
	return ret(faccessat(src, p, m, 0));
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.release = fs_release,
	.fsync = fs_fsync,
	.truncate = fs_truncate,
	.unlink = fs_unlink,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.utimens = fs_utimens,
	.statfs = fs_statfs,
	.access = fs_access,
};

int main(int argc, char **argv)
{
	static char fg[] = "-f", o[] = "-o", opts[] = "fsname=vmc-faultfs,default_permissions,max_threads=64";
	char *fargv[] = { argv[0], fg, o, opts, NULL, NULL };

	if (argc != 3) {
		fprintf(stderr, "usage: vmc-faultfs SOURCE MOUNTPOINT\n");
		return 2;
	}
	if (realpath(argv[1], source) == NULL) {
		fprintf(stderr, "vmc-faultfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	src = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (src < 0) {
		fprintf(stderr, "vmc-faultfs: %s: %s\n", source, strerror(errno));
		return 1;
	}
	fargv[4] = argv[2];
	return fuse_main(5, fargv, &ops, NULL);
}
