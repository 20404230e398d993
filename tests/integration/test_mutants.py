"""The money tests fail when money is wrong: each known-wrong settlement of
``tests/support/mutants.py`` is applied to the real code in a subprocess, and the tests that
must notice it — the API money tests concerned and the ledger state machine — are run against
it (SQLite only, to stay quick): exactly those must fail. Without a mutant the same money tests
pass (the state machine's passing run is the suite's own)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MONEY = "tests/api/test_money.py::"
MACHINE = "tests/integration/test_ledger_state_machine.py::test_ledger_state_machine[sqlite]"
CATCHERS = {
    "no_fixed_fee": {
        MONEY + "test_success_charges_the_fee_plus_the_engine_seconds[sqlite]",
        MONEY + "test_a_run_longer_than_its_estimate_is_charged_the_shortfall[sqlite]",
        MACHINE,
    },
    "no_external_shortfall": {
        MONEY + "test_external_cost_is_settled_by_the_usage_ark_reports"
        "[sqlite-over-quote-with-consent]",
        MACHINE,
    },
}
"""Which tests each mutant must fail (no fewer, and no others)."""
CONTROL = {node for nodes in CATCHERS.values() for node in nodes if node.startswith(MONEY)}


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str | None, Outcome]]:
    """Each mutant's run of its catchers, and one run of them all without a mutant, started
    at once (they are independent processes) and collected as the tests ask."""
    plans: dict[str | None, set[str]] = {None: CONTROL}
    plans.update(dict(CATCHERS.items()))
    started = {mutant: _start(mutant, selection) for mutant, selection in plans.items()}
    collected: dict[str | None, Outcome] = {}
    try:
        for mutant, process in started.items():
            stdout, _ = process.communicate(timeout=600)
            collected[mutant] = Outcome(process.returncode, stdout)
        yield collected
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def _start(mutant: str | None, selection: set[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "WFRUN_"))}
    if mutant is not None:
        env["WFRUN_MUTANT"] = mutant
    plugins = ["-p", "tests.support.mutants", "-p", "no:cacheprovider"]
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *plugins, "-rf", *sorted(selection)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("mutant", sorted(CATCHERS))
def test_the_money_tests_catch_the_mutant(outcomes, mutant: str) -> None:
    outcome = outcomes[mutant]
    assert f"wfrun mutant: {mutant} (" in outcome.output, outcome.output
    assert outcome.returncode == 1, outcome.output  # tests failed, not collection or usage
    failed = {
        line.removeprefix("FAILED ").split(" - ", 1)[0]
        for line in outcome.output.splitlines()
        if line.startswith("FAILED ")
    }
    assert failed == CATCHERS[mutant], outcome.output


@pytest.mark.slow
def test_the_same_money_tests_pass_without_a_mutant(outcomes) -> None:
    outcome = outcomes[None]
    assert "wfrun mutant: none" in outcome.output, outcome.output
    assert outcome.returncode == 0, outcome.output
    assert f"{len(CONTROL)} passed" in outcome.output, outcome.output
