"""The OpenAI chat-completions wire format and the dialects of servers that speak it."""
