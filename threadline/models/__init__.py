"""Chat models: the contract, real models, test models, tokens.

``_base`` is the chat-model contract and ``_llm`` LangChain's string-completion ``LLM``
with its fakes; ``_fake`` the offline chat test models; ``_openai`` (with the pure wire
format in ``_openai_protocol`` and ``_tool_schema``) any OpenAI-compatible server;
``_local`` the embedded GGUF model; ``_names`` picks a model by name. Token counting
(``_counter``, ``_tokens``, ``_counting``) and ``trim_messages`` (``_trim``) live here
because a count is a property of a model's tokenizer. Depends on :mod:`threadline.core`
and :mod:`threadline.messages`, never on stores. Users import these names from
:mod:`threadline`.
"""
