"""docs/settings.md is generated from the CLI; this fails when someone forgot to regenerate."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_settings_doc", ROOT / "scripts" / "gen_settings_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_doc_is_up_to_date() -> None:
    generator = load_generator()
    current = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert current == generator.render(), "run: python scripts/gen_settings_doc.py"


def test_settings_doc_mentions_every_flag() -> None:
    from spdyasgi.main import main

    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    for param in main.params:
        for flag in getattr(param, "opts", []):
            if flag.startswith("--") and flag != "--version":
                assert f"`{flag}`" in text, flag


def test_readme_quick_start_commands() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if line.strip()
        and not line.startswith(("#", "`", ">"))
        and line.startswith(("pip", "bash"))
    ]
    assert lines[0] == "pip install '.[standard]' && spdyasgi examples.hello:app"
    assert lines[1] == "bash scripts/test"
