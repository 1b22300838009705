"""The search loop: storage as trials finish, resume by replay, failures, workers, Pareto front.

Latency and accuracy here are explicit test doubles (latency proportional to
multiply-adds, accuracy a smooth function of them): legitimate stand-ins for
testing the loop's mechanics, not figures about any device or data set.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from latprof.errors import SearchError
from latprof.search import (
    RandomController,
    SearchConfig,
    Trial,
    pareto_front,
    run_search,
)
from latprof.search._accuracy import AccuracyEstimator
from latprof.space import count_params_macs
from latprof.store import Store


class MacsLatency:
    """Test double: 1 ms per 4 million multiply-adds."""

    def predict_many(self, archs):
        return np.array([count_params_macs(a)[1] / 4e6 for a in archs])


class LogMacsAccuracy(AccuracyEstimator):
    """Test double: accuracy rising with log multiply-adds; optionally fails on regular-conv first blocks."""

    spec = "test:log-macs"

    def __init__(self, fail_on_cn: bool = False) -> None:
        self.fail_on_cn = fail_on_cn
        self.calls = 0

    def __call__(self, arch):
        self.calls += 1
        if self.fail_on_cn and arch.blocks[0].op == "cn":
            raise RuntimeError("simulated estimator crash\non two lines")
        return 0.1 * math.log(count_params_macs(arch)[1])

    def describe(self):
        return "test double"


def search(tmp_path, *, samples=48, controller="ppo", out="out", resume=False, estimator=None, on_trial=None,
           workers=1, **config):
    cfg = SearchConfig(target_ms=75.0, controller=controller, samples=samples, seed=3, **config)
    with Store(tmp_path / "db.sqlite") as store:
        return run_search(cfg, MacsLatency(), store=store, out_dir=tmp_path / out if out else None, resume=resume,
                          estimator=estimator or (LogMacsAccuracy() if "accuracy" not in config else None),
                          workers=workers,
                          on_trial=on_trial)


def key(trials):
    return [(t.idx, t.tokens, t.status, t.reward, t.latency_ms, t.accuracy) for t in trials]


@pytest.mark.parametrize("controller", ["ppo", "evolution", "random"])
def test_a_seeded_search_is_reproducible(tmp_path, controller):
    a = search(tmp_path, controller=controller, out="a")
    b = search(tmp_path, controller=controller, out="b")
    assert key(a.trials) == key(b.trials)
    assert len(a.trials) == 48 and a.best is not None
    # the default reward with a built-in proxy accuracy is the hard constraint
    assert all(t.reward == pytest.approx(t.accuracy * (t.latency_ms / 75.0) ** (0 if t.latency_ms <= 75 else -1))
               for t in a.ok_trials)


def test_every_trial_is_stored_in_sqlite_and_the_csv_as_it_finishes(tmp_path):
    seen = []

    def check(trial, progress):
        with Store(tmp_path / "db.sqlite") as other:  # a second connection sees the row already
            n = other.connection.execute("SELECT COUNT(*) FROM search_trials WHERE idx = ?", (trial.idx,)).fetchone()
        rows = list(csv.DictReader((tmp_path / "out" / "trials.csv").open()))
        seen.append((n[0], len(rows), progress.done))

    result = search(tmp_path, samples=20, on_trial=check)
    assert seen == [(1, i, i) for i in range(1, 21)]
    marker = json.loads((tmp_path / "out" / "search.json").read_text())
    assert marker["search_id"] == result.search_id and marker["config"]["samples"] == 20


@pytest.mark.parametrize("controller", ["ppo", "evolution"])
def test_a_killed_search_resumes_to_exactly_the_uninterrupted_result(tmp_path, controller):
    full = search(tmp_path, controller=controller, samples=64, out="full")

    def kill(trial, progress):
        if progress.done == 37:  # in the middle of the third batch
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, controller=controller, samples=64, out="killed", on_trial=kill)
    estimator = LogMacsAccuracy()
    resumed = search(tmp_path, controller=controller, samples=64, out="killed", resume=True, estimator=estimator)
    assert key(resumed.trials) == key(full.trials)
    assert resumed.resumed_trials == 37
    assert estimator.calls <= 64 - 37  # stored samples are not evaluated again
    rows = list(csv.DictReader((tmp_path / "killed" / "trials.csv").open()))
    assert [int(r["idx"]) for r in rows] == list(range(64))


def test_resume_can_extend_a_search_but_not_change_it(tmp_path):
    search(tmp_path, samples=32)
    with pytest.raises(SearchError, match="--resume"):
        search(tmp_path, samples=32)
    with pytest.raises(SearchError, match="controller='ppo'"):
        search(tmp_path, samples=48, controller="random", resume=True)
    longer = search(tmp_path, samples=48, resume=True)
    assert len(longer.trials) == 48 and longer.resumed_trials == 32
    assert key(longer.trials) == key(search(tmp_path, samples=48, out="fresh").trials)


def test_a_search_stored_before_a_setting_existed_resumes_with_its_default(tmp_path):
    search(tmp_path, samples=16)
    with Store(tmp_path / "db.sqlite") as store:  # as stored before searches had a data type
        (config,) = store.connection.execute("SELECT config FROM searches").fetchone()
        old = {k: v for k, v in json.loads(config).items() if k != "dtype"}
        store.connection.execute("UPDATE searches SET config = ?", (json.dumps(old),))
        store.connection.commit()
    assert search(tmp_path, samples=24, resume=True).resumed_trials == 16
    with pytest.raises(SearchError, match="dtype='float32', not 'int8'"):
        search(tmp_path, samples=32, resume=True, dtype="int8")


def test_a_failing_candidate_is_recorded_and_the_search_goes_on(tmp_path):
    result = search(tmp_path, samples=64, controller="random", estimator=LogMacsAccuracy(fail_on_cn=True))
    failed = [t for t in result.trials if not t.ok]
    assert failed and len(failed) < 64
    assert all(t.error == "RuntimeError: simulated estimator crash on two lines" and t.reward is None for t in failed)
    assert all(t.arch not in {p.arch for p in result.pareto()} for t in failed)
    with Store(tmp_path / "db.sqlite") as store:
        stored = store.connection.execute("SELECT COUNT(*) FROM search_trials WHERE status = 'failed'").fetchone()[0]
    assert stored == len(failed)


def test_a_search_whose_first_batch_all_fails_stops_with_the_reason(tmp_path):
    class Broken(LogMacsAccuracy):
        def __call__(self, arch):
            return float("nan")

    with pytest.raises(SearchError, match="all 16 candidates of the first batch failed.*finite"):
        search(tmp_path, estimator=Broken())


class FewArchitectures(RandomController):
    """Controller double: cycles through 5 random architectures, so most samples repeat an earlier one."""

    def __init__(self, space, seed=0):
        super().__init__(space, seed)
        self.cycle = [super(FewArchitectures, self).ask() for _ in range(5)]
        self.n = 0

    def ask(self):
        self.n += 1
        return list(self.cycle[(self.n * 7) % 5])


def test_repeated_architectures_reuse_the_first_evaluation(tmp_path, monkeypatch):
    monkeypatch.setattr(SearchConfig, "make_controller", lambda self, space: FewArchitectures(space))
    estimator = LogMacsAccuracy()
    result = search(tmp_path, samples=40, estimator=estimator)
    reused = [t for t in result.trials if t.reused_from is not None]
    assert len(reused) == 35 and estimator.calls == 5
    for t in reused:
        first = result.trials[t.reused_from]
        assert first.arch == t.arch and first.reward == t.reward and t.seconds == 0.0 and first.reused_from is None


def test_results_do_not_depend_on_the_number_of_worker_processes(tmp_path, monkeypatch):
    """Two spawned worker processes import python:MODULE:FUNCTION themselves and give the in-process result."""
    (tmp_path / "bench_scores.py").write_text(
        "import math\nfrom latprof.space import count_params_macs\n\n"
        "def log_macs(arch):\n    return 0.1 * math.log(count_params_macs(arch)[1])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = "python:bench_scores:log_macs"
    one = search(tmp_path, samples=32, controller="evolution", out="one", accuracy=spec, estimator=None)
    two = search(tmp_path, samples=32, controller="evolution", out="two", accuracy=spec, workers=2)
    assert key(one.trials) == key(two.trials)
    # the in-process estimator object is not a python: spec, so name the reward the spec gets by default
    assert [t.reward for t in one.trials] == [t.reward for t in search(tmp_path, samples=32, out="three",
                                                                       controller="evolution", reward="soft").trials]
    with pytest.raises(SearchError, match="workers"):
        search(tmp_path, samples=16, out="x", workers=2, estimator=LogMacsAccuracy())


def test_pareto_front_keeps_only_undominated_architectures():
    def t(idx, arch, lat, acc, ok=True):
        return Trial(idx, (), arch, "ok" if ok else "failed", lat, acc, acc, None, 0.0, None, "")

    trials = [t(0, "a", 10, 0.5), t(1, "b", 20, 0.4), t(2, "c", 20, 0.6), t(3, "d", 30, 0.6), t(4, "e", 40, 0.9),
              t(5, "f", 5, None, ok=False), t(6, "a", 10, 0.5)]
    assert [p.arch for p in pareto_front(trials)] == ["a", "c", "e"]


@pytest.mark.parametrize("bad,fragment", [
    ({"target_ms": 0}, "--target-ms"),
    ({"target_ms": -1}, "--target-ms"),
    ({"controller": "bayes"}, "--controller ppo"),
    ({"latency": "guess"}, "--latency predictor or measure"),
    ({"accuracy": "imagenet"}, "--accuracy zero-cost"),
    ({"samples": 0}, "--samples"),
])
def test_bad_settings_are_refused_with_the_fix(bad, fragment):
    with pytest.raises(Exception) as exc:
        SearchConfig(**{"target_ms": 75.0, **bad})
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_two_processes_cannot_run_the_same_search_folder_at_once(tmp_path):
    from latprof.search._runner import _exclusive

    # _exclusive is what a running search holds for its whole run.
    with _exclusive(tmp_path / "out"), pytest.raises(SearchError, match="another latprof search is running"):
        search(tmp_path, samples=16)
    assert len(search(tmp_path, samples=16).trials) == 16  # free again once that run ends


def _trial(idx: int, latency_ms: float, accuracy: float, reward: float):
    from latprof.search import Trial

    return Trial(idx, (idx,), f"arch{idx}", "ok", latency_ms, accuracy, reward, None, 0.0, None, "")


@pytest.mark.parametrize("is_proxy,expected", [(True, 1), (False, 2)])
def test_the_answer_is_within_the_target_and_with_a_proxy_near_it(is_proxy, expected):
    """Over T never answers while something is within; a proxy's answer comes from the 5% band below T."""
    from latprof.search import SearchResult

    trials = [_trial(0, 80.0, 0.9, 0.85), _trial(1, 73.0, 0.6, 0.6), _trial(2, 40.0, 0.7, 0.7)]
    result = SearchResult(SearchConfig(target_ms=75), 1, trials, 0, "random", "x", is_proxy)
    assert result.best.idx == 0 and result.chosen.idx == expected
    alone = SearchResult(SearchConfig(target_ms=75), 1, trials[:1], 0, "random", "x", is_proxy)
    assert alone.chosen.idx == 0  # nothing within the target: the highest reward
