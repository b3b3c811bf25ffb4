"""The OpenAI-compatible engine: a stage's requests go to one or more running servers (`vllm serve`, SGLang, ...)
over the chat completions API, concurrently, spread over the replicas by load.

The client is `httpx` (a synchronous `Client` shared by a thread pool): the servers' own extra request fields
(vLLM's `structured_outputs`, `return_token_ids`, `chat_template_kwargs`) are plain JSON keys, which the `openai`
SDK would only pass through `extra_body`, and a thread pool needs no event loop (callers may already run one).

What maps to what (one chat request per harness request, `n` samples in it):
    temperature, top_p, seed, stop, max_tokens, n   -> the OpenAI fields of the same name
    top_k, min_p (when set)                         -> the fields of the same name (vLLM and SGLang accept them)
    logprobs                                        -> logprobs: true, top_logprobs: 0
    template kwargs                                 -> chat_template_kwargs
    choice / regex / json constraint               -> vLLM: structured_outputs {choice | regex | json};
                                                       other servers: json only, as response_format json_schema
    token ids                                       -> vLLM: return_token_ids (choices[i].token_ids and the
                                                       response's prompt_token_ids); other servers report none
A server that is not vLLM (its /v1/models entry is not `owned_by: vllm`) cannot do choice or regex
constraints: a request with one raises UnsupportedConstraintError before anything is sent.

The server renders the chat template itself, so prompts are the server's tokens (reported back as
`Completion.prompt_token_ids`). `apply_chat_template` tokenizes locally when a tokenizer (model directory) is
given, else through vLLM's `/tokenize` route.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harnessc.engines._common import (
    SPECIAL_TOKEN_POLICIES,
    UnsupportedConstraintError,
    chat_template_ids,
    distinct_samples,
    error_completions,
    message_dicts,
    validate_request,
)
from harnessc.engines.base import ChatMessage, ChatRequest, Completion, OutputConstraint
from harnessc.engines.replicas import NoReplicaError, Replica, ReplicaPool

__all__ = ["OpenAIEngine", "ServerUnavailableError"]

# Answers worth trying again, elsewhere or later: the server is overloaded or broken, not the request.
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CONNECT_TIMEOUT_S = 10.0


class ServerUnavailableError(ConnectionError):
    """A server cannot be used: unreachable, not OpenAI-compatible, or serving another model (the message
    names the URL)."""


class OpenAIEngine:
    """Chat generation on OpenAI-compatible servers (one or more replicas of the same model).

    Args:
        base_urls: the servers' base URLs, e.g. "http://127.0.0.1:8000" (a trailing "/v1" is accepted).
        model: the served model name sent with each request; None: the one model every replica serves
            (from /v1/models).
        api_key: sent as a bearer token when given.
        max_in_flight: requests outstanding at once per replica (the rest of a wave waits its turn).
        timeout_s: seconds one request may take (a long generation on a busy server needs minutes).
        retries: further attempts of a request after a timeout, a connection error or a 408/429/5xx answer,
            with exponential backoff from `backoff_s` (a replica whose connection failed is marked down and
            the request goes to another one). Other 4xx answers fail that request alone.
        backoff_s: the first retry's delay in seconds; it doubles each attempt (plus up to 50% jitter).
        revive_after_s: seconds a replica marked down rests before it is tried again.
        tokenizer: a model directory or hub id whose tokenizer `apply_chat_template` uses; None: the server's
            /tokenize route (vLLM).
        special_tokens_in_data: for `apply_chat_template` with a local tokenizer (see `chat_template_ids`).
            The server renders prompts itself, and vLLM turns special-token text inside a message into special
            tokens: for such prompts `Completion.prompt_token_ids` (what the server consumed) differ from
            `apply_chat_template`'s, which the trainer's prompt check reports.

    Raises:
        ServerUnavailableError: a replica does not answer /v1/models, or the replicas serve different models.
        ValueError: no URL, or a bad number.
    """

    name = "openai"

    def __init__(
        self,
        base_urls: Sequence[str] | str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        max_in_flight: int = 32,
        timeout_s: float = 600.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        revive_after_s: float = 30.0,
        tokenizer: str | Path | None = None,
        special_tokens_in_data: str = "escape",
    ) -> None:
        import httpx

        if special_tokens_in_data not in SPECIAL_TOKEN_POLICIES:
            raise ValueError(
                f"special_tokens_in_data must be one of {SPECIAL_TOKEN_POLICIES}, got {special_tokens_in_data!r}"
            )
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        self.base_urls: tuple[str, ...] = tuple(_normalize_url(url) for url in urls)
        if retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError("retries and backoff_s must be >= 0 and timeout_s > 0")
        self.pool = ReplicaPool(self.base_urls, max_in_flight, revive_after_s)
        self.retries, self.backoff_s = retries, backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        total = max_in_flight * len(self.base_urls)
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=_CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=total, max_keepalive_connections=total),
        )
        try:
            cards = [self._model_cards(url) for url in self.base_urls]
            self.model: str = model or _served_model(self.base_urls, cards)
            for url, served in zip(self.base_urls, cards, strict=True):
                if self.model not in served:
                    raise ServerUnavailableError(f"{url} does not serve {self.model!r} (it serves {', '.join(served)})")
        except ServerUnavailableError:
            self._client.close()
            raise
        self._threads = ThreadPoolExecutor(max_workers=total, thread_name_prefix="openai-engine")
        # vLLM's extra request fields (structured outputs, token ids) only where every replica is vLLM.
        self.is_vllm = all(served[self.model].get("owned_by") == "vllm" for served in cards)
        # The context limit (prompt plus completion) the replicas report (vLLM does); None when one does not.
        lengths = [served[self.model].get("max_model_len") for served in cards]
        known = [int(length) for length in lengths if isinstance(length, int)]
        self.max_model_len: int | None = min(known) if len(known) == len(lengths) else None
        self.special_tokens_in_data = special_tokens_in_data
        self.tokenizer: Any = None
        if tokenizer is not None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))

    # ---- the Engine interface -------------------------------------------------------------------------------

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        """Per request, `request.sampling.n` completions, the wave sent concurrently over the replicas.

        A request that fails (the server rejects it, or it still fails after `retries`) gets error
        completions; other requests are unaffected.

        Raises:
            UnsupportedConstraintError: a request has a constraint these servers cannot enforce (nothing is sent).
        """
        for request in requests:
            self._check_constraint(request.constraint)
        futures = [self._threads.submit(self._one, request) for request in requests]
        return [future.result() for future in futures]

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        """Token ids of `messages` with the generation prompt appended: by the local tokenizer when one was
        given, else by the first live replica's /tokenize route (vLLM).

        Raises:
            ServerUnavailableError: no local tokenizer and the server cannot tokenize.
        """
        if self.tokenizer is not None:
            return chat_template_ids(
                self.tokenizer, messages, template_kwargs, special_tokens=self.special_tokens_in_data
            )
        body: dict[str, Any] = {
            "model": self.model,
            "messages": message_dicts(messages),
            "add_generation_prompt": True,
            "add_special_tokens": False,
        }
        if template_kwargs:
            body["chat_template_kwargs"] = dict(template_kwargs)
        replica = self.pool.acquire()
        try:
            response = self._client.post(f"{replica.url}/tokenize", json=body)
        finally:
            self.pool.release(replica)
        if response.status_code != 200:
            raise ServerUnavailableError(
                f"{replica.url}/tokenize answered {response.status_code}: {response.text[:300]}; "
                "pass the model directory as the tokenizer (--model DIR) for servers without /tokenize"
            )
        return [int(token) for token in response.json()["tokens"]]

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Not possible through the chat API: the trainer pushes weights to the servers itself
        (ophsd/server_weights.py, using `base_urls`).

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            "the openai engine cannot load weights through the chat API; the trainer pushes them to the servers "
            f"({', '.join(self.base_urls)}) with ophsd.server_weights"
        )

    def close(self) -> None:
        """Stop the worker threads and close the connections."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def requests_sent(self) -> dict[str, int]:
        """Requests sent to each replica so far (retries included), by base URL."""
        return {replica.url: replica.sent for replica in self.pool.replicas}

    # ---- one request ------------------------------------------------------------------------------------------

    def _check_constraint(self, constraint: OutputConstraint | None) -> None:
        if constraint is None or self.is_vllm or constraint.kind == "json":
            return
        raise UnsupportedConstraintError(
            f"{constraint.kind} constraints need vLLM's structured_outputs request field, and the server at "
            f"{self.base_urls[0]} is not vLLM (its /v1/models does not say owned_by: vllm); OpenAI-compatible "
            "servers in general enforce only JSON schemas"
        )

    def _one(self, request: ChatRequest) -> list[Completion]:
        """The completions of one request: sent, retried on another replica or later, parsed."""
        problem = validate_request(request)
        if problem:
            return error_completions(request, problem)
        body = self._body(request)
        failures: list[str] = []
        last: _Failure | None = None
        for attempt in range(self.retries + 1):
            if last is not None:
                self._back_off(attempt, last)
            try:
                replica = self.pool.acquire(avoid=last.replica if last else None)
            except NoReplicaError as error:
                return error_completions(request, str(error))
            outcome = self._send(replica, body)
            if not isinstance(outcome, _Failure):
                try:
                    return _completions(request, outcome)
                except (KeyError, TypeError, ValueError) as error:  # not a chat completion: this request fails
                    return error_completions(request, f"{replica.url} answered an unreadable completion: {error!r}")
            if not outcome.retry:
                return error_completions(request, outcome.why)
            failures.append(outcome.why)
            last = outcome
        return error_completions(request, f"failed {len(failures)} times: " + "; ".join(failures))

    def _send(self, replica: Replica, body: dict[str, Any]) -> dict[str, Any] | _Failure:
        """The server's JSON answer, or why the request failed there."""
        import httpx

        url = f"{replica.url}/v1/chat/completions"
        failed = True
        try:
            response = self._client.post(url, json=body)
            answer = response.json() if response.status_code == 200 else None
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # nobody listens there: the server is down
            self.pool.mark_down(replica, f"{type(error).__name__}: {error}")
            return _Failure(replica, True, f"{url}: {type(error).__name__}: {error}", lost_connection=True)
        except httpx.TimeoutException as error:
            return _Failure(replica, True, f"{url}: timed out ({type(error).__name__})")
        except httpx.TransportError as error:  # reset, or closed mid-answer (the server died, or a stale socket)
            return _Failure(replica, True, f"{url}: {type(error).__name__}: {error}", lost_connection=True)
        except ValueError as error:  # a 200 answer that is not JSON
            return _Failure(replica, False, f"{url} answered something that is not JSON: {error}")
        else:
            failed = response.status_code != 200
            self.pool.mark_up(replica)
        finally:
            self.pool.release(replica, failed=failed)
        if isinstance(answer, dict):
            return answer
        if response.status_code == 200:
            return _Failure(replica, False, f"{url} answered JSON that is not an object")
        detail = f"{url} answered {response.status_code}: {_error_message(response)}"
        return _Failure(replica, response.status_code in _RETRY_STATUS, detail)

    def _back_off(self, attempt: int, failure: _Failure) -> None:
        """Sleep before retry `attempt` (1, 2, ...), except after a lost connection while another replica is live:
        that failover needs no wait. Overloaded or slow servers (5xx, timeouts) get exponential backoff."""
        others = self.pool.live_count() - int(failure.replica.down_until <= time.monotonic())
        if failure.lost_connection and others > 0:
            return
        delay = self.backoff_s * 2 ** (attempt - 1)
        time.sleep(delay * (1 + random.random() / 2))  # noqa: S311 - jitter, not security

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        sampling = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": message_dicts(request.messages),
            "n": distinct_samples(sampling),
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            # vLLM refuses max_tokens over the context outright, and clamps a smaller one to what the prompt
            # leaves: capped, a stage's budget stops at the context limit, as with the other engines.
            "max_tokens": min(sampling.max_tokens, self.max_model_len or sampling.max_tokens),
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k
        if sampling.min_p > 0:
            body["min_p"] = sampling.min_p
        if sampling.logprobs:
            body["logprobs"], body["top_logprobs"] = True, 0
        if request.template_kwargs:
            body["chat_template_kwargs"] = dict(request.template_kwargs)
        if self.is_vllm:
            body["return_token_ids"] = True
        constraint = request.constraint
        if constraint is not None and self.is_vllm:
            body["structured_outputs"] = _structured_outputs(constraint)
        elif constraint is not None:  # json (the others were refused in chat)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": _json(constraint.pattern), "strict": True},
            }
        return body

    def _model_cards(self, url: str) -> dict[str, dict[str, Any]]:
        """The models a replica serves, by id (its /v1/models entries)."""
        import httpx

        try:
            response = self._client.get(f"{url}/v1/models", timeout=_CONNECT_TIMEOUT_S)
            response.raise_for_status()
            return {str(card["id"]): card for card in response.json()["data"]}
        except httpx.HTTPError as error:
            raise ServerUnavailableError(
                f"the server at {url} is not reachable ({type(error).__name__}: {error}); start it first, e.g. "
                f"python -m vllm.entrypoints.openai.api_server --model DIR --host 127.0.0.1 --port PORT"
            ) from None
        except (ValueError, KeyError, TypeError) as error:
            raise ServerUnavailableError(
                f"{url}/v1/models did not answer with an OpenAI model list ({error})"
            ) from None


