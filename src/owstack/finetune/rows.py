"""One training row, checked and normalised to TRL's conversational formats.

Accepted shapes (one JSON object per JSONL line, or one Parquet row):

    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}
    {"prompt": "..." | [messages], "completion": "..." | [assistant message]}
    {"prompt": "..." | [messages], "chosen": "..." | [...], "rejected": "..." | [...]}   (DPO)

Other keys (ids, metadata) are ignored. A chat row becomes prompt (every message before an assistant
turn) + completion (that turn): the loss is on the assistant's answer only, which is what TRL's
`completion_only_loss` does with prompt/completion rows. `where` ("train.jsonl:17") prefixes each error.
"""

from __future__ import annotations

from typing import Any, Literal

from owstack.finetune.errors import DataError

ROLES = ("system", "user", "assistant", "tool")
Kind = Literal["sft", "dpo"]


def _messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: `{field}` must be a string or a non-empty list of messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise DataError(f"{where}: `{field}[{i}]` must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise DataError(f"{where}: `{field}[{i}].role` must be one of {', '.join(ROLES)} (got {role!r})")
        if not isinstance(content, str):
            raise DataError(f"{where}: `{field}[{i}].content` must be a string (got {type(content).__name__})")
        out.append({"role": role, "content": content})
    return out


def _answer(value: Any, where: str, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: `{field}` is empty")
        return [{"role": "assistant", "content": value}]
    messages = _messages(value, where, field)
    if any(m["role"] != "assistant" for m in messages):
        raise DataError(f"{where}: `{field}` must hold assistant messages only")
    return messages


def kind_of(row: dict[str, Any]) -> str:
    if "chosen" in row or "rejected" in row:
        return "preference"
    if "messages" in row:
        return "chat"
    if "prompt" in row or "completion" in row:
        return "prompt_completion"
    return "unknown"


def normalise(row: Any, where: str, method: Kind, train_on: str = "last_turn") -> list[dict[str, Any]]:
    """The TRL examples of one row (a chat row with `all_turns` gives one per assistant turn)."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: a row must be a JSON object (got {type(row).__name__})")
    kind = kind_of(row)
    if kind == "unknown":
        raise DataError(
            f"{where}: a row needs `messages`, `prompt` + `completion`, or `prompt` + `chosen` + `rejected`"
        )
    if method == "dpo":
        if kind != "preference":
            raise DataError(
                f"{where}: method dpo needs preference rows (prompt, chosen, rejected); this is a {kind} row"
            )
        for field in ("prompt", "chosen", "rejected"):
            if field not in row:
                raise DataError(f"{where}: a preference row needs `{field}`")
        return [
            {
                "prompt": _messages(row["prompt"], where, "prompt"),
                "chosen": _answer(row["chosen"], where, "chosen"),
                "rejected": _answer(row["rejected"], where, "rejected"),
            }
        ]
    if kind == "preference":
        raise DataError(f"{where}: a preference row (chosen/rejected) needs `method: dpo`")
    if kind == "prompt_completion":
        for field in ("prompt", "completion"):
            if field not in row:
                raise DataError(f"{where}: a prompt/completion row needs `{field}`")
        return [
            {
                "prompt": _messages(row["prompt"], where, "prompt"),
                "completion": _answer(row["completion"], where, "completion"),
            }
        ]
    return _chat(_messages(row["messages"], where, "messages"), where, train_on)


def _chat(messages: list[dict[str, str]], where: str, train_on: str) -> list[dict[str, Any]]:
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]
    if not turns or messages[-1]["role"] != "assistant":
        raise DataError(f"{where}: `messages` must end with an assistant message (the answer to learn)")
    if not any(m["role"] == "user" for m in messages[: turns[0]]):
        raise DataError(f"{where}: `messages` needs a user message before the first assistant answer")
    chosen = turns if train_on == "all_turns" else turns[-1:]
    return [{"prompt": messages[:i], "completion": [messages[i]]} for i in chosen]
