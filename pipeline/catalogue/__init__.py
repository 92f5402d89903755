"""The tests a kernel tree holds and what they cover, read from the tree itself.

tree.py reads one commit's files from the git store (no checkout); maintainers.py
reads MAINTAINERS; kunit.py finds the KUnit suites and the Kconfig symbol each is
built under; kselftest.py the kselftest targets and their tests; catalogue.py puts
them together and keeps the result per tree; select.py chooses what covers a
series' changed files, each choice with its reason.
"""
