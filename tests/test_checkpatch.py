"""checkpatch.pl findings become one testcase per patch; the series' policy decides what fails."""

import pytest

from pipeline.stages import checkpatch
from pipeline.model import config
from pipeline.infra.errors import UserError
from pipeline.model.results import Status
from pipeline.model.series import Patch
from pathlib import Path

OUTPUT = """\
WARNING:LONG_LINE: line length of 104 exceeds 100 columns
#24: FILE: mm/memory.c:1234:
+\tif (folio_mapped(folio) && some_other_condition_that_is_long(folio, vma, address, flags, more))

ERROR:TRAILING_WHITESPACE: trailing whitespace
#31: FILE: kernel/bpf/arena.c:569:
+\tunused = 1; $

total: 1 errors, 1 warnings, 56 lines checked
"""


def patch(index, total, subject):
    return Patch(index, total, subject, "a <a@b>", Path("/dev/null"), ())


def test_findings_carry_level_type_message_and_place():
    assert checkpatch.findings(OUTPUT) == [
        ("WARNING", "LONG_LINE", "line length of 104 exceeds 100 columns", "mm/memory.c:1234"),
        ("ERROR", "TRAILING_WHITESPACE", "trailing whitespace", "kernel/bpf/arena.c:569")]


def test_policy_decides_what_fails():
    on_error = checkpatch.judge(patch(2, 3, "bpf: x"), OUTPUT, 1, config.Checkpatch())
    assert on_error.status == Status.FAIL and on_error.message.startswith("1 error, 1 warning")
    assert "ERROR:TRAILING_WHITESPACE kernel/bpf/arena.c:569" in on_error.message
    warnings_only = OUTPUT.split("\nERROR")[0]
    assert checkpatch.judge(patch(2, 3, "bpf: x"), warnings_only, 1, config.Checkpatch()).status == Status.PASS
    assert checkpatch.judge(patch(2, 3, "bpf: x"), warnings_only, 1, config.Checkpatch("warning")).status == Status.FAIL
    never = checkpatch.judge(patch(2, 3, "bpf: x"), OUTPUT, 1, config.Checkpatch("never"))
    assert never.status == Status.PASS and "(informative)" in never.message
    clean = checkpatch.judge(patch(1, 3, "sh: y"), "total: 0 errors, 0 warnings, 8 lines checked\n", 0, config.Checkpatch())
    assert (clean.status, clean.message) == (Status.PASS, "clean")


def test_checkpatch_that_did_not_run_is_an_error_not_a_pass():
    assert checkpatch.judge(patch(1, 1, "x"), "", None, config.Checkpatch()).status == Status.ERROR
    assert checkpatch.judge(patch(1, 1, "x"), "Can't locate Term/ANSIColor.pm", 2, config.Checkpatch()).status == Status.ERROR


def test_bad_policy_in_the_series_yaml_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="checkpatch.fail_on is 'errors'"):
        config.build(config.Checkpatch, {"fail_on": "errors"}, "x.yaml: 'checkpatch'")
