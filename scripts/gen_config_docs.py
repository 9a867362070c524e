"""Write docs/configuration.md from the configuration models (run after changing jifang/config.py)."""

from __future__ import annotations

import enum
import os
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jifang.config import MODELS_DIR_ENV, Settings  # noqa: E402


def type_name(annotation: Any) -> str:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and getattr(annotation, "__origin__", None) is list:
        return f"list of {type_name(args[0])}"
    if args:
        return " or ".join(type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = model_of(arg)
        if found is not None:
            return found
    return None


def show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path | str):
        return str(value)
    return repr(value)


def rows(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        default = "required" if field.is_required() else show(field.get_default(call_default_factory=True))
        nested = model_of(field.annotation)
        if nested is not None and nested.__name__ != "SecretRef":
            suffix = "[]." if "list" in type_name(field.annotation) else "."
            out.extend(rows(nested, path + suffix))
            continue
        if len(default) > 40:
            default = "see example"
        description = (field.description or "").replace("|", "\\|")
        out.append(f"| `{path}` | {type_name(field.annotation)} | `{default}` | {description} |")
    return out


def render() -> str:
    # Defaults that read the environment (recognition.models_dir reads $JIFANG_MODELS_DIR) are documented as they
    # are without it, so the page does not depend on who generates it.
    saved = os.environ.pop(MODELS_DIR_ENV, None)
    try:
        table = rows(Settings, "")
    finally:
        if saved is not None:
            os.environ[MODELS_DIR_ENV] = saved
    lines = [
        "# Configuration reference",
        "",
        "Generated from `jifang/config.py` by `scripts/gen_config_docs.py`; the example is `configs/jifang.yaml`.",
        "Every scalar can be overridden with `JIFANG_<SECTION>__<KEY>` (e.g. `JIFANG_RECORDER__SEGMENT_SECONDS=5`).",
        "Secrets (`password`, `access_key`, `secret_key`) are references: `{env: VAR}` or `{file: PATH}`.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
        *table,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    (REPO / "docs" / "configuration.md").write_text(render(), encoding="utf-8")
