"""LangChain's two memories that hold no conversation: fixed values, and a read-only view.

:class:`SimpleMemory` gives a prompt the same variables on every turn (context that never
changes); :class:`ReadOnlySharedMemory` lets a second chain read another memory without
writing to it. Both have the memory interface (``memory_variables``,
``load_memory_variables``, ``save_context``, ``clear`` and the async twins), so they go
wherever a memory goes.

>>> SimpleMemory(memories={"city": "Paris"}).load_memory_variables({})
{'city': 'Paris'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadline._errors import InputError

__all__ = ["ReadOnlySharedMemory", "SimpleMemory"]


class SimpleMemory:
    """Fixed ``memories`` given to the prompt on every turn; saving changes nothing.

    >>> memory = SimpleMemory(memories={"rules": "Answer in French."})
    >>> memory.memory_variables
    ['rules']
    """

    def __init__(self, *, memories: Mapping[str, Any] | None = None) -> None:
        if memories is not None and not isinstance(memories, Mapping):
            raise InputError(f"memories must be a dict, got {type(memories).__name__}")
        self.memories: dict[str, Any] = dict(memories or {})

    @property
    def memory_variables(self) -> list[str]:
        return list(self.memories)

    def load_memory_variables(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.memories

    def save_context(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Nothing to store: the memories never change."""

    def clear(self) -> None:
        """Nothing to clear: the memories never change (as in LangChain)."""

    async def aload_memory_variables(
        self, inputs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.load_memory_variables(inputs)

    async def asave_context(self, inputs: Mapping[str, Any],
                            outputs: Mapping[str, Any]) -> None:
        """Nothing to store."""

    async def aclear(self) -> None:
        """Nothing to clear."""

    def __repr__(self) -> str:
        return f"SimpleMemory(memories={self.memories!r})"


class ReadOnlySharedMemory:
    """Reads ``memory``'s variables; saving and clearing through it do nothing.

    >>> from threadline import ConversationBufferMemory
    >>> shared = ConversationBufferMemory()
    >>> shared.save_context({"input": "hi"}, {"output": "hello"})
    >>> reader = ReadOnlySharedMemory(memory=shared)
    >>> reader.save_context({"input": "ignored"}, {"output": "ignored"})
    >>> reader.load_memory_variables({})
    {'history': 'Human: hi\\nAI: hello'}
    """

    def __init__(self, *, memory: Any) -> None:
        if not callable(getattr(memory, "load_memory_variables", None)):
            raise InputError(
                f"memory must be a memory (with load_memory_variables), "
                f"got {type(memory).__name__}"
            )
        self.memory = memory

    @property
    def memory_variables(self) -> list[str]:
        return list(self.memory.memory_variables)

    def load_memory_variables(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.memory.load_memory_variables(inputs)
        return result

    def save_context(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Nothing is stored: the shared memory is read-only here."""

    def clear(self) -> None:
        """Nothing is cleared: the shared memory is read-only here."""

    async def aload_memory_variables(
        self, inputs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        aload = getattr(self.memory, "aload_memory_variables", None)
        if aload is None:
            return self.load_memory_variables(inputs)
        result: dict[str, Any] = await aload(inputs)
        return result

    async def asave_context(self, inputs: Mapping[str, Any],
                            outputs: Mapping[str, Any]) -> None:
        """Nothing is stored."""

    async def aclear(self) -> None:
        """Nothing is cleared."""

    def __repr__(self) -> str:
        return f"ReadOnlySharedMemory(memory={self.memory!r})"
