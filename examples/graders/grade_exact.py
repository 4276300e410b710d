def grade(sample: dict, item: dict) -> float:
    """1.0 when the answer equals the reference, ignoring case and surrounding spaces."""
    answer = sample["output_text"].strip().lower()
    return 1.0 if answer == str(item["answer"]).strip().lower() else 0.0
