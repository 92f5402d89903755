#!/bin/sh
# Writes the two-patch series the test-selection checks use, as mboxes with a base-commit:
# trailer, against the cached kernel tree's commit BASE (the page_mapped base stand-in):
#   rational-clean / rational-bug   lib/math/rational.c (KUnit: lib/math/tests/rational_kunit.c)
#   mprotect-clean / mprotect-bug   mm/mprotect.c (kselftest: mm)
#   uncovered                       kernel/panic.c (no test in the tree covers it)
# usage: sh make.sh REPO BASE OUTDIR
set -eu
REPO=$1 BASE=$2 OUT=$3
WT=$(mktemp -d)/wt
export GIT_AUTHOR_NAME="Kay Series" GIT_AUTHOR_EMAIL=kay@example.org
export GIT_COMMITTER_NAME="Kay Series" GIT_COMMITTER_EMAIL=kay@example.org
git -C "$REPO" worktree add -q --detach "$WT" "$BASE"
trap 'git -C "$REPO" worktree remove --force "$WT"' EXIT
cd "$WT"
mkdir -p "$OUT"

series() {  # name, then the commits are made by the caller
	git format-patch -q --cover-letter --base="$BASE" -o "$OUT/$1.d" "$BASE"..HEAD
	sed -i "s|\*\*\* SUBJECT HERE \*\*\*|$2|; s|\*\*\* BLURB HERE \*\*\*|Two patches to check kseries' test selection.|" \
		"$OUT/$1.d/0000-cover-letter.patch"
	cat "$OUT/$1.d"/*.patch > "$OUT/$1.mbox"
	rm -r "$OUT/$1.d"
	git checkout -q --detach "$BASE"
}

tidy_rational() {
	sed -i 's|^ \* rational fractions$| * Rational fractions|' lib/math/rational.c
	git commit -s -qam "lib/math/rational: capitalise the header comment" -m "No functional change."
}

# (a) clean: a pure refactor of the semi-convergent term
tidy_rational
python3 - <<'PY'
import re
p = "lib/math/rational.c"
t = open(p).read()
t = t.replace("""			unsigned long t = ULONG_MAX;

			if (d1)
				t = (max_denominator - d0) / d1;
			if (n1)
				t = min(t, (max_numerator - n0) / n1);
""", """			unsigned long t = semi_convergent_term(n0, d0, n1, d1, max_numerator,
							       max_denominator);
""")
t = t.replace("void rational_best_approximation(", """static unsigned long semi_convergent_term(unsigned long n0, unsigned long d0,
					  unsigned long n1, unsigned long d1,
					  unsigned long max_numerator,
					  unsigned long max_denominator)
{
	unsigned long t = ULONG_MAX;

	if (d1)
		t = (max_denominator - d0) / d1;
	if (n1)
		t = min(t, (max_numerator - n0) / n1);
	return t;
}

void rational_best_approximation(""", 1)
open(p, "w").write(t)
PY
git commit -s -qam "lib/math/rational: compute the semi-convergent term in a helper" -m "No functional change."
series rational-clean "lib/math/rational: tidy rational_best_approximation()"

# (a) bug: patch 2 drops the semi-convergent step (returns the previous convergent only)
tidy_rational
python3 - <<'PY'
p = "lib/math/rational.c"
t = open(p).read()
start = t.index("		if ((n2 > max_numerator) || (d2 > max_denominator)) {")
end = t.index("			break;\n		}\n", start) + len("			break;\n		}\n")
t = t[:start] + "		if ((n2 > max_numerator) || (d2 > max_denominator))\n			break;\n" + t[end:]
open(p, "w").write(t)
PY
git commit -s -qam "lib/math/rational: stop at the last convergent" -m "Return the previous convergent when the next one exceeds the maxima."
series rational-bug "lib/math/rational: simplify rational_best_approximation()"

# (b) mm/mprotect.c
tidy_mprotect() {
	python3 - <<'PY'
p = "mm/mprotect.c"
t = open(p).read()
t = t.replace("	unsigned long charged = 0;\n	int error;\n\n	if (vma_is_sealed(vma))",
              "	unsigned long charged = 0;\n	int error;\n\n	/* a sealed mapping keeps its protection */\n	if (vma_is_sealed(vma))", 1)
open(p, "w").write(t)
PY
	git commit -s -qam "mm/mprotect: say why a sealed VMA is refused" -m "No functional change."
}
tidy_mprotect
python3 - <<'PY'
p = "mm/mprotect.c"
t = open(p).read()
t = t.replace("	long nrpages = (end - start) >> PAGE_SHIFT;\n", "	const long nrpages = (end - start) >> PAGE_SHIFT;\n", 1)
open(p, "w").write(t)
PY
git commit -s -qam "mm/mprotect: nrpages does not change" -m "No functional change."
series mprotect-clean "mm/mprotect: small cleanups in mprotect_fixup()"

tidy_mprotect
python3 - <<'PY'
p = "mm/mprotect.c"
t = open(p).read()
t = t.replace("	/* a sealed mapping keeps its protection */\n	if (vma_is_sealed(vma))\n		return -EPERM;\n\n", "", 1)
open(p, "w").write(t)
PY
git commit -s -qam "mm/mprotect: drop the early sealed check" -m "The VMA walk checks what it needs."
series mprotect-bug "mm/mprotect: simplify mprotect_fixup()"

# (c) a file no test covers
sed -i 's|^ \*  linux/kernel/panic.c$| *  kernel/panic.c|' kernel/panic.c
git commit -s -qam "panic: drop the old path from the header comment" -m "No functional change."
python3 - <<'PY'
p = "kernel/panic.c"
t = open(p).read()
t = t.replace("int panic_timeout = CONFIG_PANIC_TIMEOUT;", "int panic_timeout = CONFIG_PANIC_TIMEOUT; /* seconds */", 1)
open(p, "w").write(t)
PY
git commit -s -qam "panic: say panic_timeout's unit" -m "No functional change."
series uncovered "panic: two comment fixes"
ls -la "$OUT"
