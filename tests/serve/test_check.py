"""``heron check`` beside the heron it checks: ports that heron serves are not findings."""

from __future__ import annotations

from pathlib import Path

from tests.support.heron import running_heron


def test_check_counts_the_ports_a_running_heron_holds_as_its_own(tmp_path: Path) -> None:
    with running_heron(tmp_path, {}) as heron:
        checked = heron.cli("check")
    assert checked.returncode == 0, checked.stdout
    assert "web.listen tcp 127.0.0.1:" in checked.stdout
    assert ": heron serves it" in checked.stdout
    assert "FAIL" not in checked.stdout
