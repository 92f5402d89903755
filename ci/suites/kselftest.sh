# Build kselftest targets of the tree under test ($KSELFTEST_TARGETS, e.g. "mm")
# for the kernel in $KBUILD (its UAPI headers), cross-compiled where
# CROSS_COMPILE says so, install them with the tree's own
# `make -C tools/testing/selftests install` (run_kselftest.sh,
# kselftest-list.txt), and leave in $OUT/rootfs:
#   kselftest/            the install; the guest runs
#                         /bin/sh /kselftest/run_kselftest.sh -t mm:NAME ...
#   bin/busybox + links   the shell and tools the runner and the tests' scripts call
#   usr/bin/timeout       ci/kselftest/timeout.c (coreutils semantics: --foreground,
#                         exit 124), built with the tree's nolibc: the runner calls
#                         /usr/bin/timeout, and busybox's has neither
#   bin/bash              the image's bash, where it is built for the target arch
#                         (mm's run_vmtests.sh, behind every mm:ksft_*.sh, is bash)
#   lib/..., the loader   the shared libraries the test programs and bash need
# Test programs are linked dynamically against the toolchain's glibc, and one
# copy of each library serves them all: mm's ~60 programs static would be each
# a glibc of their own (see the report in the commit for figures).
#
# The install's kselftest-list.txt lists what the tree's Makefiles emit
# (TEST_PROGS, TEST_GEN_PROGS). Many programs are built and installed but not
# listed (mm puts every binary in TEST_GEN_FILES and lists only its
# ksft_*.sh wrappers); each such executable ELF file directly in a
# collection's directory is appended as collection:name, so that
# run_kselftest.sh -t mm:mseal_test runs it alone, with the runner's timeout and
# KTAP lines. The tree's own list is kept as kselftest-list.tree.txt, the added
# lines in kselftest-list.kseries.txt.
#
# Programs that need a library the image lacks (numa.h, sys/capability.h, ...)
# are not built: they are named in $OUT/rootfs/kselftest/kseries-unbuilt.txt
# ("collection:name<TAB>reason") and the build goes on; any other build failure
# is the tree's (exit 1).
#
# Needs: ARCH, CROSS_COMPILE, KSELFTEST_TARGETS, BUSYBOX (the target's static
# busybox in the image). Optional: SYSROOT (target libraries for a cross build).
# Exit 3 (infrastructure) when the image lacks what every target needs.
: "${KSELFTEST_TARGETS:?set KSELFTEST_TARGETS (space-separated kselftest targets, e.g. mm)}"
CC="${CROSS_COMPILE:-}gcc"
if ! command -v "$CC" >/dev/null; then
	echo "kseries: no $CC in the toolchain image: kselftests cannot be built for $ARCH"; exit 3
fi
TRIPLET=$($CC -dumpmachine)
MACHINE=$(echo 'int main(void){return 0;}' | $CC -x c -c -o /tmp/probe.o - && ${CROSS_COMPILE:-}readelf -h /tmp/probe.o | sed -n 's/ *Machine: *//p')
if [ -z "${BUSYBOX:-}" ] || [ ! -f "$BUSYBOX" ]; then
	echo "kseries: no busybox for $ARCH in the toolchain image (BUSYBOX=${BUSYBOX:-unset}): run_kselftest.sh needs a shell in the guest"; exit 3
fi
if [ "$(${CROSS_COMPILE:-}readelf -h "$BUSYBOX" | sed -n 's/ *Machine: *//p')" != "$MACHINE" ]; then
	echo "kseries: $BUSYBOX is not built for $MACHINE ($ARCH): run_kselftest.sh needs the target's shell"; exit 3
fi
if ${CROSS_COMPILE:-}readelf -l "$BUSYBOX" | grep -q 'program interpreter'; then
	echo "kseries: $BUSYBOX is not statically linked"; exit 3
fi
command -v rsync >/dev/null || { echo "kseries: no rsync in the toolchain image (kselftest's install uses it)"; exit 3; }
echo "kseries: kselftest targets: $KSELFTEST_TARGETS for $ARCH ($TRIPLET), busybox $BUSYBOX"

make -s -C "$SRC" O="$KBUILD" headers_install

