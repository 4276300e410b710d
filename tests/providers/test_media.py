"""The shared media helper: every way a dataset names an image, sniffing, data URIs, limits."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from ftwizard.providers import media
from tests.fakes.images import image_bytes, jpeg, png


def test_relative_path_resolves_against_the_dataset_folder(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png())
    assert media.resolve_image("img/a.png", base_dir=tmp_path) == png()


def test_file_url_and_data_uri_resolve(tmp_path: Path) -> None:
    f = tmp_path / "b c.jpg"
    f.write_bytes(jpeg())
    assert media.resolve_image(f"file://{tmp_path}/b%20c.jpg") == jpeg()
    uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    assert media.resolve_image(uri) == png()
    assert media.decode_data_uri(uri)[0] == "image/png"


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("https://example.com/x.png", "remote"),
        ("gs://bucket/x.png", "no-bucket-reader"),
        ("missing.png", "missing"),
        ("data:image/png;base64,@@@", "bad-data-uri"),
        ("data:image/png,rawtext", "bad-data-uri"),
    ],
)
def test_unresolvable_references_say_why(tmp_path: Path, ref: str, reason: str) -> None:
    with pytest.raises(media.MediaUnavailable) as info:
        media.resolve_image(ref, base_dir=tmp_path)
    assert info.value.reason == reason


def test_gs_uri_is_read_through_the_given_bucket_reader() -> None:
    seen: list[str] = []

    def reader(uri: str) -> bytes:
        seen.append(uri)
        return png()

    assert media.resolve_image("gs://b/x.png", gcs_reader=reader) == png()
    assert seen == ["gs://b/x.png"]


def test_sniff_reports_format_size_and_mode() -> None:
    info = media.sniff_image(png((5, 7)))
    assert (info.format, info.mime, info.width, info.height, info.mode) == (
        "PNG",
        "image/png",
        5,
        7,
        "RGB",
    )
    assert media.sniff_image(jpeg()).mime == "image/jpeg"
    assert media.sniff_image(image_bytes("PNG", mode="L")).mode == "L"
    assert "PNG 5x7 RGB" in info.summary()


def test_bytes_that_are_not_an_image_are_refused() -> None:
    with pytest.raises(media.NotAnImage):
        media.sniff_image(b"hello, not an image")
    with pytest.raises(media.NotAnImage):
        media.sniff_image(png()[:20])


def test_data_uri_round_trip(tmp_path: Path) -> None:
    uri = media.data_uri(jpeg())
    assert uri.startswith("data:image/jpeg;base64,")
    assert media.decode_data_uri(uri) == ("image/jpeg", jpeg())
    (tmp_path / "a.png").write_bytes(png())
    assert media.to_data_uri("a.png", base_dir=tmp_path).startswith("data:image/png;base64,")
    assert media.to_data_uri(uri) == uri


def test_limits_are_the_documented_ones() -> None:
    assert media.limits_for("openai").max_images == 10
    assert media.limits_for("openai").max_bytes == 10 * media.MB
    assert media.limits_for("vertex").max_images == 30
    assert media.limits_for("vertex").max_bytes == 20 * media.MB
    assert media.limits_for("together").base64_only
    assert media.limits_for("fireworks").formats == {"PNG", "JPEG"}
    assert media.limits_for("fireworks").describe_formats() == "PNG or JPEG"
    assert media.limits_for("unknown-backend").backend == "local"


def test_importing_the_helper_does_not_import_pillow() -> None:
    code = "import sys, ftwizard.providers.media; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_decompression_bomb_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 8x6 = 48 pixels is over 2x the cap
    with pytest.raises(media.NotAnImage, match="too many pixels"):
        media.sniff_image(png())
