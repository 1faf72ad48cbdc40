"""Every configuration key is read by some code, or refused until the code exists.

An accepted key that nothing reads is a promise heron does not keep (``mux.listen`` and
``redis.url`` once were). Field names are matched against the attribute names the code
reads (``settings.flood_rate``). A key for a feature not built yet has no place in the
configuration: it would be a promise too.
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from heron.config import Config
from tests.support.config import render_toml
from tests.support.heron import heron_cli

SOURCE = Path(__file__).parents[2] / "src" / "heron"


def _models(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models(argument)


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> Iterator[str]:
    """Every key of the configuration, dotted (``sip.routes.user``)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = list(_models(field.annotation))
        if nested:
            for inner in nested:
                yield from config_keys(inner, f"{key}.")
        else:
            yield key


def attributes_read() -> set[str]:
    """Attribute names the code reads (``x.name``); config.py's own derived values, such
    as ``Config.certificate_path`` from ``tls.certificate``, count."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def test_the_walk_finds_nested_sections_and_tables() -> None:
    keys = set(config_keys())
    assert {"domain", "sip.flood_rate", "sip.routes.user", "limits.idle_timeout"} <= keys


def test_every_config_key_has_a_reader() -> None:
    read = attributes_read()
    unread = [key for key in config_keys() if key.rpartition(".")[2] not in read]
    assert not unread, f"accepted but never read: {unread}"


@pytest.mark.parametrize(
    ("section", "value", "named"),
    [
        ({"redis": {"url": "http://127.0.0.1:6379"}}, "redis.url", "not a redis://"),
        ({"sip": {"workers": 2}}, "sip.workers", "needs redis.url"),
        (
            {"sip": {"workers": 2}, "redis": {"url": "redis://127.0.0.1:6379/0"}},
            "sip.workers",
            "media.enabled = false",
        ),
    ],
)
def test_a_bad_shared_state_setting_is_refused_with_one_line_naming_it(
    section: dict[str, dict[str, object]], value: str, named: str, tmp_path: Path
) -> None:
    config = tmp_path / "heron.toml"
    config.write_text(render_toml({"data_dir": str(tmp_path / "var"), **section}))
    checked = heron_cli(config, "check")
    assert checked.returncode == 2
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1 and value in lines[0] and named in lines[0], lines
