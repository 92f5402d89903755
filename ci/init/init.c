/*
 * kseries /init: proves the kernel reached userspace, prepares /dev, /proc,
 * /tmp and /dev/shm, gives the suites a PATH, then runs the lane's test
 * suites one after the other and restarts the machine. Built with the kernel's own nolibc
 * (tools/include/nolibc), so one source serves every architecture.
 *
 * The suites come from /kseries/run, one per line: a name, a results file
 * ("-" for none), then the argv (split on spaces). Each suite's output is
 * framed on the console by
 *   kseries-init: suite NAME start
 *   kseries-init: suite NAME exit CODE      (or: signal N)
 * so the host can tell a suite that finished from one the kernel cut short;
 * a results file the suite wrote (e.g. JSON) follows, framed by
 *   kseries-init: suite NAME file-begin / file-end
 *
 * While suites run, the console shows only kernel messages of level ERR and
 * above (oopses, stalls, lockups, panics), so late boot chatter cannot split
 * a test's output line; the whole kernel log (warnings included) follows the
 * suites, framed by kseries-init: kernel-log begin / end, for the splat scan.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MANIFEST 16384
#define MAX_ARGS 256
#define MAX_ENV 64
#define KLOG_MAX (1 << 20)
/* syslog(2) actions */
#define KLOG_READ_ALL 3
#define KLOG_CONSOLE_LEVEL 8

static long klog(int action, char *buf, long len)
{
	return syscall(__NR_syslog, action, buf, len);
}

static void dump_kernel_log(void)
{
	static char buf[KLOG_MAX];
	long n = klog(KLOG_READ_ALL, buf, sizeof(buf));

	printf("kseries-init: kernel-log begin\n");
	fflush(stdout);
	if (n > 0)
		write(1, buf, n);
	else
		printf("kseries-init: note: the kernel log could not be read (%ld)\n", n);
	printf("\nkseries-init: kernel-log end\n");
	fflush(stdout);
}

static void prepare(void)
{
	struct stat st;

	mkdir("/dev", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, 0) != 0 && stat("/dev/null", &st) != 0)
		mknod("/dev/null", 0666 | S_IFCHR, makedev(1, 3));
	mkdir("/proc", 0755);
	if (mount("proc", "/proc", "proc", 0, 0) != 0)
		printf("kseries-init: note: /proc could not be mounted\n");
	/*
	 * What udev would add: devtmpfs has no /dev/fd or /dev/std*, and a
	 * shell's ">> /dev/stdout" (kselftest's runner.sh logs there) would
	 * create a regular file instead of reaching the console.
	 */
	symlink("/proc/self/fd", "/dev/fd");
	symlink("/proc/self/fd/0", "/dev/stdin");
	symlink("/proc/self/fd/1", "/dev/stdout");
	symlink("/proc/self/fd/2", "/dev/stderr");
	mkdir("/sys", 0755);
	mount("sysfs", "/sys", "sysfs", 0, 0);
	/* what BPF and tracing tests expect; absent features just fail to mount */
	mount("bpf", "/sys/fs/bpf", "bpf", 0, 0);
	mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, 0);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, 0);
	mkdir("/tmp", 01777);
	/* POSIX shared memory (shm_open, glibc's sem_open) and what kselftests expect */
	mkdir("/dev/shm", 01777);
	mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777");
}

/*
 * The kernel starts init with HOME and TERM but no PATH: shell scripts a
 * suite runs (kselftest's run_kselftest.sh and its tests) find their tools by
 * PATH, and so do programs that call system() or execvp().
 */
static char **with_path(char **envp)
{
	static char *env[MAX_ENV + 2];
	static char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	int n = 0, has_path = 0;

	for (; envp && envp[n] && n < MAX_ENV; n++) {
		env[n] = envp[n];
		if (strncmp(envp[n], "PATH=", 5) == 0)
			has_path = 1;
	}
	if (!has_path)
		env[n++] = path;
	env[n] = NULL;
	return env;
}

static void dump_file(const char *name, const char *path)
{
	char buf[512];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		printf("kseries-init: suite %s file-missing %s\n", name, path);
		return;
	}
	printf("kseries-init: suite %s file-begin %s\n", name, path);
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		write(1, buf, n);
	close(fd);
	printf("\nkseries-init: suite %s file-end\n", name);
	fflush(stdout);
}

static char *word(char **p)
{
	char *w;

	while (**p == ' ')
		(*p)++;
	w = *p;
	while (**p && **p != ' ')
		(*p)++;
	if (**p)
		*(*p)++ = '\0';
	return w;
}

static int run_suite(char *line, char **envp)
{
	char *argv[MAX_ARGS + 1];
	char *name, *results, *arg, *p = line;
	int argc = 0, status = 0;
	pid_t pid;

	name = word(&p);
	results = word(&p);
	while (argc < MAX_ARGS && *(arg = word(&p)))
		argv[argc++] = arg;
	argv[argc] = NULL;
	if (!*name || !argc)
		return 0;

	printf("kseries-init: suite %s start\n", name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execve(argv[0], argv, envp);
		printf("kseries-init: cannot execute %s: errno %d\n", argv[0], errno);
		exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0) {
		printf("kseries-init: suite %s error fork/wait failed: errno %d\n", name, errno);
		return 1;
	}
	/* WIFEXITED first: some nolibc versions' WIFSIGNALED(0) is true */
	if (WIFEXITED(status))
		printf("kseries-init: suite %s exit %d\n", name, WEXITSTATUS(status));
	else
		printf("kseries-init: suite %s signal %d\n", name, WTERMSIG(status));
	fflush(stdout);
	if (strcmp(results, "-") != 0)
		dump_file(name, results);
	return 0;
}

int main(int argc, char **argv, char **envp)
{
	static char manifest[MAX_MANIFEST];
	struct utsname u;
	char *line, *next;
	ssize_t len = 0, n;
	int fd;

	(void)argc;
	(void)argv;
	prepare();
	envp = with_path(envp);
	uname(&u);
	printf("kseries-init: reached userspace: %s %s %s\n", u.sysname, u.release, u.machine);
	fd = open("/kseries/run", O_RDONLY);
	if (fd >= 0) {
		while (len < MAX_MANIFEST - 1 && (n = read(fd, manifest + len, MAX_MANIFEST - 1 - len)) > 0)
			len += n;
		close(fd);
	}
	manifest[len] = '\0';
	if (len > 0)
		klog(KLOG_CONSOLE_LEVEL, 0, 4);	/* console: ERR and worse only */
	for (line = manifest; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		run_suite(line, envp);
	}
	if (len > 0)
		dump_kernel_log();
	printf("kseries-init: done\n");
	fflush(stdout);
	/*
	 * Restart, not power off: where a board has no power-off handler the
	 * kernel's power-off path ends in do_exit(), killing init and
	 * panicking. QEMU runs with -no-reboot, so a restart ends it.
	 */
	reboot(RB_AUTOBOOT);
	for (;;)
		sleep(3600);	/* never return: returning from init panics */
	return 0;
}
