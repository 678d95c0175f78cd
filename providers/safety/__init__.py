"""Safety providers: Llama Guard 3 (text and vision) and Prompt Guard."""
