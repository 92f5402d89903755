# Build the kernel's own nolibc-test (tools/testing/selftests/nolibc) with the
# kernel's own Makefile, outside the read-only tree: the selftest directory is
# copied to $OUT and its sysroot (nolibc + the tree's UAPI headers) is made
# fresh each time, so a series that changes a UAPI header is tested with it.
# Needs: ARCH, CROSS_COMPILE (the kernel's make variables), XARCH (the
# selftest's arch name, from the arch's suite vars).
: "${XARCH:?the arch YAML must set suites.nolibc.vars.XARCH}"
rm -rf "$OUT/nolibc"
cp -r "$SRC/tools/testing/selftests/nolibc" "$OUT/nolibc"
# headers_install runs in a kept object directory of its own (KBUILD_OUTPUT)
mkdir -p "$OUT/obj"
export KBUILD_OUTPUT="$OUT/obj"
make -C "$OUT/nolibc" -f Makefile.nolibc srctree="$SRC" objtree="$OUT/obj" \
	ARCH="$ARCH" XARCH="$XARCH" CROSS_COMPILE="${CROSS_COMPILE:-}" nolibc-test
mkdir -p "$OUT/rootfs/bin"
cp "$OUT/nolibc/nolibc-test" "$OUT/rootfs/bin/nolibc-test"
