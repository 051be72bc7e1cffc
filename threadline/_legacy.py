"""LangChain's legacy conversation API: ``ConversationChain`` and the buffer memories.

A *memory* is a thin view on a chat message history: it reads the messages a prompt
should see and stores each turn. All reading goes through two pure hooks of
:class:`BaseChatMemory`, so a subclass says only *which* messages it shows:

- ``_read_last()``: how many of the newest messages to fetch from the history
  (``None`` = all). The window memory fetches ``2 * k``, so a store reads only the window.
- ``_select(messages)``: trim what was fetched (a token-budget memory drops the oldest).

The sync and async paths share those hooks and differ only in the history call
(``get_messages`` vs ``aget_messages``). A turn is stored with ONE ``add_messages`` call.
Memories never delete from the history: a window or budget limits what the prompt sees,
while the stored conversation stays whole.

:class:`ConversationChain` formats its prompt with the memory's variables plus the input,
calls the model, and saves the turn; if the model fails nothing is stored. Its default
prompt is LangChain's, and is documented verbatim in README.md (``DEFAULT_TEMPLATE``).

>>> from threadline import FakeListChatModel
>>> chain = ConversationChain(llm=FakeListChatModel(responses=["Hi!"]))
>>> chain.run("Hello!")
'Hi!'
>>> chain.memory.buffer
'Human: Hello!\\nAI: Hi!'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from threadline._errors import InputError
from threadline._history import BaseChatMessageHistory, InMemoryChatMessageHistory
from threadline._messages import AIMessage, BaseMessage, HumanMessage, get_buffer_string
from threadline._prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from threadline._runnables import Runnable, RunnableConfig

__all__ = [
    "DEFAULT_TEMPLATE",
    "BaseChatMemory",
    "ConversationBufferMemory",
    "ConversationBufferWindowMemory",
    "ConversationChain",
]

#: The prompt ConversationChain uses when none is given (LangChain's, word for word).
DEFAULT_TEMPLATE = """The following is a friendly conversation between a human and an AI. \
The AI is talkative and provides lots of specific details from its context. If the AI does \
not know the answer to a question, it truthfully says it does not know.

