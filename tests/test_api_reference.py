"""docs/api.md is what docs/generate_api.py makes of the code now: a signature or docstring that changed
without the reference fails here. Every public name and method has a docstring."""

from __future__ import annotations

import importlib.util
from pathlib import Path

GENERATOR = Path(__file__).resolve().parent.parent / "docs" / "generate_api.py"


def generator():
    spec = importlib.util.spec_from_file_location("generate_api", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_matches_the_code():
    api = generator()
    assert api.API_FILE.read_text() == api.render(), "docs/api.md is out of date: run python docs/generate_api.py"


def test_every_public_name_is_documented():
    api = generator()
    text = api.render()
    assert api.MISSING_DOC not in text
    for module_name, name in api.public_names():
        assert f"## `{module_name}.{name}" in text
