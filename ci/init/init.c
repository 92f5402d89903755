/*
 * kseries /init: proves the kernel reached userspace, exercises a few of the
 * syscalls the mm series touch (mmap, page faults, munmap), then powers off.
 * Built with the kernel's own nolibc (tools/include/nolibc), so one source
 * serves every architecture with no libc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

static int check_mmap(void)
{
	const size_t len = 16 * 4096;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t i;

	if (p == MAP_FAILED)
		return 1;
	for (i = 0; i < len; i += 4096)
		p[i] = (unsigned char)i;	/* fault every page in */
	for (i = 0; i < len; i += 4096)
		if (p[i] != (unsigned char)i)
			return 2;
	return munmap(p, len) ? 3 : 0;
}

int main(void)
{
	struct utsname u;
	int rc;

	uname(&u);
	printf("kseries-init: reached userspace: %s %s %s\n", u.sysname, u.release, u.machine);
	rc = check_mmap();
	printf("kseries-init: test mmap_fault_munmap %s (%d)\n", rc ? "FAIL" : "PASS", rc);
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
