"""The verdict against the base, test by test, and the baseline cache key."""

import dataclasses

from pipeline import baseline, config
from pipeline.results import Case, StageRecord, Status


def case(suite, name, status, flaky=False, message=""):
    return Case(suite, f"x86_64: {suite.removeprefix('base-')}: {name}", status, 0, message, "log", "x86_64", flaky)


def test_every_transition_gets_its_kind():
    base = [case("base-t", "a", Status.PASS), case("base-t", "b", Status.PASS), case("base-t", "c", Status.FAIL),
            case("base-t", "d", Status.FAIL), case("base-t", "e", Status.PASS), case("base-t", "f", Status.PASS),
            case("base-t", "h", Status.SKIP), case("base-other", "z", Status.FAIL)]
    series = [case("t", "a", Status.PASS), case("t", "b", Status.FAIL, message="boom"), case("t", "c", Status.FAIL),
              case("t", "d", Status.PASS), case("t", "e", Status.PASS, flaky=True), case("t", "g", Status.PASS),
              case("t", "h", Status.SKIP), case("build", "bzImage", Status.FAIL)]
    got = {v.test.split(": ")[-1]: v.kind for v in baseline.compare(base, series, {"t"})}
    assert got == {"a": "ok", "b": "regression", "c": "pre-existing", "d": "fixed", "e": "flaky",
                   "f": "gone", "g": "new", "h": "skipped"}
    regression = next(v for v in baseline.compare(base, series, {"t"}) if v.kind == "regression")
    assert regression.blamed and regression.base == "PASS" and regression.series == "FAIL"
    assert regression.excerpt.startswith("boom")


def test_key_changes_with_what_decides_the_results(tmp_path, monkeypatch):
    spec = config.load_series("page_mapped")
    x86 = config.resolve_arch("x86_64")
    k = baseline.key(spec, x86, "a" * 40, "kseries/toolchain:1")
    assert k == baseline.key(spec, x86, "a" * 40, "kseries/toolchain:1")
    assert k != baseline.key(spec, x86, "b" * 40, "kseries/toolchain:1")
    assert k != baseline.key(spec, x86, "a" * 40, "kseries/toolchain:2")
    assert k != baseline.key(spec, config.resolve_arch("arm64"), "a" * 40, "kseries/toolchain:1")
    fewer = dataclasses.replace(spec, tests=("boot",))
    assert k != baseline.key(fewer, x86, "a" * 40, "kseries/toolchain:1")


def test_cache_round_trip_keeps_only_clean_baselines(tmp_path):
    good = [StageRecord("base-build", "x86_64", Status.PASS, 1.0, "ok", cases=[case("base-build", "b", Status.PASS)])]
    baseline.save(tmp_path, "k1", good, "run-1")
    back = baseline.load(tmp_path, "k1")
    assert back[0].cases[0].status == Status.PASS and back[0].stage == "base-build"
    bad = good + [StageRecord("base-boot", "x86_64", Status.ERROR, 1.0, "qemu died")]
    baseline.save(tmp_path, "k2", bad, "run-2")
    assert baseline.load(tmp_path, "k2") is None
