/*
 * kseries' /usr/bin/timeout for the guest: what the kselftest runner
 * (tools/testing/selftests/kselftest/runner.sh) calls, with the semantics of
 * coreutils' timeout(1) it relies on. Busybox's timeout has no --foreground
 * (the runner runs "/usr/bin/timeout --foreground T /usr/bin/timeout T ./test")
 * and does not exit 124 on a timeout, which is how the runner tells a
 * timeout ("# TIMEOUT T seconds") from a failure. Built static with the
 * tree's own nolibc, like /init, so one source serves every architecture.
 *
 *   timeout [--foreground] [--preserve-status] [-k DURATION] [-s SIGNAL] [-v]
 *           DURATION COMMAND [ARG]...
 *
 * DURATION: a number (decimals allowed) with an optional s, m, h or d suffix;
 * 0 disables the limit. Exit status: the command's (128+N when signal N
 * killed it); 124 when it timed out (unless --preserve-status); 125 when
 * timeout itself failed; 126 when the command cannot be run; 127 when it is
 * not found.
 *
 * How it waits: the signals it acts on (SIGCHLD and the terminating ones) are
 * blocked and taken with rt_sigtimedwait(2), a core syscall every kernel has
 * (tiny configs may lack signalfd, timerfd or pidfd polling). Unless
 * --foreground, the command runs in a process group of its own and a timeout
 * signals the whole group (the test and whatever it forked); with
 * --foreground only the command itself. SIGTERM, SIGINT, SIGHUP and SIGQUIT
 * sent to timeout are passed on the same way, so an outer timeout that fires
 * first still stops the test behind an inner one.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_TIMEDOUT 124
#define EXIT_CANCELED 125
#define EXIT_CANNOT_INVOKE 126
#define EXIT_ENOENT 127

/* the kernel's sigset is 64 bits on every arch kseries runs: one or two longs */
#define SET_WORDS (64 / (8 * sizeof(unsigned long)))
#define SIGSET_BYTES 8
#define K_SIG_BLOCK 0
#define K_SIG_SETMASK 2

/* __kernel_timespec: two 64-bit fields (the *_time64 syscalls on 32-bit arches) */
struct kts {
	long long sec;
	long long nsec;
};

#ifdef __NR_clock_gettime64
#define NR_CLOCK_GETTIME __NR_clock_gettime64
#else
#define NR_CLOCK_GETTIME __NR_clock_gettime
#endif
#ifdef __NR_rt_sigtimedwait_time64
#define NR_SIGTIMEDWAIT __NR_rt_sigtimedwait_time64
#else
#define NR_SIGTIMEDWAIT __NR_rt_sigtimedwait
#endif
#define K_CLOCK_MONOTONIC 1

static const struct {
	const char *name;
	int sig;
} signames[] = {
	{ "HUP", 1 }, { "INT", 2 }, { "QUIT", 3 }, { "KILL", 9 }, { "USR1", 10 },
	{ "USR2", 12 }, { "ALRM", 14 }, { "TERM", 15 },
};
static const int forwarded[] = { 1, 2, 3, 15 };	/* HUP INT QUIT TERM */

static int verbose;

static void say(const char *msg, const char *arg)
{
	fprintf(stderr, "timeout: %s%s\n", msg, arg ? arg : "");
}

static long long now_ms(void)
{
	struct kts t;

	if (syscall(NR_CLOCK_GETTIME, K_CLOCK_MONOTONIC, &t) != 0)
		return 0;
	return t.sec * 1000 + t.nsec / 1000000;
}

/* "45", "0.5", "1.5m", "2h", "1d" -> milliseconds; -1 when malformed */
static long long duration_ms(const char *s)
{
	long long whole = 0, frac = 0, scale = 1, unit = 1000;
	int digits = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits++)
		whole = whole * 10 + (*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (scale < 1000000) {
				frac = frac * 10 + (*s - '0');
				scale *= 10;
			}
	if (!digits)
		return -1;
	switch (*s) {
	case '\0': case 's': break;
	case 'm': unit = 60 * 1000LL; break;
	case 'h': unit = 3600 * 1000LL; break;
	case 'd': unit = 86400 * 1000LL; break;
	default: return -1;
	}
	if (*s && s[1])
		return -1;
	return whole * unit + frac * unit / scale;
}

static int signal_number(const char *s)
{
	unsigned int i;
	int n = 0;

	if (*s >= '0' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++)
			n = n * 10 + (*s - '0');
		return *s || n < 1 || n > 64 ? -1 : n;
	}
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (!strcmp(s, signames[i].name))
			return signames[i].sig;
	return -1;
}

static void add(unsigned long *set, int sig)
{
	set[(sig - 1) / (8 * sizeof(unsigned long))] |= 1UL << ((sig - 1) % (8 * sizeof(unsigned long)));
}

static void usage(void)
{
	say("usage: timeout [--foreground] [--preserve-status] [-k DURATION] [-s SIGNAL] [-v] DURATION COMMAND [ARG]...", 0);
	exit(EXIT_CANCELED);
}

