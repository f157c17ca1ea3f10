"""The OPSDC objective: exact full-vocabulary reverse KL, KL(p_S || p_T), per response token, in fp32."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def token_reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """sum_v p_S(v) (log p_S(v) - log p_T(v)) at every position: [..., V] -> [...], computed in fp32."""
    import torch.nn.functional as F

    log_ps = F.log_softmax(student_logits.float(), dim=-1)
    log_pt = F.log_softmax(teacher_logits.float(), dim=-1)
    return (log_ps.exp() * (log_ps - log_pt)).sum(dim=-1)


def reverse_kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The KL summed over the positions where `mask` is 1 (response tokens; padding is 0)."""
    kl = token_reverse_kl(student_logits, teacher_logits)
    return (kl * mask.to(kl.dtype)).sum()


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The KL averaged over response tokens (positions where `mask` is 1)."""
    tokens = mask.float().sum().clamp_min(1.0)
    return reverse_kl_sum(student_logits, teacher_logits, mask) / tokens
