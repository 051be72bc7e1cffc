"""LangChain's legacy chain: ``ConversationChain``, a model that remembers through a memory.

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
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe
from threadline.core._prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate
from threadline.core._runnables import Runnable, RunnableConfig
from threadline.memory._buffer import BaseChatMemory, ConversationBufferMemory
from threadline.messages._values import BaseMessage

__all__ = ["DEFAULT_TEMPLATE", "ConversationChain"]

#: The prompt ConversationChain uses when none is given (LangChain's, word for word).
DEFAULT_TEMPLATE = """The following is a friendly conversation between a human and an AI. \
The AI is talkative and provides lots of specific details from its context. If the AI does \
not know the answer to a question, it truthfully says it does not know.

Current conversation:
{history}
Human: {input}
AI:"""


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
            # Another framework's chat model (LangChain's) is wrapped, converting messages.
            foreign = convert_foreign("runnable", llm)
            if foreign is None:
                raise InputError(
                    f"llm must be a chat model or another Runnable, got {describe(llm)}"
                )
            llm = foreign
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
                f"The input key {self.input_key} was also found in the memory keys "
                f"({memory_keys}) - please provide keys that don't overlap: give the "
                "chain's input_key and the memory's memory_key different names"
            )
        required, accepted = _prompt_variables(self.prompt)
        given = {*memory_keys, self.input_key}
        unfilled, unused = sorted(required - given), sorted(given - accepted)
        if unfilled or unused:
            problems = [f"{unfilled} not given" if unfilled else "",
                        f"{unused} not in the prompt" if unused else ""]
            # LangChain's wording first, so code matching its message keeps working.
            raise InputError(
                f"Got unexpected prompt input variables. The prompt's variables "
                f"{sorted(accepted)} do not match what the chain "
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