Current conversation:
{history}
Human: {input}
AI:"""

# LangChain leaves "stop" out when it looks for the one input key to store.
_NOT_INPUT_KEYS = ("stop",)


class BaseChatMemory:
    """Base class of memories backed by a :class:`BaseChatMessageHistory`.

    Subclasses override ``_read_last`` and/or ``_select`` (see the module docstring) and
    may add their own keyword arguments before calling ``super().__init__(**kwargs)``.

    ``buffer``, ``buffer_as_str`` and ``buffer_as_messages`` are properties because
    LangChain code reads them that way; like ``history.messages`` they read the history,
    which in a store is I/O.
    """

    def __init__(
        self,
        *,
        chat_memory: BaseChatMessageHistory | None = None,
        memory_key: str = "history",
        return_messages: bool = False,
        human_prefix: str = "Human",
        ai_prefix: str = "AI",
        input_key: str | None = None,
        output_key: str | None = None,
    ) -> None:
        if chat_memory is None:
            chat_memory = InMemoryChatMessageHistory()
        elif not isinstance(chat_memory, BaseChatMessageHistory):
            raise InputError(
                f"chat_memory must be a chat message history (a BaseChatMessageHistory such "
                f"as InMemoryChatMessageHistory()), got {type(chat_memory).__name__}"
            )
        for name, value in (("memory_key", memory_key), ("human_prefix", human_prefix),
                            ("ai_prefix", ai_prefix)):
            if not isinstance(value, str):
                raise InputError(f"{name} must be a str, got {type(value).__name__}")
        self.chat_memory = chat_memory
        self.memory_key = memory_key
        self.return_messages = return_messages
        self.human_prefix = human_prefix
        self.ai_prefix = ai_prefix
        self.input_key = input_key
        self.output_key = output_key

    # -- the hooks subclasses override (pure) ----------------------------------------------

    def _read_last(self) -> int | None:
        """How many of the newest messages to fetch; ``None`` fetches all."""
        return None

    def _select(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """The fetched messages the prompt should see."""
        return messages

    # -- pure helpers shared by the sync and async paths -----------------------------------

    @property
    def memory_variables(self) -> list[str]:
        """The prompt variables this memory fills: ``[memory_key]``."""
        return [self.memory_key]

    def _variables(self, messages: list[BaseMessage]) -> dict[str, Any]:
        if self.return_messages:
            return {self.memory_key: messages}
        return {self.memory_key: self._as_str(messages)}

    def _as_str(self, messages: list[BaseMessage]) -> str:
        return get_buffer_string(messages, self.human_prefix, self.ai_prefix)

    def _turn(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[BaseMessage]:
        """The human and AI messages of one exchange, picked out as LangChain does."""
        if self.input_key is not None:
            input_key = self.input_key
        else:
            candidates = [k for k in inputs
                          if k not in self.memory_variables and k not in _NOT_INPUT_KEYS]
            if len(candidates) != 1:
                raise InputError(
                    f"cannot tell which input to store: expected one input key besides the "
                    f"memory keys {self.memory_variables}, got {candidates}; "
                    "set input_key=... on the memory"
                )
            input_key = candidates[0]
        if self.output_key is not None:
            output_key = self.output_key
        elif len(outputs) == 1:
            output_key = next(iter(outputs))
        elif "output" in outputs:
            output_key = "output"
        else:
            raise InputError(
                f"cannot tell which output to store: got output keys {sorted(outputs)}; "
                "set output_key=... on the memory"
            )
        for key, values, side in ((input_key, inputs, "inputs"),
                                  (output_key, outputs, "outputs")):
            if key not in values:
                raise InputError(f"key {key!r} is not in the {side} (keys: {sorted(values)})")
        return [HumanMessage(inputs[input_key]), AIMessage(outputs[output_key])]

    # -- sync ------------------------------------------------------------------------------

    @property
    def buffer_as_messages(self) -> list[BaseMessage]:
        """The messages the prompt sees (reads the history)."""
        return self._select(self.chat_memory.get_messages(last=self._read_last()))

    @property
    def buffer_as_str(self) -> str:
        """Those messages as ``"Human: ...\\nAI: ..."`` text (reads the history)."""
        return self._as_str(self.buffer_as_messages)

    @property
    def buffer(self) -> str | list[BaseMessage]:
        """Messages if ``return_messages`` else text (reads the history)."""
        return self.buffer_as_messages if self.return_messages else self.buffer_as_str

    def load_memory_variables(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{memory_key: history}`` for the prompt; ``inputs`` is accepted for LangChain."""
        return self._variables(self.buffer_as_messages)

    def save_context(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Store one exchange (the input and the output) with one ``add_messages`` call."""
        self.chat_memory.add_messages(self._turn(inputs, outputs))

    def clear(self) -> None:
        """Delete every message of the underlying history."""
        self.chat_memory.clear()

    # -- async -----------------------------------------------------------------------------

    async def abuffer_as_messages(self) -> list[BaseMessage]:
        return self._select(await self.chat_memory.aget_messages(last=self._read_last()))

    async def abuffer_as_str(self) -> str:
        return self._as_str(await self.abuffer_as_messages())

    async def abuffer(self) -> str | list[BaseMessage]:
        messages = await self.abuffer_as_messages()
        return messages if self.return_messages else self._as_str(messages)

    async def aload_memory_variables(
        self, inputs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self._variables(await self.abuffer_as_messages())

    async def asave_context(self, inputs: Mapping[str, Any],
                            outputs: Mapping[str, Any]) -> None:
        await self.chat_memory.aadd_messages(self._turn(inputs, outputs))

    async def aclear(self) -> None:
        await self.chat_memory.aclear()

    def _repr_fields(self) -> list[str]:
        return [f"chat_memory={self.chat_memory!r}", f"memory_key={self.memory_key!r}",
                f"return_messages={self.return_messages!r}"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_fields())})"


class ConversationBufferMemory(BaseChatMemory):
    """The whole conversation, as text (default) or as messages (``return_messages=True``).

    Works over any history, e.g. a file::

        memory = ConversationBufferMemory(chat_memory=FileChatMessageHistory("chat.json"))
        memory.save_context({"input": "hi"}, {"output": "hello"})
        memory.load_memory_variables({})   # {'history': 'Human: hi\\nAI: hello'}
    """


class ConversationBufferWindowMemory(BaseChatMemory):
    """Only the last ``k`` exchanges (``2 * k`` messages); the history keeps them all.

    >>> memory = ConversationBufferWindowMemory(k=1)
    >>> memory.save_context({"input": "one"}, {"output": "1"})
    >>> memory.save_context({"input": "two"}, {"output": "2"})
    >>> memory.buffer
    'Human: two\\nAI: 2'
    """

    def __init__(self, *, k: int = 5, **kwargs: Any) -> None:
        if type(k) is not int or k < 0:
            raise InputError(f"k is the number of exchanges to keep, an int >= 0; got {k!r}")
        super().__init__(**kwargs)
        self.k = k

    def _read_last(self) -> int | None:
        return 2 * self.k

    def _repr_fields(self) -> list[str]:
        return [*super()._repr_fields(), f"k={self.k!r}"]


def _prompt_variables(prompt: PromptTemplate | ChatPromptTemplate) -> tuple[set[str], set[str]]:
    """(variables the prompt needs, variables it may take)."""
    required = set(prompt.input_variables)
    optional = set(getattr(prompt, "optional_variables", ()))
    return required, required | optional


class ConversationChain(Runnable[Any, dict[str, Any]]):
    """A model that remembers the conversation through a memory (LangChain's legacy chain).

    >>> from threadline import FakeListChatModel
    >>> chain = ConversationChain(llm=FakeListChatModel(responses=["Hi!", "Fine."]))
    >>> chain.invoke({"input": "Hello!"})
    {'input': 'Hello!', 'history': '', 'response': 'Hi!'}
    >>> chain.predict(input="How are you?")
    'Fine.'

    ``llm`` is a chat model or any runnable taking a prompt value and returning a message
    or a str. Without ``prompt=`` the chain uses ``DEFAULT_TEMPLATE`` (see README.md).
    The prompt's variables must be exactly the memory's keys plus ``input_key``.
    """

    def __init__(
        self,
        *,
        llm: Runnable[Any, Any],
        memory: BaseChatMemory | None = None,
        prompt: PromptTemplate | ChatPromptTemplate | None = None,
        input_key: str = "input",
        output_key: str = "response",
        verbose: bool = False,
    ) -> None:
        if not isinstance(llm, Runnable):
            raise InputError(
                f"llm must be a chat model or another Runnable, got {type(llm).__name__}"
            )
        if memory is None:
            memory = ConversationBufferMemory()
        elif not isinstance(memory, BaseChatMemory):
            raise InputError(
                f"memory must be a ConversationBufferMemory, ConversationBufferWindowMemory "
                f"or another BaseChatMemory, got {type(memory).__name__}"
            )
        if prompt is None:
            prompt = PromptTemplate(DEFAULT_TEMPLATE)
        elif not isinstance(prompt, PromptTemplate | ChatPromptTemplate):
            raise InputError(
                f"prompt must be a PromptTemplate or a ChatPromptTemplate, "
                f"got {type(prompt).__name__}"
            )
        self.llm = llm
        self.memory = memory
        self.prompt = prompt
        self.input_key = input_key
        self.output_key = output_key
        self.verbose = verbose
        self._check_prompt()

    def _check_prompt(self) -> None:
        memory_keys = self.memory.memory_variables
        if self.input_key in memory_keys:
            raise InputError(
                f"the input key {self.input_key!r} is also a memory key {memory_keys}; "
                "give the chain's input_key and the memory's memory_key different names"
            )
        required, accepted = _prompt_variables(self.prompt)
        given = {*memory_keys, self.input_key}
        unfilled, unused = sorted(required - given), sorted(given - accepted)
        if unfilled or unused:
            problems = [f"{unfilled} not given" if unfilled else "",
                        f"{unused} not in the prompt" if unused else ""]
            raise InputError(
                f"the prompt's variables {sorted(accepted)} do not match what the chain "
                f"gives it: the memory keys {memory_keys} plus the input key "
                f"{self.input_key!r} ({'; '.join(p for p in problems if p)}); rename the "
                "prompt variables or set memory_key=... / input_key=..."
            )
        placeholders = {part.variable_name for part in getattr(self.prompt, "messages", ())
                        if isinstance(part, MessagesPlaceholder)}
        if self.memory.memory_key in placeholders and not self.memory.return_messages:
            raise InputError(
                f"the prompt has a messages placeholder for {self.memory.memory_key!r} but "
                "the memory gives text; build the memory with return_messages=True"
            )
        if isinstance(self.prompt, PromptTemplate) and self.memory.return_messages:
            raise InputError(
                "a PromptTemplate takes the history as text but the memory has "
                "return_messages=True; use return_messages=False or a ChatPromptTemplate "
                "with MessagesPlaceholder"
            )

    @property
    def input_keys(self) -> list[str]:
        return [self.input_key]

    @property
    def output_keys(self) -> list[str]:
        return [self.output_key]

    # -- pure steps shared by the sync and async paths ---------------------------------------

    def _inputs(self, input: Any) -> dict[str, Any]:
        if not isinstance(input, Mapping):
            return {self.input_key: input}
        if self.input_key not in input:
            raise InputError(
                f"missing the input key {self.input_key!r}; got keys {sorted(input)}"
            )
        return dict(input)

    def _prompt_value(self, inputs: dict[str, Any], memory_values: dict[str, Any]) -> Any:
        value = self.prompt.invoke({**inputs, **memory_values})
        if self.verbose:
            print(f"\n> Entering new {type(self).__name__} chain...\n"
                  f"Prompt after formatting:\n{value.to_string()}")
        return value

    def _outputs(self, output: Any) -> dict[str, Any]:
        if type(output) is str:
            text = output
        elif isinstance(output, BaseMessage):
            text = output.text
        else:
            raise InputError(
                f"the llm returned {type(output).__name__}; expected a message or a str "
                "(end a runnable with StrOutputParser())"
            )
        return {self.output_key: text}

    def _finish(self, inputs: dict[str, Any], memory_values: dict[str, Any],
                outputs: dict[str, Any]) -> dict[str, Any]:
        if self.verbose:
            print("\n> Finished chain.")
        return {**inputs, **memory_values, **outputs}

    def _run_args(self, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        if args and kwargs:
            raise InputError("run() takes one positional argument or keyword arguments, "
                             "not both")
        if len(args) > 1:
            raise InputError(f"run() takes one positional argument, got {len(args)}")
        if not args and not kwargs:
            raise InputError(f"run() needs the input: run('...') or "
                             f"run({self.input_key}='...')")
        return args[0] if args else kwargs

    # -- sync ------------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> dict[str, Any]:
        """Run one turn: ``{"input": ..., "history": ..., "response": ...}``."""
        inputs = self._inputs(input)
        memory_values = self.memory.load_memory_variables(inputs)
        output = self.llm.invoke(self._prompt_value(inputs, memory_values), config)
        outputs = self._outputs(output)
        self.memory.save_context({**inputs, **memory_values}, outputs)
        return self._finish(inputs, memory_values, outputs)

    def __call__(self, inputs: Any, return_only_outputs: bool = False) -> dict[str, Any]:
        result = self.invoke(inputs)
        return {self.output_key: result[self.output_key]} if return_only_outputs else result

    def run(self, *args: Any, **kwargs: Any) -> str:
        """The response text: ``chain.run("Hello!")`` or ``chain.run(input="Hello!")``."""
        text: str = self.invoke(self._run_args(args, kwargs))[self.output_key]
        return text

    def predict(self, **kwargs: Any) -> str:
        """The response text: ``chain.predict(input="Hello!")``."""
        text: str = self.invoke(kwargs)[self.output_key]
        return text

    # -- async -----------------------------------------------------------------------------

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> dict[str, Any]:
        inputs = self._inputs(input)
        memory_values = await self.memory.aload_memory_variables(inputs)
        output = await self.llm.ainvoke(self._prompt_value(inputs, memory_values), config)
        outputs = self._outputs(output)
        await self.memory.asave_context({**inputs, **memory_values}, outputs)
        return self._finish(inputs, memory_values, outputs)

    async def acall(self, inputs: Any, return_only_outputs: bool = False) -> dict[str, Any]:
        result = await self.ainvoke(inputs)
        return {self.output_key: result[self.output_key]} if return_only_outputs else result

    async def arun(self, *args: Any, **kwargs: Any) -> str:
        text: str = (await self.ainvoke(self._run_args(args, kwargs)))[self.output_key]
        return text

    async def apredict(self, **kwargs: Any) -> str:
        text: str = (await self.ainvoke(kwargs))[self.output_key]
        return text

    def __repr__(self) -> str:
        return f"ConversationChain(llm={self.llm!r}, memory={self.memory!r})"
