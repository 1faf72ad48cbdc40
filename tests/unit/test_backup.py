"""A backup archive is input like any other: damaged bytes are refused, never a traceback,
and nothing is written."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from heron.backup import BackupError, restore
from heron.config import load_config


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048), st.booleans())
def test_restore_refuses_arbitrary_bytes_and_writes_nothing(data: bytes, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = root / "backup.tar.gz"
        archive.write_bytes(gzip.compress(data) if compress else data)
        config = load_config(data_dir=root / "var")
        try:
            restore(config, archive, force=True, serving=False)
        except BackupError as exc:
            assert "\n" not in str(exc)
        assert not (root / "var").exists()
