"""``inline::llama-guard``: Llama Guard 3 through the inference router (prompt, verdict, provider)."""