# Several targets write into their own source directory (mm: local_config.h
# and .mk from check_config.sh), and the tree is read-only: build in a mirror
# whose directories are real and whose files are symlinks to the tree
# (cp -s). make reads the tree's mtimes through them, so it stays incremental;
# what a build writes there stays beside them between runs.
TREE="$OUT/tree"
mirror() {	# a directory of symlinks to the tree's entries
	[ -L "$TREE/$1" ] && rm -f "$TREE/$1"
	mkdir -p "$TREE/$1"
	find "$TREE/$1" -maxdepth 1 -type l -delete
	for entry in "$SRC/$1"/* "$SRC/$1"/.[!.]*; do
		[ -e "$entry" ] && [ ! -d "$TREE/$1/${entry##*/}" ] && ln -s "$entry" "$TREE/$1/${entry##*/}"
	done
	return 0
}
linked() {	# a directory tree of its own, every file a symlink to the tree's
	[ -L "$TREE/$1" ] && rm -f "$TREE/$1"
	mkdir -p "$TREE/$1"
	find "$TREE/$1" -type l -delete
	cp -rs "$SRC/$1/." "$TREE/$1/"
}
mirror .
mirror tools
mirror tools/testing
mirror tools/testing/selftests
for target in $KSELFTEST_TARGETS; do
	if [ ! -d "$SRC/tools/testing/selftests/$target" ]; then
		echo "kseries: the tree has no kselftest target '$target' (tools/testing/selftests/$target)"; exit 2
	fi
	parent=
	rest=$target
	while [ "${rest#*/}" != "$rest" ]; do	# net/forwarding: net is mirrored, forwarding linked
		parent="$parent${rest%%/*}/"
		rest=${rest#*/}
		mirror "tools/testing/selftests/${parent%/}"
	done
	linked "tools/testing/selftests/$target"
done

if [ -n "${SYSROOT:-}" ]; then
	# cross build: target libraries and headers from the unpacked sysroot
	export EXTRA_CFLAGS="-I$SYSROOT/usr/include/$TRIPLET -I$SYSROOT/usr/include -L$SYSROOT/usr/lib/$TRIPLET -Wl,-rpath-link,$SYSROOT/usr/lib/$TRIPLET"
fi

# Placeholders left by an earlier build (below) go, so that what the image can
# build now is built.
if [ -f "$OUT/placeholders" ]; then
	xargs rm -f < "$OUT/placeholders"
	rm -f "$OUT/placeholders"
fi
SELFTESTS="$TREE/tools/testing/selftests"
BUILD="$OUT/build"
INSTALL="$OUT/install"
MAKEARGS="-C $SELFTESTS O=$KBUILD BUILD=$BUILD KSFT_INSTALL_PATH=$INSTALL ARCH=$ARCH CROSS_COMPILE=${CROSS_COMPILE:-} FORCE_TARGETS=1"
mkdir -p "$BUILD"
# shellcheck disable=SC2086
if ! make $MAKEARGS TARGETS="$KSELFTEST_TARGETS" -k -j"$JOBS" all > "$OUT/all.log" 2>&1; then
	# Which programs failed, and why: each alone, its compiler messages read.
	: > "$OUT/unbuilt"
	for target in $KSELFTEST_TARGETS; do
		for f in $(make -s --no-print-directory -C "$SELFTESTS/$target" OUTPUT="$BUILD/$target" O="$KBUILD" \
				ARCH="$ARCH" CROSS_COMPILE="${CROSS_COMPILE:-}" KHDR_INCLUDES="-isystem $KBUILD/usr/include" \
				--eval 'kseries-list-generated: ; @echo $(TEST_GEN_PROGS) $(TEST_GEN_PROGS_EXTENDED) $(TEST_GEN_FILES)' \
				kseries-list-generated); do
			[ -e "$f" ] && continue
			log="$OUT/failed-${f##*/}.log"
			# its own compiler lines in the parallel log name it (NAME.c:L:C: ...); else build it alone
			if grep -q "^${f##*/}\.c:[0-9]*:[0-9]*: fatal error: .*: No such file or directory" "$OUT/all.log"; then
				grep "^${f##*/}\.c:" "$OUT/all.log" > "$log"
			elif make -C "$SELFTESTS/$target" OUTPUT="$BUILD/$target" O="$KBUILD" ARCH="$ARCH" \
				CROSS_COMPILE="${CROSS_COMPILE:-}" KHDR_INCLUDES="-isystem $KBUILD/usr/include" "$f" > "$log" 2>&1; then
				continue
			fi
			lacks=$(sed -n -e 's/.*fatal error: \([^:]*\): No such file or directory.*/\1/p' \
				-e 's/.*cannot find -l\([^ :]*\).*/lib\1/p' "$log" | sort -u | tr '\n' ' ')
			missing=
			for what in $lacks; do	# a header of the tree itself missing is the tree's fault
				case $what in lib*) missing="$missing $what" ; continue ;; esac
				in_tree=
				for d in "$KBUILD/usr/include" "$SRC/tools/include" "$SRC/tools/include/uapi" "$SRC" \
						"$SRC/tools/testing/selftests" "$SRC/tools/testing/selftests/$target"; do
					[ -e "$d/$what" ] && in_tree=1
				done
				[ -n "$in_tree" ] || missing="$missing $what"
			done
			if [ -z "$lacks" ] || [ "$(echo $missing)" != "$(echo $lacks)" ]; then
				cat "$log"
				echo "kseries: $target: ${f##*/} does not build (above)"; exit 1
			fi
			printf '%s:%s\tnot built: the toolchain image lacks%s\n' "$target" "${f##*/}" "$missing" >> "$OUT/unbuilt"
			# a placeholder stands in for it so that the tree's install can run; it is not installed
			: > "$f"
			echo "$f" >> "$OUT/placeholders"
		done
	done
	echo "kseries: not built, for what the image lacks:"
	cat "$OUT/unbuilt"
