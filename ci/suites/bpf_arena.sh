# Build the BPF selftests' test_progs for the kernel in $KBUILD (its vmlinux
# BTF and UAPI headers), cross-compiled where CROSS_COMPILE says so, and put
# it with the shared libraries it needs into $OUT/rootfs.
# Exit 3 (infrastructure) when the toolchain cannot build the arena programs.
# Optional: SYSROOT, target libraries (libelf, zlib, zstd) for a cross build.
LLVM_BIN=$(ls -d /usr/lib/llvm-*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$LLVM_BIN" ] && export PATH="$LLVM_BIN:$PATH"
if ! command -v clang >/dev/null; then
	echo "kseries: no clang in the toolchain image: the BPF selftests cannot be built"; exit 3
fi
clang --version | head -n 1
if ! clang --target=bpf -mcpu=v3 -dM -E - </dev/null | grep -q __BPF_FEATURE_ADDR_SPACE_CAST; then
	echo "kseries: this clang has no BPF address-space casts (LLVM >= 19): the arena programs would compile to skips"
	exit 3
fi
CLANG_MAJOR=$(clang -dumpversion | cut -d. -f1)
if [ "$CLANG_MAJOR" -lt "${MIN_CLANG:-22}" ]; then
	echo "kseries: clang $CLANG_MAJOR is older than ${MIN_CLANG:-22}, which these selftests need"; exit 3
fi
pahole --version
if [ ! -f "$KBUILD/vmlinux" ] || ! grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$KBUILD/.config"; then
	echo "kseries: $KBUILD has no vmlinux with BTF (CONFIG_DEBUG_INFO_BTF): check the suite's kernel fragment"; exit 3
fi

make -s -C "$SRC" O="$KBUILD" headers_install

# The selftests' Makefile writes generated headers into its own directory, and
# the tree is read-only: build in a mirror of the tree made of symlinks, with
# tools/testing/selftests/bpf itself a real copy (rsync keeps mtimes, so make
# stays incremental between runs).
TREE="$OUT/tree"
mirror() {
	if [ "$1" = . ]; then rm -rf "$TREE"; else rm -rf "${TREE:?}/$1"; fi
	mkdir -p "$TREE/$1"
	for entry in "$SRC/$1"/* "$SRC/$1"/.[!.]*; do
		[ -e "$entry" ] && ln -s "$entry" "$TREE/$1/${entry##*/}"
	done
	return 0
}
mirror .
mirror tools
mirror tools/testing
mirror tools/testing/selftests
rm -f "$TREE/tools/testing/selftests/bpf"
rsync -a --delete "$SRC/tools/testing/selftests/bpf/" "$TREE/tools/testing/selftests/bpf/"

if [ -n "${SYSROOT:-}" ]; then
	# cross build: target libraries and headers come from the unpacked sysroot
	# (multiarch headers such as opensslconf.h live in usr/include/<triplet>)
	TRIPLET=$(${CROSS_COMPILE}gcc -dumpmachine)
	SYSINC="-I$SYSROOT/usr/include/$TRIPLET -I$SYSROOT/usr/include"
	SYSLIB="-L$SYSROOT/usr/lib/$TRIPLET -Wl,-rpath-link,$SYSROOT/usr/lib/$TRIPLET"
	export CFLAGS="$SYSINC" LDFLAGS="$SYSLIB"
	# the Makefile asks $(CROSS_COMPILE)pkg-config (sign-file: libcrypto):
	# answer from the sysroot's .pc files, with its paths
	mkdir -p "$OUT/bin"
	cat > "$OUT/bin/${CROSS_COMPILE}pkg-config" <<-EOF
	#!/bin/sh
	export PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
	export PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/$TRIPLET/pkgconfig:$SYSROOT/usr/share/pkgconfig"
	out=\$(pkg-config "\$@") || exit \$?
	case " \$* " in
	*" --cflags "*) out="\$out $SYSINC" ;;
	esac
	case " \$* " in
	*" --libs "*) out="\$out $SYSLIB" ;;
	esac
	echo "\$out"
	EOF
	chmod +x "$OUT/bin/${CROSS_COMPILE}pkg-config"
	export PATH="$OUT/bin:$PATH"
fi
mkdir -p "$OUT/build"
make -C "$TREE/tools/testing/selftests/bpf" O="$KBUILD" OUTPUT="$OUT/build" \
	KHDR_INCLUDES="-isystem $KBUILD/usr/include" BPF_STRICT_BUILD=0 \
	-j"$JOBS" test_progs

# the binary, then every shared library it needs, found like the target's ld.so would
TRIPLET=$(${CROSS_COMPILE:-}gcc -dumpmachine)
LIBDIRS="${SYSROOT:+$SYSROOT/usr/lib/$TRIPLET $SYSROOT/lib/$TRIPLET} /usr/$TRIPLET/lib /lib/$TRIPLET /usr/lib/$TRIPLET"
rm -rf "$OUT/rootfs"
mkdir -p "$OUT/rootfs/bin" "$OUT/rootfs/lib/$TRIPLET"
cp "$OUT/build/test_progs" "$OUT/rootfs/bin/"
${CROSS_COMPILE:-}strip --strip-debug "$OUT/rootfs/bin/test_progs"
copy_libs() {
	for lib in $(${CROSS_COMPILE:-}readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
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
copy_libs "$OUT/build/test_progs"
# glibc dlopens libgcc_s for pthread_exit and thread cancellation (arena_spin_lock's threads)
for d in $LIBDIRS; do
	if [ -e "$d/libgcc_s.so.1" ]; then cp -L "$d/libgcc_s.so.1" "$OUT/rootfs/lib/$TRIPLET/"; break; fi
done
[ -e "$OUT/rootfs/lib/$TRIPLET/libgcc_s.so.1" ] || { echo "kseries: libgcc_s.so.1 is in none of $LIBDIRS"; exit 3; }
INTERP=$(${CROSS_COMPILE:-}readelf -l "$OUT/build/test_progs" | sed -n 's/.*program interpreter: \(.*\)\]/\1/p')
if [ -n "$INTERP" ]; then
	mkdir -p "$OUT/rootfs$(dirname "$INTERP")"
	cp -L "$(for d in $LIBDIRS; do [ -e "$d/$(basename "$INTERP")" ] && echo "$d/$(basename "$INTERP")" && break; done)" \
		"$OUT/rootfs$INTERP"
fi
ls -lR "$OUT/rootfs"