/* execvp's search, for a command without a slash */
static void run(char **argv, char **envp)
{
	static char path[4096];
	const char *dirs, *end;
	size_t dlen, clen = strlen(argv[0]);
	int err = ENOENT;

	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, envp);
		err = errno;
	} else {
		dirs = getenv("PATH");
		if (!dirs)
			dirs = "/usr/sbin:/usr/bin:/sbin:/bin";
		for (; *dirs; dirs = *end ? end + 1 : end) {
			end = strchr(dirs, ':');
			if (!end)
				end = dirs + strlen(dirs);
			dlen = end - dirs;
			if (!dlen || dlen + clen + 2 > sizeof(path))
				continue;
			memcpy(path, dirs, dlen);
			path[dlen] = '/';
			memcpy(path + dlen + 1, argv[0], clen + 1);
			execve(path, argv, envp);
			if (errno != ENOENT)
				err = errno;
		}
	}
	fprintf(stderr, "timeout: cannot run %s: %s\n", argv[0],
		err == ENOENT ? "not found" : err == EACCES ? "permission denied" :
		err == ENOEXEC ? "exec format error (a #! script? the kernel needs CONFIG_BINFMT_SCRIPT)" :
		"execve failed");
	exit(err == ENOENT ? EXIT_ENOENT : EXIT_CANNOT_INVOKE);
}

int main(int argc, char **argv, char **envp)
{
	unsigned long set[SET_WORDS] = { 0 }, old[SET_WORDS] = { 0 };
	long long limit, kill_after = 0, deadline, left;
	int foreground = 0, preserve = 0, sig = 15, timed_out = 0, status = 0, got;
	unsigned int i;
	struct kts wait_for;
	char info[128];	/* siginfo_t: 128 bytes on every arch */
	pid_t pid, target;
	int a = 1;

	for (; a < argc && argv[a][0] == '-' && argv[a][1]; a++) {
		const char *o = argv[a];

		if (!strcmp(o, "--")) {
			a++;
			break;
		} else if (!strcmp(o, "--foreground")) {
			foreground = 1;
		} else if (!strcmp(o, "--preserve-status")) {
			preserve = 1;
		} else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
			verbose = 1;
		} else if (!strcmp(o, "-k") || !strcmp(o, "--kill-after") || !strncmp(o, "--kill-after=", 13)) {
			const char *v = o[2] == '-' && o[12] == '=' ? o + 13 : a + 1 < argc ? argv[++a] : "";

			if ((kill_after = duration_ms(v)) < 0)
				usage();
		} else if (!strcmp(o, "-s") || !strcmp(o, "--signal") || !strncmp(o, "--signal=", 9)) {
			const char *v = o[2] == '-' && o[8] == '=' ? o + 9 : a + 1 < argc ? argv[++a] : "";

			if ((sig = signal_number(v)) < 0)
				usage();
		} else if (o[1] == 'k' && o[2]) {
			if ((kill_after = duration_ms(o + 2)) < 0)
				usage();
		} else if (o[1] == 's' && o[2]) {
			if ((sig = signal_number(o + 2)) < 0)
				usage();
		} else {
			usage();
		}
	}
	if (argc - a < 2 || (limit = duration_ms(argv[a])) < 0)
		usage();
	argv += a + 1;

	add(set, SIGCHLD);
	for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		add(set, forwarded[i]);
	if (syscall(__NR_rt_sigprocmask, K_SIG_BLOCK, set, old, SIGSET_BYTES) != 0) {
		say("cannot block signals", 0);
		return EXIT_CANCELED;
	}
	pid = fork();
	if (pid < 0) {
		say("fork failed", 0);
		return EXIT_CANCELED;
	}
	if (pid == 0) {
		if (!foreground)
			setpgid(0, 0);
		syscall(__NR_rt_sigprocmask, K_SIG_SETMASK, old, 0, SIGSET_BYTES);
		run(argv, envp);
	}
	if (!foreground)
		setpgid(pid, pid);	/* also here: whichever runs first, the group exists before a kill */
	target = foreground ? pid : -pid;
	deadline = limit ? now_ms() + limit : -1;
	for (;;) {
		got = waitpid(pid, &status, WNOHANG);
		if (got == pid)
			break;
		if (got < 0 && errno != EINTR) {
			say("waitpid failed", 0);
			return EXIT_CANCELED;
		}
		left = deadline < 0 ? -1 : deadline - now_ms();
		if (deadline >= 0 && left <= 0) {
			if (verbose)
				fprintf(stderr, "timeout: sending signal %d to command '%s'\n", sig, argv[0]);
			if (kill(target, sig) != 0 && target != pid)
				kill(pid, sig);
			if (sig != SIGKILL && !foreground)
				kill(target, SIGCONT);	/* a stopped process would not see it */
			timed_out = 1;
			if (kill_after && sig != SIGKILL) {
				sig = SIGKILL;
				deadline = now_ms() + kill_after;
			} else {
				deadline = -1;
			}
			continue;
		}
		wait_for.sec = left < 0 ? 3600 : left / 1000;
		wait_for.nsec = left < 0 ? 0 : (left % 1000) * 1000000;
		got = syscall(NR_SIGTIMEDWAIT, set, info, &wait_for, SIGSET_BYTES);
		if (got > 0 && got != SIGCHLD) {
			/* a signal to timeout itself: pass it on, then wait for the command as usual */
			kill(target, got);
			if (!foreground && got != SIGKILL)
				kill(target, SIGCONT);
			if (kill_after && deadline < 0) {
				sig = SIGKILL;
				deadline = now_ms() + kill_after;
			}
		}
	}
	if (timed_out && !preserve)
		return EXIT_TIMEDOUT;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
