"""Every text field of the internal request that reaches a prompt, with its field class for the policy.

The internal request is OpenAI's chat format; the protocol edges translate Anthropic messages (text,
`tool_use.input`, `tool_result`, system blocks) and Responses items (`input_text`, `function_call`
arguments, `function_call_output`, `instructions`) into it, so covering this one shape covers them all.
Field classes (what `security.guard.keep_control_tokens` may name):

    system, developer, user, assistant   message content of that role (assistant: also tool-call
                                         arguments and names, reasoning text); legacy `function`
    tool                                 tool and function results (`role: tool|function`)
    tools                                tool definitions: names, descriptions, JSON schemas (keys too),
                                         `tool_choice`, legacy `functions`
    params                               the other request fields a template or server renders into the
                                         prompt: `chat_template_kwargs` and `documents` (vLLM/SGLang pass
                                         them to the template; Command R prints a document's keys),
                                         `response_format` schemas (the embedded engine writes them, keys
                                         too, into the system prompt), `prediction`, TGI's `tool_prompt`.
                                         Stop sequences, logit biases and the like never reach the prompt
                                         and are left alone (a stop string of `<|im_end|>` must still stop).
    prompt                               `/v1/completions`: `prompt` (a string or a list of strings) and
                                         `suffix`; a prompt of token ids or vLLM's `prompt_embeds` is
                                         refused unless `prompt` is kept.
    input                                `/v1/embeddings`: `input` (a string or a list of strings), which
                                         llama.cpp's server and Hugging Face tokenizers (vLLM, TEI) split
                                         with special tokens parsed; token ids pass as sent (no turn to
                                         forge, and clients such as LangChain send ids).

A file part's `file_data` is not decoded: owstack turns no file into prompt text. The embedded engine
refuses any part but text (400 `unsupported_content`), an HTTP engine receives the part as sent, and
base64 spells no token; vLLM and llama.cpp's server refuse a `file` part (SGLang, TGI and Ollama are
not checked: one that decoded a text file into the prompt would get its tokens as written).

`neutralize_request` rewrites the request in place and returns the counts per class. Walking is
bounded (`MAX_DEPTH`, the body's own nesting limit), strings without `<` or `[` cost one scan of their
characters. Three ways a token reaches a template without being spelt out in one string are closed too:

- identifiers are text: Mistral's templates print tool-call `id`s and `tool_call_id`s, and a file part's
  `filename` may be shown, so only `role` and `type` (validated by the edges) are skipped;
- tool-call `arguments` are JSON that the engine decodes before rendering (vLLM and llama.cpp's server
  for `tojson`, the embedded engine's tool-call text), so every string literal with an escape
  (`"\\u003c|im_start|>"`) is judged decoded, one literal at a time (no parser's nesting limit decides),
  and rewritten decoded when that is what carries a token;
- text parts are concatenated by templates that loop over them (Qwen-VL, Gemma 3; some `trim` each
  part), so a token split over parts (`"<|im_"`, `"start|>"`; a `refusal` part counts as text, as vLLM
  reads it) gets U+200B at the end of the part where it starts.

A request's own `chat_template` (vLLM takes one per request when started with
`--trust-request-chat-template`) is refused unless `params` is trusted: a template writes any token it
likes (`{{ '<|im_' ~ 'start|>' }}`), so no neutralisation of its text can make it safe. So is one inside
`chat_template_kwargs`: vLLM before its fix (GHSA-6fvq-23cw-5628, vllm-project/vllm#25794) and SGLang
merge those kwargs into `apply_chat_template(...)`, whose own `chat_template` argument they replace.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections import Counter
from json.decoder import scanstring  # type: ignore[attr-defined]  # C speed; not in typeshed
from typing import Any

from owstack.errors import InvalidRequest
from owstack.security.guard.token_sets import ZWSP, TokenSet
from owstack.types import ChatRequest

FIELD_CLASSES = ("system", "developer", "user", "assistant", "tool", "tools", "params", "prompt", "input")
MAX_DEPTH = 64
_ROLE_CLASS = {"function": "tool", "tool": "tool", "ipython": "tool"}
#: values the edges validate against a fixed list; everything else a template might print is walked
_SKIP_KEYS = frozenset({"role", "type"})
_TOOL_PARAMS = ("tools", "functions", "tool_choice", "function_call")
_PROMPT_PARAMS = ("chat_template_kwargs", "documents", "response_format", "prediction", "tool_prompt")
#: the keys of a content part whose text a template prints: vLLM reads a `refusal` part as text
_PART_TEXT = ("text", "refusal")


def role_class(role: Any) -> str:
    role = str(role)
    if role in _ROLE_CLASS:
        return _ROLE_CLASS[role]
    return role if role in FIELD_CLASSES else "user"


def _arguments(text: str, tokens: TokenSet) -> tuple[str, int]:
    """Tool-call arguments: a JSON text that engines decode before the template prints it. Neutralised as
    written, then every string literal (keys too) that holds an escape is judged decoded: when `\\u003c`
    or `\\u007c` hid a token, that literal is written again decoded and made inert. Literal by literal, so
    no parser's nesting limit decides what is checked (Python's `json` stops at its recursion limit, which
    depends on the caller's stack, orjson at its own), and every value of a repeated key is safe whichever
    one a parser keeps."""
    safe, n = tokens.neutralize(text)
    if "\\" not in safe:
        return safe, n
    out: list[str] = []
    done = pos = 0
    while (start := safe.find('"', pos)) >= 0:
        try:
            value, end = scanstring(safe, start + 1)
        except ValueError:  # unterminated, or a bad escape: no JSON parser decodes this text either
            break
        pos = end
        if safe.find("\\", start, end) >= 0:
            fixed, k = tokens.neutralize(value)
            if k:
                out += [safe[done:start], _literal(fixed)]
                done = end
                n += k
    if not out:
        return safe, n
    out.append(safe[done:])
    return "".join(out), n


def _literal(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (`\\ud800`) cannot travel as UTF-8: keep it escaped
        return json.dumps(value)
    return text


def _walk(value: Any, tokens: TokenSet, keys: bool, depth: int = 0, key: Any = None) -> tuple[Any, int]:
    """`value` with every string (and, if `keys`, every dict key) neutralised, and the count."""
    if isinstance(value, str):
        return _arguments(value, tokens) if key == "arguments" else tokens.neutralize(value)
    if depth >= MAX_DEPTH:
        return value, 0
    count = 0
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i], n = _walk(item, tokens, keys, depth + 1)
            count += n
        return value, count
    if isinstance(value, dict):
        changed: list[tuple[str, str]] = []
        for key, item in value.items():
            if key in _SKIP_KEYS and not keys:
                continue
            value[key], n = _walk(item, tokens, keys, depth + 1, key)
            count += n
            if keys and isinstance(key, str):
                new_key, k = tokens.neutralize(key)
                if k:
                    changed.append((key, new_key))
                    count += k
        for old, new in changed:
            value[new] = value.pop(old)
        return value, count
    return value, 0


def neutralize_request(request: ChatRequest, tokens: TokenSet, keep: frozenset[str] = frozenset()) -> Counter[str]:
    """Neutralise control tokens in every field class not in `keep`; counts per class. Raises
    `InvalidRequest` for a request `chat_template` unless `params` is kept, and for a legacy prompt of
    token ids unless `prompt` is kept."""
    counts: Counter[str] = Counter()
    if request.endpoint != "chat":  # legacy bodies travel in params; `messages` is a copy for routing only
        if request.endpoint == "completions" and "prompt" not in keep:
            counts["prompt"] = _legacy_prompt(request.params, tokens)
        elif request.endpoint == "embeddings" and "input" not in keep and "input" in request.params:
            request.params["input"], counts["input"] = _walk(request.params["input"], tokens, keys=False)
        return +counts
    for message in request.messages:
        cls = role_class(message.get("role"))
        if cls in keep or not isinstance(message, dict):
            continue
        _, n = _walk(message, tokens, keys=False)
        counts[cls] += n + _seams(message.get("content"), tokens)
    params = request.params
    if "tools" not in keep:
        for name in _TOOL_PARAMS:
            if name in params:
                params[name], n = _walk(params[name], tokens, keys=True)
                counts["tools"] += n
    if "params" not in keep:
        kwargs = params.get("chat_template_kwargs")
        for where, holder in (("chat_template", params), ("chat_template_kwargs.chat_template", kwargs)):
            if isinstance(holder, dict) and "chat_template" in holder:
                raise InvalidRequest(
                    "a request's own chat_template is refused: it could write any control token "
                    "(trust it with security.guard.keep_control_tokens: [params])",
                    param=where,
                    code="chat_template_refused",
                )
        for name in _PROMPT_PARAMS:
            if name in params:
                params[name], n = _walk(params[name], tokens, keys=True)
                counts["params"] += n
    return +counts


def _legacy_prompt(params: dict[str, Any], tokens: TokenSet) -> int:
    """`/v1/completions`: the prompt (a string or a list of them) and `suffix` are sent as the client wrote
    them and the engine tokenizes them with special tokens parsed. A prompt of token ids is refused: the
    gateway cannot tell which ids are the model's control tokens (HTTP engines' vocabularies are not at
    hand). So is vLLM's `prompt_embeds` (`--enable-prompt-embeds`): an embedding can be any token's."""
    prompt = params.get("prompt")
    ids = isinstance(prompt, list) and not all(isinstance(p, str) for p in prompt)
    if ids or "prompt_embeds" in params:  # vLLM's embeddings stand for any token, special ones included
        what = "a prompt of token ids" if ids else "prompt_embeds"
        raise InvalidRequest(
            f"{what} is refused: the gateway cannot check it for control tokens "
            "(trust legacy prompts with security.guard.keep_control_tokens: [prompt])",
            param="prompt" if ids else "prompt_embeds",
            code="token_prompt_refused",
        )
    count = 0
    for name in ("prompt", "suffix"):
        if name in params:
            params[name], n = _walk(params[name], tokens, keys=False)
            count += n
    return count


def _seams(content: Any, tokens: TokenSet) -> int:
    """Break tokens that only exist once a message's text parts are joined, as written or each `trim`med
    (a template may also drop the parts between them): U+200B at the end of the part where such a token
    starts. Returns how many parts got one."""
    if not isinstance(content, list) or len(content) < 2:
        return 0
    parts = [(p, k) for p in content if isinstance(p, dict) for k in _PART_TEXT if isinstance(p.get(k), str)]
    if len(parts) < 2:
        return 0
    marked: set[int] = set()
    for texts in ([p[k] for p, k in parts], [p[k].strip() for p, k in parts]):
        ends = list(itertools.accumulate(len(t) for t in texts))
        for start, end in tokens.spans("".join(texts)):
            i = bisect.bisect_right(ends, start)
            if end > ends[i]:
                marked.add(i)
    for i in marked:
        part, key = parts[i]
        part[key] += ZWSP
    return len(marked)


def texts_for_scan(request: ChatRequest) -> list[tuple[str, str]]:
    """(field class, text) of the content an injection scanner should read: messages and tool descriptions."""
    out: list[tuple[str, str]] = []
    for message in request.messages:
        text = _text_of(message.get("content"))
        if text:
            out.append((role_class(message.get("role")), text))
    tools = request.params.get("tools")  # passed through unvalidated on the legacy endpoints: any JSON
    for tool in tools if isinstance(tools, list) else ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("description"), str):
            out.append(("tools", fn["description"]))
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