fi
rm -rf "$INSTALL"
# shellcheck disable=SC2086
make $MAKEARGS TARGETS="$KSELFTEST_TARGETS" -j"$JOBS" install > "$OUT/install.log" 2>&1 || {
	tail -n 60 "$OUT/install.log"; echo "kseries: the tree's kselftest install failed"; exit 1; }
tail -n 5 "$OUT/install.log"
for f in run_kselftest.sh kselftest-list.txt kselftest/runner.sh; do
	[ -f "$INSTALL/$f" ] || { echo "kseries: the tree's install made no $f"; exit 1; }
done

rm -rf "$OUT/rootfs"
mkdir -p "$OUT/rootfs"
cp -a "$INSTALL" "$OUT/rootfs/kselftest"
K="$OUT/rootfs/kselftest"
if [ -f "$OUT/placeholders" ]; then
	while read -r f; do
		rm -f "$K/${f#"$BUILD"/}"
	done < "$OUT/placeholders"
	cp "$OUT/unbuilt" "$K/kseries-unbuilt.txt"
fi
# kselftest-list.txt: the tree's lines, then every unlisted executable ELF program of each collection
mv "$K/kselftest-list.txt" "$K/kselftest-list.tree.txt"
: > "$K/kselftest-list.kseries.txt"
for collection in $(cut -d: -f1 "$K/kselftest-list.tree.txt" | sort -u) $KSELFTEST_TARGETS; do
	[ -d "$K/$collection" ] || continue
	for f in "$K/$collection"/*; do
		[ -f "$f" ] && [ -x "$f" ] && [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
		line="$collection:${f##*/}"
		grep -qxF "$line" "$K/kselftest-list.tree.txt" "$K/kselftest-list.kseries.txt" || echo "$line" >> "$K/kselftest-list.kseries.txt"
	done
done
sort -o "$K/kselftest-list.kseries.txt" "$K/kselftest-list.kseries.txt"
cat "$K/kselftest-list.tree.txt" "$K/kselftest-list.kseries.txt" > "$K/kselftest-list.txt"
echo "kseries: kselftest-list.txt: $(wc -l < "$K/kselftest-list.tree.txt") line(s) from the tree, $(wc -l < "$K/kselftest-list.kseries.txt") added"

# busybox and every applet it has, as links (the target's busybox may not run
# here: the host's lists the same Debian build's applets)
mkdir -p "$OUT/rootfs/bin" "$OUT/rootfs/usr/bin"
cp "$BUSYBOX" "$OUT/rootfs/bin/busybox"
APPLETS=$("$BUSYBOX" --list-full 2>/dev/null || busybox --list-full)
for applet in $APPLETS; do
	case $applet in bin/busybox|usr/bin/timeout) continue ;; esac
	mkdir -p "$OUT/rootfs/${applet%/*}"
	ln -sf /bin/busybox "$OUT/rootfs/$applet"
done
[ -L "$OUT/rootfs/bin/sh" ] || { echo "kseries: $BUSYBOX has no sh applet"; exit 3; }

