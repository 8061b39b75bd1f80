"""Write docs/api.md, the API reference, from the signatures and docstrings of every public name.

    python docs/generate_api.py            # rewrite docs/api.md
    python docs/generate_api.py --check    # exit 1 if docs/api.md differs from the code (tests run this)

Public: what `hippograph` exports (`__all__`), the framework retrievers, the HTTP and MCP servers and
`draft_answer`. A class lists its constructor and the public methods and properties it defines itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import sys
from pathlib import Path

API_FILE = Path(__file__).resolve().parent / "api.md"
EXTRA = [
    ("hippograph.draft", "draft_answer"),
    ("hippograph.integrations.langchain", "HippographRetriever"),
    ("hippograph.integrations.llamaindex", "HippographRetriever"),
    ("hippograph.service", "create_app"),
    ("hippograph.mcp_server", "create_server"),
]


def public_names() -> list[tuple[str, str]]:
    hippograph = importlib.import_module("hippograph")
    return [("hippograph", name) for name in sorted(hippograph.__all__, key=str.lower)] + EXTRA


def render() -> str:
    lines = [
        "# hippograph API reference", "",
        "Generated from the code's signatures and docstrings by `python docs/generate_api.py`;",
        "`tests/test_api_reference.py` fails when this file and the code disagree.", "",
    ]
    for module_name, name in public_names():
        obj = getattr(importlib.import_module(module_name), name)
        lines += _entry(f"{module_name}.{name}", obj)
    return "\n".join(lines).rstrip() + "\n"


def _entry(qualified: str, obj: object) -> list[str]:
    if inspect.isclass(obj):
        lines = [f"## `{qualified}{_signature(obj)}`", "", _doc(obj), ""]
        for member_name, member in vars(obj).items():
            if member_name.startswith("_") or (_is_pydantic(obj) and member_name.startswith("model_")):
                continue  # private, or pydantic's own
            if isinstance(member, property):
                lines += [f"### `.{member_name}` (property)", "", _doc(member), ""]
            elif isinstance(member, (staticmethod, classmethod)) or inspect.isfunction(member):
                function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                lines += [f"### `.{member_name}{_signature(function)}`", "", _doc(function), ""]
        return lines
    return [f"## `{qualified}{_signature(obj)}`", "", _doc(obj), ""]


def _signature(obj: object) -> str:
    """The parameters as written in the code (annotations as their source text), without self."""
    if inspect.isclass(obj) and _is_pydantic(obj):
        fields = [(n, f) for n, f in obj.model_fields.items() if n in vars(obj).get("__annotations__", {})]
        return "(" + ", ".join(f"{n}: {_annotation(f.annotation)}" + _default(f.default) for n, f in fields) + ")"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    parts, keyword_only_marked = [], False
    for parameter in signature.parameters.values():
        if parameter.name in ("self", "cls"):
            continue
        text = parameter.name
        if parameter.kind is parameter.VAR_POSITIONAL:
            text, keyword_only_marked = f"*{text}", True
        elif parameter.kind is parameter.VAR_KEYWORD:
            text = f"**{text}"
        elif parameter.kind is parameter.KEYWORD_ONLY and not keyword_only_marked:
            parts.append("*")
            keyword_only_marked = True
        if parameter.annotation is not parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not parameter.empty:
            text += _default(parameter.default)
        parts.append(text)
    returns = signature.return_annotation
    arrow = f" -> {_annotation(returns)}" if returns is not signature.empty and not inspect.isclass(obj) else ""
    return f"({', '.join(parts)}){arrow}"


def _annotation(annotation: object) -> str:
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", repr(annotation).replace("typing.", ""))


def _default(value: object) -> str:
    if value is dataclasses.MISSING or type(value).__name__ == "PydanticUndefinedType":
        return ""
    if isinstance(value, dataclasses.Field) or type(value).__name__ == "_HAS_DEFAULT_FACTORY_CLASS":
        return " = <factory>"
    return f" = {value!r}"


def _is_pydantic(cls: type) -> bool:
    return hasattr(cls, "model_fields")


def _doc(obj: object) -> str:
    return inspect.getdoc(obj) or MISSING_DOC


MISSING_DOC = "(no docstring)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render()
    if args.check:
        if API_FILE.read_text() != text:
            print(f"{API_FILE} is out of date: run python docs/generate_api.py", file=sys.stderr)
            return 1
        return 0
    API_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
