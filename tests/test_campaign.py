"""Campaigns (convspec/conformance/campaign.py): deterministic shards on every core or a Dask
cluster, merged into the report a serial run gives; resumable through a shard cache; time budgets.

Clauses cited: MAXPOOL-TIE-1 (the seeded bug a campaign must find on every engine).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convspec import cli
from convspec.conformance import run_conformance
from convspec.conformance.campaign import Shard, parse_budget, run_campaign, shards, Campaign

SMALL = dict(ops=["max_pool", "conv"], ranks=[1, 2], max_examples=4)

#: A max pool keeping the last of equal maxima (MAXPOOL-TIE-1), as a file backend workers load.
LAST_TIE = "import sys\nsys.path.insert(0, {tests!r})\nimport mutants\nbackend = mutants.MaxPoolLastTie()\n"


def content(results):
    """What a report says, without timings: every result of every backend, and the clusters."""
    return [sorted((r.op, r.family, r.check, r.clause, r.status, r.case.descriptor if r.case else "", r.message)
                   for r in run.results) for run in results.backends], \
        [sorted((c.op, c.status, c.clauses, c.conditions, c.count, c.representative) for c in run.clusters)
         for run in results.backends], [run.pair_coverage for run in results.backends]


def test_shards_are_canonical_and_cover_every_unit():
    campaign = Campaign(checks=("differential", "special", "property", "invalid", "hygiene", "defaults"))
    listed = list(shards(["naive"], ["max_pool"], campaign, [3, 4]))
    assert listed[0] == Shard("naive", "max_pool", "cases", 3)
    assert [s.seed for s in listed] == sorted(s.seed for s in listed)
    assert len({s.unit for s in listed}) > 3 and listed == list(shards(["naive"], ["max_pool"], campaign, [3, 4]))


def test_serial_parallel_and_a_plain_run_report_the_same():
    plain = run_conformance("naive", **SMALL)
    serial = run_campaign("naive", jobs=1, **SMALL)
    parallel = run_campaign("naive", jobs=2, **SMALL)
    assert content(serial) == content(parallel) == content(plain)
    assert parallel.settings["campaign"]["engine"] == "2 processes"


def test_every_engine_finds_a_seeded_bug_the_same_way(tmp_path, monkeypatch):  # MAXPOOL-TIE-1
    (tmp_path / "last_tie.py").write_text(LAST_TIE.format(tests=str(Path(__file__).parent)))
    monkeypatch.chdir(tmp_path)
    spec = "last_tie.py:backend"
    kwargs = dict(ops=["max_pool"], ranks=[1, 2], max_examples=10, checks=["differential"])
    serial, parallel = run_campaign(spec, jobs=1, **kwargs), run_campaign(spec, jobs=2, **kwargs)
    assert not serial.conformant and content(serial) == content(parallel)
    assert "MAXPOOL-TIE-1" in {r.clause for r in serial.failures()}


def test_a_dask_local_cluster_reports_what_a_serial_run_does():
    pytest.importorskip("distributed")
    serial = run_campaign("naive", jobs=1, **SMALL)
    clustered = run_campaign("naive", jobs=2, scheduler="local", **SMALL)
    assert content(clustered) == content(serial)
    assert clustered.settings["campaign"]["engine"] == "dask local cluster"


def test_seed_ranges_cover_each_seed(tmp_path):
    two = run_campaign("naive", seeds=[0, 1], jobs=1, **SMALL)
    assert two.settings["campaign"]["seeds"] == [0, 1]
    one = [run_campaign("naive", seeds=[s], jobs=1, **SMALL) for s in (0, 1)]
    assert len(two.backends[0].results) == sum(len(r.backends[0].results) for r in one)


def test_a_rerun_with_a_cache_skips_finished_shards(tmp_path):
    first = run_campaign("naive", jobs=1, cache=tmp_path / "cache", **SMALL)
    again = run_campaign("naive", jobs=1, cache=tmp_path / "cache", **SMALL)
    assert first.settings["campaign"]["cached"] == 0
    assert again.settings["campaign"]["cached"] == again.settings["campaign"]["shards"] > 0
    assert content(again) == content(first)
    other = run_campaign("naive", jobs=1, cache=tmp_path / "cache", seed=1, **SMALL)
    assert other.settings["campaign"]["cached"] == 0  # another seed is another shard


def test_an_edited_file_backend_is_not_served_from_the_cache(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text("from convspec.backends.naive import NaiveBackend\nbackend = NaiveBackend()\n")
    monkeypatch.chdir(tmp_path)
    kwargs = dict(ops=["max_pool"], ranks=[1], max_examples=2, checks=["differential"], jobs=1, cache="cache")
    run_campaign("mine.py:backend", **kwargs)
    (tmp_path / "mine.py").write_text("from convspec.backends.naive import NaiveBackend\nbackend = NaiveBackend()\n# edited\n")
    assert run_campaign("mine.py:backend", **kwargs).settings["campaign"]["cached"] == 0


def test_a_budget_runs_whole_seeds_until_it_is_spent():
    results = run_campaign("naive", budget=3.0, jobs=1, ops=["max_pool"], ranks=[1], max_examples=2,
                           checks=["differential"])
    seeds = results.settings["campaign"]["seeds"]
    assert seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    one = run_campaign("naive", jobs=1, ops=["max_pool"], ranks=[1], max_examples=2, checks=["differential"])
    assert len(results.backends[0].results) == len(seeds) * len(one.backends[0].results)


def test_budget_text():
    assert parse_budget("10m") == 600 and parse_budget("2h") == 7200 and parse_budget("90s") == 90
    for bad in ("", "soon", "-1m", "0"):
        with pytest.raises(ValueError):
            parse_budget(bad)


def test_cli_campaign_options(tmp_path, capsys):
    report = tmp_path / "r.json"
    assert cli.main(["check", "naive", "--ops", "max_pool", "--ranks", "1", "--max-examples", "2", "--seeds", "0-1",
                     "--jobs", "2", "--quiet", "--report", str(report)]) == 0
    obj = json.loads(report.read_text())
    assert obj["settings"]["campaign"]["seeds"] == [0, 1] and obj["settings"]["campaign"]["jobs"] == 2
    assert cli.main(["check", "naive", "--seeds", "0-1", "--case", "conv x=1,1,3 w=1,1,2 s=1 p=0:0 d=1 g=1"]) == 2
    assert "--case" in capsys.readouterr().err
    for bad in (["--budget", "0"], ["--seeds", "5-1"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["check", "naive", *bad])
        assert exit_info.value.code == 2
