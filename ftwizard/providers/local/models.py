"""Finding a local backend's base model on disk, offline.

A local model name is ``builtin-tiny`` or ``builtin-tiny-vl`` (built on first use), a folder
holding a Hugging Face model (``config.json`` and weights), or a Hugging Face repo id that is
already in the local
Hugging Face cache. Nothing is ever downloaded: a model that is not on this machine is an
:class:`~ftwizard.errors.InputError` saying how to get it.
"""

from __future__ import annotations

from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.providers.local.tiny_model import ensure_tiny_model, is_tiny_model_name
from ftwizard.providers.local.tiny_vlm import ensure_tiny_vlm, is_tiny_vlm_name


def resolve_local_model(name: str) -> Path:
    """The folder that holds model ``name`` (``local:`` prefix allowed), built or cached.

    Raises :class:`InputError` when the model is neither a folder nor in the local cache.
    """
    bare = name.removeprefix("local:").strip()
    if not bare:
        raise InputError("no local model given", field="base_model")
    if is_tiny_model_name(bare):
        return ensure_tiny_model()
    if is_tiny_vlm_name(bare):
        return ensure_tiny_vlm()
    folder = Path(bare).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise InputError(
                "this folder is not a Hugging Face model (no config.json in it)", path=folder
            )
        return folder
    if bare.startswith((".", "/", "~")) or bare.count("/") > 1:
        raise InputError("model folder not found", path=folder)
    return _from_hf_cache(bare)


def _from_hf_cache(repo_id: str) -> Path:
    # Imported here: huggingface_hub is only needed when a hub name is given.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = snapshot_download(repo_id, local_files_only=True)
    except HFValidationError:
        raise InputError(
            f"'{repo_id}' is neither builtin-tiny, a model folder, nor a Hugging Face repo id",
            field="base_model",
        ) from None
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        raise InputError(
            f"model '{repo_id}' is not in the local Hugging Face cache and ftwizard never "
            "downloads during training; download it on the task screen (Download), with "
            f"`hf download {repo_id}`, or give a local folder",
            field="base_model",
        ) from None
    from ftwizard.providers.local.download import has_weights

    folder = Path(path)
    if not (folder / "config.json").is_file() or not has_weights(folder):
        raise InputError(
            f"the cached copy of '{repo_id}' is incomplete (a cancelled download?); download "
            f"it again on the task screen or with `hf download {repo_id}`",
            field="base_model",
        )
    return folder


__all__ = ["resolve_local_model"]
