"""forge vs its peers, side by side in one run: ``python -m benchmarks`` (or ``make bench``).

Dev-only: the peers (openai, langchain-openai, llama-index-llms-openai-like, litellm) come from
the ``bench`` dependency group and are imported only here, never from ``packages/``.
"""