# /usr/bin/timeout for the runner, with the tree's nolibc (as /init is built);
# its source is ci/kselftest/, mounted at $KSELFTEST_HELPERS
HELPERS="${KSELFTEST_HELPERS:-/kselftest-helpers}"
[ -f "$HELPERS/timeout.c" ] || {
	echo "kseries: $HELPERS/timeout.c is missing: mount ci/kselftest at $HELPERS (KSELFTEST_HELPERS)"; exit 3; }
$CC -Os -static -nostdlib -fno-asynchronous-unwind-tables -fno-ident -Wall \
	-include "$SRC/tools/include/nolibc/nolibc.h" -I"$SRC/tools/include/nolibc" \
	${USERSPACE_CFLAGS:-} -o "$OUT/rootfs/usr/bin/timeout" "$HELPERS/timeout.c" -lgcc || {
	echo "kseries: the guest's timeout (ci/kselftest/timeout.c) does not build with the tree's nolibc"; exit 1; }

# bash, where the image has one for the target (the host's, for a native build)
BASH_BIN=
for b in ${SYSROOT:+$SYSROOT/usr/bin/bash $SYSROOT/bin/bash} /usr/bin/bash /bin/bash; do
	if [ -f "$b" ] && [ "$(${CROSS_COMPILE:-}readelf -h "$b" | sed -n 's/ *Machine: *//p')" = "$MACHINE" ]; then
		BASH_BIN=$b; break
	fi
done
if [ -n "$BASH_BIN" ]; then
	cp -L "$BASH_BIN" "$OUT/rootfs/bin/bash"
else
	echo "kseries: note: no bash for $MACHINE in the image: tests run by bash scripts (mm's run_vmtests.sh, so mm:ksft_*.sh) cannot run" |
		tee "$K/kseries-no-bash.txt"
fi

# shared libraries of every ELF program, found like the target's ld.so would
LIBDIRS="${SYSROOT:+$SYSROOT/usr/lib/$TRIPLET $SYSROOT/lib/$TRIPLET} /usr/$TRIPLET/lib /lib/$TRIPLET /usr/lib/$TRIPLET"
mkdir -p "$OUT/rootfs/lib/$TRIPLET"
copy_libs() {
	for lib in $(${CROSS_COMPILE:-}readelf -d "$1" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
		[ -e "$OUT/rootfs/lib/$TRIPLET/$lib" ] && continue
		found=
		for d in $LIBDIRS; do
			if [ -e "$d/$lib" ]; then
				cp -L "$d/$lib" "$OUT/rootfs/lib/$TRIPLET/$lib"
				found=1
				copy_libs "$d/$lib"
				break
			fi
		done
		[ -n "$found" ] || { echo "kseries: $lib (needed by $1) is in none of $LIBDIRS"; exit 3; }
	done
}
INTERP=
for f in $(find "$OUT/rootfs" -type f); do
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
	copy_libs "$f"
	[ -n "$INTERP" ] || INTERP=$(${CROSS_COMPILE:-}readelf -l "$f" | sed -n 's/.*program interpreter: \(.*\)\]/\1/p')
done
# glibc dlopens libgcc_s for pthread_exit and thread cancellation
for d in $LIBDIRS; do
	if [ -e "$d/libgcc_s.so.1" ]; then cp -L "$d/libgcc_s.so.1" "$OUT/rootfs/lib/$TRIPLET/"; break; fi
done
if [ -n "$INTERP" ]; then
	mkdir -p "$OUT/rootfs${INTERP%/*}"
	found=
	for d in $LIBDIRS; do
		if [ -e "$OUT/rootfs/lib/$TRIPLET/${INTERP##*/}" ]; then	# copied as a library already
			ln -sf "/lib/$TRIPLET/${INTERP##*/}" "$OUT/rootfs$INTERP"; found=1; break
		fi
		if [ -e "$d/${INTERP##*/}" ]; then cp -L "$d/${INTERP##*/}" "$OUT/rootfs$INTERP"; found=1; break; fi
	done
	[ -n "$found" ] || { echo "kseries: the loader $INTERP is in none of $LIBDIRS"; exit 3; }
fi
echo "kseries: rootfs $(du -sk "$OUT/rootfs" | cut -f1) KiB, $(find "$OUT/rootfs" -type f | wc -l) files"
