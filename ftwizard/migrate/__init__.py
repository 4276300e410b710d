"""Moving a fine-tune off OpenAI: read an OpenAI job, rebuild it as an ftwizard session."""