@dataclass(frozen=True, slots=True)
class _Failure:
    """A request that failed on `replica`: whether to try again, why, and whether the connection was lost."""

    replica: Replica
    retry: bool
    why: str
    lost_connection: bool = False


def _normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"a base URL starts with http:// or https://, got {url!r}")
    return url.removesuffix("/v1")


def _served_model(urls: Sequence[str], cards: Sequence[Mapping[str, Any]]) -> str:
    """The one model all replicas serve, when it is unambiguous."""
    common = set(cards[0]).intersection(*cards[1:])
    if len(common) == 1:
        return common.pop()
    served = "; ".join(f"{url}: {', '.join(card) or 'nothing'}" for url, card in zip(urls, cards, strict=True))
    raise ServerUnavailableError(f"cannot tell which model to use (the replicas serve {served}); name it")


def _structured_outputs(constraint: OutputConstraint) -> dict[str, Any]:
    if constraint.kind == "choice":
        return {"choice": list(constraint.choices)}
    if constraint.kind == "regex":
        return {"regex": constraint.pattern}
    return {"json": _json(constraint.pattern)}


def _json(schema: str) -> Any:
    import json

    return json.loads(schema)


def _error_message(response: Any) -> str:
    """The server's own error message (OpenAI's {"error": {"message"}} or vLLM's {"message"}), else the text."""
    try:
        payload = response.json()
    except ValueError:
        return str(response.text[:500])
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if payload.get("message"):
            return str(payload["message"])
    return str(response.text[:500])


