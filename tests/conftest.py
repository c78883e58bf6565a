"""Test tiers and shared fixtures.

Every test belongs to exactly one tier, taken from its directory: ``tests/unit`` (no services),
``tests/integration`` (real local services) and ``tests/e2e`` (real VMs). ``make test-<tier>``
selects one with ``-m``. Services are started by session fixtures in ``tests/fixtures/``; a
service that cannot start is an error that says how to fix it, never a skip.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.controlplane",
    "tests.fixtures.services",
    "tests.fixtures.vm",
    "tests.fixtures.pipeline",
]

TIERS = ("unit", "integration", "e2e")
#: Seconds an e2e test may take, fixture setup included (the default is pyproject's 600).
E2E_TIMEOUT = 1500
_tier_seconds: dict[str, float] = defaultdict(float)
_tier_counts: dict[str, int] = defaultdict(int)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tier named by its directory."""
    root = Path(__file__).parent
    for item in items:
        parts = Path(item.fspath).resolve().relative_to(root).parts
        tier = parts[0] if parts and parts[0] in TIERS else None
        if tier is None:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))
        if tier == "e2e" and item.get_closest_marker("timeout") is None:
            # The first e2e test pays the shared VM's cold start (minutes under TCG on a
            # loaded 2-core machine) inside its fixture setup, which pytest-timeout counts.
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
        item.user_properties.append(("tier", tier))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """Time each test (setup included, so fixture start-up counts against its tier)."""
    start = time.monotonic()
    outcome = yield
    tier = dict(item.user_properties).get("tier", "?")
    _tier_seconds[str(tier)] += time.monotonic() - start
    _tier_counts[str(tier)] += 1
    return outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the time spent per tier, so CI's budget is visible in every run."""
    if not _tier_counts:
        return
    terminalreporter.section("time per tier")
    for tier in TIERS:
        if _tier_counts[tier]:
            terminalreporter.write_line(
                f"{tier:12} {_tier_counts[tier]:4d} tests {_tier_seconds[tier]:8.1f} s"
            )
