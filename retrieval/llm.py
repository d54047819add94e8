"""A small client for any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp server).

No retries and a hard timeout: a slow or failing LLM must hand back quickly so the caller can fall back
to the deterministic path. Pure module: no Django import.
"""
from __future__ import annotations

import json
import re

import openai

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)  # models often wrap the object in prose or a ```json fence


class LLMError(RuntimeError):
    """The LLM could not give a usable reply (connection, HTTP error, empty content)."""


class LLMTimeoutError(LLMError):
    """The LLM did not answer within the client's timeout."""


class LLMClient:
    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", timeout: float = 20.0):
        self.model = model
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The text of the model's reply to a chat; raises ``LLMTimeoutError`` or ``LLMError``."""
        try:
            response = self._client.chat.completions.create(model=self.model, messages=messages, temperature=0)
        except openai.APITimeoutError as error:
            raise LLMTimeoutError(f"LLM {self.model} did not answer in time") from error
        except openai.OpenAIError as error:
            raise LLMError(f"LLM {self.model} failed: {error}") from error
        content = response.choices[0].message.content if response.choices else None
        if not content or not content.strip():
            raise LLMError(f"LLM {self.model} returned an empty reply")
        return content


def reply_object(reply: str | None, error: type[Exception]):
    """The JSON value of the outermost ``{...}`` of an LLM reply; ``error`` with the reason when there is none or it
    does not parse (the caller checks it is the object it asked for)."""
    found = _JSON_OBJECT.search(reply or "")
    if not found:
        raise error("no JSON object in the reply")
    try:
        return json.loads(found.group(0))
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON ({exc.msg})") from exc
