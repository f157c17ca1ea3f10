"""llama-cpp-python called directly: the baseline for the embedded engine's tokens/s.

    python bench/gwbench/llama_direct.py --model FILE.gguf --threads 2 --max-tokens 128 --prompt TEXT

Loads the model once, then answers each `run` line on stdin with one JSON line on stdout (completion and
prompt tokens, wall seconds of `create_chat_completion`, the text); `quit` ends it. The wall time covers
what the gateway's request covers on the engine side: chat template, tokenization, prompt evaluation and
generation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--max-tokens", type=int, required=True)
    parser.add_argument("--prompt", required=True)
    args = parser.parse_args()
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=args.n_ctx, n_threads=args.threads, verbose=False)
    print(json.dumps({"loaded_s": time.perf_counter() - started}), flush=True)
    messages = [{"role": "user", "content": args.prompt}]
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0 = time.perf_counter()
        out = llm.create_chat_completion(messages=messages, max_tokens=args.max_tokens, temperature=0.0)
        seconds = time.perf_counter() - t0
        usage = out["usage"]
        print(
            json.dumps(
                {
                    "completion_tokens": usage["completion_tokens"],
                    "prompt_tokens": usage["prompt_tokens"],
                    "seconds": seconds,
                    "text": out["choices"][0]["message"]["content"],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
