"""The OpenAI-compatible chat backend (:mod:`llm_policy.backends` has the others and
``make_backend``): any ``/chat/completions`` server over plain HTTP (httpx) —
Hugging Face's router, vLLM, llama.cpp's server, Ollama, OpenAI. Retries 429/5xx and
network errors with exponential back-off (honouring ``Retry-After``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from llm_policy.errors import BackendError

Message = Mapping[str, str]
"""One chat message: ``{"role": ..., "content": ...}``."""


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
