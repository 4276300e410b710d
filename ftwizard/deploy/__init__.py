"""The deploy step: serve or point at the tuned model and make a test call."""
