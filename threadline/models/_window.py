"""How much a model can read: its context window, and what is kept free for the answer.

Shared by the command line's conversations and the server's turns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel

__all__ = ["ANSWER_RESERVE", "DEFAULT_CONTEXT", "context_window"]

#: The context window assumed for models that do not say theirs (fake, OpenAI-compatible).
DEFAULT_CONTEXT = 8192
#: Tokens kept free for the answer when neither --max-tokens nor the model sets a limit.
ANSWER_RESERVE = 512


def context_window(model: BaseChatModel) -> int:
    """The model's context window in tokens (a local model reports its own)."""
    size = getattr(model, "context_size", None)
    if callable(size):
        value = size()
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_CONTEXT
