"""Which weights a step used: digests of local weights files, ids of hosted models.

An evaluation is only evidence about the model it ran on. A practitioner's first evaluation
once scored the wrong checkpoint through a symlink; so every path is resolved before it is
hashed, the resolved path is recorded beside the path as given, and :func:`identity_change`
says when what a path points at now is not what was evaluated.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.session import ModelIdentity, Session

# The file that holds a folder's trained weights, in the order looked for: a LoRA adapter
# (peft), then a whole model (transformers). Sharded models are named by their index file.
WEIGHTS_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
)
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _parts(weights: Path) -> list[Path]:
    """The files whose bytes are the weights: the file itself, or a sharded model's index and
    every shard it names (hashing the index alone would miss a changed shard)."""
    if not weights.name.endswith(".index.json"):
        return [weights]
    import json

    try:
        mapping = json.loads(weights.read_text(encoding="utf-8")).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return [weights]
    shards = sorted({str(name) for name in mapping.values()})
    return [weights, *((weights.parent / name).resolve() for name in shards)]


def sha256_weights(weights: Path) -> str:
    """The digest of a weights file, or of a sharded model (its index and shards, in order)."""
    parts = _parts(weights)
    if len(parts) == 1:
        return sha256_file(weights)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(f"{part.name}:{sha256_file(part)}\n".encode())
    return digest.hexdigest()


def weights_file(folder: str | Path) -> Path:
    """The resolved weights file of a model or adapter folder (or of a file given directly).

    The folder is resolved first, so a symlinked checkpoint folder names the folder it points
    at; :class:`InputError` when there is no weights file.
    """
    start = Path(folder).expanduser()
    resolved = start.resolve()
    if resolved.is_file():
        return resolved
    if not resolved.is_dir():
        raise InputError("no such model folder", path=str(start))
    for name in WEIGHTS_FILES:
        candidate = (resolved / name).resolve()
        if candidate.is_file():
            return candidate
    raise InputError(
        "no weights file in this folder (looked for " + ", ".join(WEIGHTS_FILES) + ")",
        path=str(resolved),
    )


def _stat(path: Path) -> tuple[int, int]:
    """Total size and latest modification time of the weights' files."""
    infos = [part.stat() for part in _parts(path)]
    return sum(i.st_size for i in infos), max(i.st_mtime_ns for i in infos)


def local_identity(
    folder: str | Path, *, model: str | None = None, merged: str | Path | None = None
) -> ModelIdentity:
    """The identity of local weights: the adapter (or model) folder's weights file and, when
    a merged export is served, the merged model's weights file."""
    weights = weights_file(folder)
    size, mtime = _stat(weights)
    identity = ModelIdentity(
        model=model,
        source=os.fspath(folder),
        path=str(weights),
        sha256=sha256_weights(weights),
        size=size,
        mtime_ns=mtime,
    )
    if merged is not None:
        merged_weights = weights_file(merged)
        m_size, m_mtime = _stat(merged_weights)
        identity.merged_source = os.fspath(merged)
        identity.merged_path = str(merged_weights)
        identity.merged_sha256 = sha256_weights(merged_weights)
        identity.merged_size = m_size
        identity.merged_mtime_ns = m_mtime
    return identity


def hosted_identity(model: str) -> ModelIdentity:
    """A hosted model is named by its id: the provider keeps its weights fixed."""
    return ModelIdentity(model=model)


def _file_change(
    label: str,
    source: str | None,
    path: str | None,
    sha: str | None,
    size: int | None,
    mtime: int | None,
) -> str | None:
    if not source or not sha:
        return None
    try:
        now = weights_file(source)
    except (InputError, OSError):
        return f"the {label} {source} is gone"
    if path and str(now) != path:
        # A re-pointed symlink or a replaced folder: hash what is there now.
        if sha256_weights(now) != sha:
            return f"the {label} {source} now points at {now}, whose weights differ"
        return None
    n_size, n_mtime = _stat(now)
    if n_size == size and n_mtime == mtime:
        return None  # untouched since it was hashed
    if sha256_weights(now) != sha:
        return f"the {label} weights {now} changed since they were evaluated"
    return None


def identity_change(identity: ModelIdentity | None) -> str | None:
    """Why the files behind ``identity`` are no longer the ones it names, or ``None``.

    A file whose size and modification time are unchanged is taken as unchanged; any other
    difference is settled by hashing it again.
    """
    if identity is None:
        return None
    return _file_change(
        "adapter",
        identity.source,
        identity.path,
        identity.sha256,
        identity.size,
        identity.mtime_ns,
    ) or _file_change(
        "merged model",
        identity.merged_source,
        identity.merged_path,
        identity.merged_sha256,
        identity.merged_size,
        identity.merged_mtime_ns,
    )


def same_weights(a: ModelIdentity | None, b: ModelIdentity | None) -> bool:
    """Whether two identities name the same weights (digest, else hosted model id)."""
    if a is None or b is None:
        return False
    if a.sha256 or b.sha256:
        return a.sha256 == b.sha256
    return a.model is not None and a.model == b.model


def identity_flags(session: Session) -> list[str]:
    """Every way the session's deployed or evaluated weights are not what was evaluated:
    files changed since, or an evaluation of other weights than the ones deployed."""
    flags: list[str] = []
    deployed = session.deployment.identity
    change = identity_change(deployed)
    if change:
        flags.append(f"deployed model: {change}")
    ev = session.evaluation
    for label, identity in (
        ("grader comparison", ev.grader_identity),
        ("blind A/B", ev.ab_identity),
    ):
        if identity is None:
            continue
        change = identity_change(identity)
        if change:
            flags.append(f"{label}: {change}")
        elif deployed is not None and not same_weights(identity, deployed):
            flags.append(
                f"{label}: it evaluated {identity.label()}, but the deployed model is "
                f"{deployed.label()}"
            )
    return flags


__all__ = [
    "WEIGHTS_FILES",
    "hosted_identity",
    "identity_change",
    "identity_flags",
    "local_identity",
    "same_weights",
    "sha256_file",
    "sha256_weights",
    "weights_file",
]
