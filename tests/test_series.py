"""The offline series copy: subjects in order, the cover letter's diffstat, bad patch dirs."""

import shutil
from pathlib import Path

import pytest

from pipeline.model import config
from pipeline.infra.errors import UserError
from pipeline.model.series import FileStat, format_diffstat, load_patch_dir

SEED = Path(__file__).resolve().parent.parent.parent / "shared" / "seed"

COVER_DIFFSTAT = """\
 arch/sh/mm/cache-sh4.c |  2 +-
 include/linux/mm.h     | 10 ----------
 kernel/bpf/arena.c     |  2 +-
 mm/memory.c            |  2 +-
 mm/rmap.c              |  8 ++++----
 5 files changed, 7 insertions(+), 17 deletions(-)
"""

SUBJECTS = [
    "sh: use folio_mapped() instead of page_mapped() in sh4_flush_cache_page()",
    "bpf: arena: use page_ref_count() instead of page_mapped() in arena_free_pages()",
    "mm: remove page_mapped()",
]


@pytest.fixture
def offline():
    spec = config.load_series("page_mapped")
    return load_patch_dir(spec.patch_dir, spec.title, "offline")


def test_offline_copy_has_the_seed_subjects_in_order(offline):
    assert [p.subject for p in offline.patches] == SUBJECTS
    assert [p.label for p in offline.patches] == ["1/3", "2/3", "3/3"]


def test_offline_copy_reproduces_the_cover_letter_diffstat(offline):
    assert format_diffstat(offline.files) == COVER_DIFFSTAT


def test_cover_letter_in_the_seed_matches(offline):
    seeds = list(SEED.glob("*.txt")) if SEED.is_dir() else []
    if not seeds:
        pytest.skip(f"no seed thread at {SEED}")
    text = seeds[0].read_text()
    assert COVER_DIFFSTAT in text
    for subject in SUBJECTS:
        assert subject in text


def test_diffstat_format_singular_and_insert_only():
    assert format_diffstat([FileStat("a.c", 1, 0)]).splitlines()[-1] == " 1 file changed, 1 insertion(+)"
    assert format_diffstat([FileStat("a.c", 0, 2)]).splitlines()[-1] == " 1 file changed, 2 deletions(-)"


def test_missing_patch_is_named(tmp_path, offline):
    for p in offline.patches:
        if p.index != 2:
            shutil.copy(p.path, tmp_path / p.path.name)
    with pytest.raises(UserError) as err:
        load_patch_dir(tmp_path, "x", "test")
    assert "missing 2" in err.value.message and str(tmp_path) in err.value.message


def test_non_patch_mail_is_rejected(tmp_path):
    (tmp_path / "0001-x.patch").write_text("From: a@b\nSubject: [PATCH 1/1] hello\n\njust words\n")
    with pytest.raises(UserError) as err:
        load_patch_dir(tmp_path, "x", "test")
    assert "not a patch mail" in err.value.message
