/*
 * kseries /init: proves the kernel reached userspace, prepares /dev, /proc
 * and /tmp, then runs the lane's test suites one after the other and
 * restarts the machine. Built with the kernel's own nolibc
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

#define MAX_MANIFEST 4096
#define MAX_ARGS 32
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
	mkdir("/sys", 0755);
	mount("sysfs", "/sys", "sysfs", 0, 0);
	/* what BPF and tracing tests expect; absent features just fail to mount */
	mount("bpf", "/sys/fs/bpf", "bpf", 0, 0);
	mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, 0);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, 0);
	mkdir("/tmp", 01777);
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
