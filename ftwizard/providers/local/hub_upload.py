"""Push a model folder (adapter or merged model, with its card) to a Hugging Face Hub repo.

Through ``huggingface_hub``: ``HF_ENDPOINT`` chooses the Hub (a mirror, an enterprise Hub, the
tests' fake one) and ``HF_TOKEN`` is the write token; neither is ever written anywhere. The
repo is created if missing (private unless asked otherwise) and the folder is one commit.
"""

from __future__ import annotations

import os
from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError


def push_folder(
    folder: Path, repo_id: str, *, private: bool = True, message: str = "Upload from ftwizard"
) -> str:
    """Upload every file of ``folder`` to model repo ``repo_id``; return the commit URL."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise InputError("a Hub repo is named OWNER/NAME", field="--repo")
    if not os.environ.get("HF_TOKEN"):
        raise InputError("set HF_TOKEN to a Hugging Face token with write access", field="HF_TOKEN")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=os.environ["HF_TOKEN"])
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=message
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        hint = "check that HF_TOKEN has write access to this repo"
        raise ProviderError(
            f"the Hub refused the upload to {repo_id}: {exc}",
            provider="huggingface",
            status_code=status,
            hint=hint if status in (401, 403) else "check HF_ENDPOINT and the network",
        ) from None
    return str(commit.commit_url)


__all__ = ["push_folder"]