def _completions(request: ChatRequest, answer: Mapping[str, Any]) -> list[Completion]:
    """Our completions from a chat completion response (`n` of them; greedy ones decoded once and copied)."""
    prompt_ids = answer.get("prompt_token_ids")
    prompt_token_ids = tuple(int(token) for token in prompt_ids) if prompt_ids is not None else None
    usage = answer.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or len(prompt_token_ids or ()))
    choices = sorted(answer.get("choices") or (), key=lambda choice: int(choice.get("index", 0)))
    if not choices:
        return error_completions(request, "the server answered without choices", prompt_tokens)
    completions = [
        _completion(choice, request.sampling.logprobs, prompt_tokens, prompt_token_ids) for choice in choices
    ]
    return (completions * request.sampling.n)[: request.sampling.n]


def _completion(
    choice: Mapping[str, Any], want_logprobs: bool, prompt_tokens: int, prompt_ids: tuple[int, ...] | None
) -> Completion:
    text = (choice.get("message") or {}).get("content") or ""
    token_ids = tuple(int(token) for token in choice.get("token_ids") or ())
    logprobs = None
    content = (choice.get("logprobs") or {}).get("content") if want_logprobs else None
    if content is not None:
        logprobs = tuple(float(step["logprob"]) for step in content)
    reason = choice.get("finish_reason")
    if reason in ("stop", "length"):
        return Completion(text, token_ids, reason, prompt_tokens, logprobs, None, prompt_ids)
    return Completion(
        text, token_ids, "error", prompt_tokens, logprobs, f"the server finished with reason {reason!r}", prompt_ids
    )
