"""Prompts, on-policy rollouts and response-aligned logits for OPSDC.

Student prompt: the plain problem through the chat template. Teacher prompt: the same problem with the
concise instruction as system message. A rollout is sampled from the student; student and teacher then
score the same response tokens, each after its own prompt, so their logits line up position by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class Batch:
    """One batch of rollouts. Tensors are [B, ...]; `response_mask` marks real response tokens."""

    student_ids: Any  # [B, P + R]: left-padded student prompt, then the response
    student_mask: Any
    teacher_ids: Any  # [B, Q + R]
    teacher_mask: Any
    response_mask: Any  # [B, R]
    prompt_len: int  # P
    teacher_prompt_len: int  # Q
    finished: Any = None  # [B] bool: the response ended with a stop token (else it was cut at max_new_tokens)

    @property
    def response_len(self) -> int:
        return int(self.response_mask.shape[1])


def chat_prompt(tokenizer: Any, question: str, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    template = None if getattr(tokenizer, "chat_template", None) else CHATML
    return str(
        tokenizer.apply_chat_template(messages, chat_template=template, add_generation_prompt=True, tokenize=False)
    )


def stop_ids(tokenizer: Any) -> list[int]:
    ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if isinstance(i, int))


def _encode(tokenizer: Any, texts: Sequence[str], device: Any) -> tuple[Any, Any]:
    enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    return enc.input_ids.to(device), enc.attention_mask.to(device)


def response_mask(response: Any, stops: Sequence[int]) -> Any:
    """1 for every response token up to and including the first stop token, 0 after it."""
    import torch

    is_stop = torch.zeros_like(response, dtype=torch.bool)
    for token in stops:
        is_stop |= response == token
    # positions strictly after the first stop: a stop occurred at an earlier position
    seen_before = (torch.cumsum(is_stop.long(), dim=1) - is_stop.long()) > 0
    return (~seen_before).long()


def rollout(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    teacher_system: str,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
) -> Batch:
    """Sample one response per question from the student and build the aligned student/teacher inputs."""
    import torch

    device = next(model.parameters()).device
    stops = stop_ids(tokenizer)
    s_ids, s_mask = _encode(tokenizer, [chat_prompt(tokenizer, q) for q in questions], device)
    with torch.no_grad():
        out = model.generate(
            input_ids=s_ids,
            attention_mask=s_mask,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
    response = out[:, s_ids.shape[1] :]
    r_mask = response_mask(response, stops)
    t_ids, t_mask = _encode(tokenizer, [chat_prompt(tokenizer, q, teacher_system) for q in questions], device)
    return Batch(
        student_ids=torch.cat([s_ids, response], dim=1),
        student_mask=torch.cat([s_mask, r_mask], dim=1),
        teacher_ids=torch.cat([t_ids, response], dim=1),
        teacher_mask=torch.cat([t_mask, r_mask], dim=1),
        response_mask=r_mask,
        prompt_len=int(s_ids.shape[1]),
        teacher_prompt_len=int(t_ids.shape[1]),
        finished=torch.isin(response, torch.tensor(stops, device=response.device)).any(dim=1),
    )


def response_logits(model: Any, ids: Any, mask: Any, prompt_len: int, response_len: int) -> Any:
    """Logits predicting each response token: [B, R, V] (positions follow the attention mask)."""
    positions = (mask.long().cumsum(dim=1) - 1).clamp_min(0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits
    return logits[:, prompt_len - 1 : prompt_len - 1 + response_len, :]
