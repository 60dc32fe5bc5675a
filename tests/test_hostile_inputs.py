"""Hostile inputs, table-driven: every probe of ``sar_studies.hostile_inputs`` through ``cli.py`` in a subprocess.

Each probe must end as it expects (a clear one-line error naming the file, or a run that works) and
leave every file that was there before unchanged. Probes another change fixes are strict xfails:
they start to pass when that change is merged, and the marker must then go.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sar_studies.hostile_inputs import PROBES, Probe, ProbeResult, make_base, run_probes

CASES = [
    pytest.param(p, id=p.name, marks=[pytest.mark.xfail(strict=True, reason=f"fixed by {p.owner}")] if p.owner else [])
    for p in PROBES
]


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The results of the probes this session selected, run two at a time on copies of the tiny dataset."""
    selected = {item.callspec.params["probe"].name for item in request.session.items if hasattr(item, "callspec")
                and isinstance(item.callspec.params.get("probe"), Probe)}  # fmt: skip
    probes = [p for p in PROBES if p.name in selected]
    base = make_base(tmp_path_factory.mktemp("hostile") / "base", data=tiny_root)
    return {r.probe.name: r for r in run_probes(probes, base, tmp_path_factory.mktemp("probes"), jobs=2)}


def test_the_table_has_at_least_40_probes_with_unique_names() -> None:
    assert len(PROBES) >= 40
    assert len({p.name for p in PROBES}) == len(PROBES)


@pytest.mark.slow
@pytest.mark.parametrize("probe", CASES)
def test_hostile_input(probe: Probe, results: dict[str, ProbeResult]) -> None:
    result = results[probe.name]
    assert result.outcome != "data lost", result.detail
    assert result.outcome == ("clear error" if probe.expect == "refused" else "ran"), result.detail
