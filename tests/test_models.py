"""Choosing a local model by name, and building and checking all-mpnet-base-v2 from its five parts.

Nothing here needs the real mpnet parts or weights (a fresh clone has only MiniLM): the parts are
stood in for by a small zip cut into pieces, installed as distributions the way pip lays them out.
"""

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from adapters.cli import app
from bot.settings import Settings
from digests import models
from digests.embeddings import LocalEmbedder
from digests.models import ModelUnavailable, assemble, build_mpnet

WEIGHTS = b"not really weights " * 1000
FILES = {
    "tiny/model.safetensors": WEIGHTS,
    "tiny/config.json": b"{}",
    "tiny/1_Pooling/config.json": b'{"pooling": "mean"}',
    "tiny/desktop.ini": b"[.ShellClassInfo]",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def zip_in_pieces(count: int) -> list[bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny/", b"")
        for name, data in FILES.items():
            archive.writestr(name, data)
    joined = buffer.getvalue()
    size = -(-len(joined) // count)
    return [joined[i : i + size] for i in range(0, len(joined), size)]


def write_pieces(folder: Path, count: int = 3) -> list[tuple[Path, str]]:
    pieces = []
    for n, data in enumerate(zip_in_pieces(count), start=1):
        path = folder / f"tiny.zip.00{n}"
        path.write_bytes(data)
        pieces.append((path, sha256(data)))
    return pieces


def test_pieces_join_into_the_model_folder_without_the_uploaders_extras(tmp_path):
    target = assemble(write_pieces(tmp_path), sha256(WEIGHTS), tmp_path / "models" / "tiny")
    found = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert found == {"model.safetensors", "config.json", "1_Pooling/config.json"}
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]  # no work folder left behind


def test_a_changed_piece_is_refused_and_nothing_is_built(tmp_path):
    pieces = write_pieces(tmp_path)
    changed = bytearray(pieces[1][0].read_bytes())
    changed[10] ^= 1
    pieces[1][0].write_bytes(bytes(changed))
    with pytest.raises(ModelUnavailable, match=r"tiny\.zip\.002 has sha256 .* refusing"):
        assemble(pieces, sha256(WEIGHTS), tmp_path / "models" / "tiny")
    assert not (tmp_path / "models" / "tiny").exists()


def test_weights_other_than_the_pinned_ones_are_refused_and_the_old_model_stays(tmp_path):
    target = tmp_path / "models" / "tiny"
    assemble(write_pieces(tmp_path), sha256(WEIGHTS), target)
    with pytest.raises(ModelUnavailable, match="do not hold the pinned model"):
        assemble(write_pieces(tmp_path), sha256(b"other weights"), target)
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert [p.name for p in target.parent.iterdir()] == ["tiny"]


@pytest.fixture
def installed_parts(tmp_path, monkeypatch):
    """Two parts installed as pip lays out the real five (a folder with the piece, a dist-info
    naming it), an empty models folder, and the pinned hashes pointed at them."""
    site = tmp_path / "site-packages"
    listed = []
    for n, data in enumerate(zip_in_pieces(2), start=1):
        distribution, piece = f"tiny-part-00{n}", f"tiny.zip.00{n}"
        inside = f"tiny-part_00{n}/input/{piece}"
        (site / inside).parent.mkdir(parents=True)
        (site / inside).write_bytes(data)
        info = site / f"tiny_part_00{n}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{inside},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
        listed.append((distribution, piece, sha256(data)))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(models, "MPNET_PIECES", listed)
    monkeypatch.setattr(models, "MPNET", dataclasses.replace(models.MPNET, weights_sha256=sha256(WEIGHTS)))
    monkeypatch.setattr(models, "built_models_path", lambda: tmp_path / "models")
    return site


def test_mpnet_is_built_once_from_the_installed_parts_and_repaired_when_changed(installed_parts, tmp_path):
    path, built = build_mpnet()
    assert built and path == tmp_path / "models" / "all-mpnet-base-v2"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert build_mpnet() == (path, False)  # once: a second `make mpnet` only checks it
    (path / "model.safetensors").write_bytes(b"tampered")
    assert build_mpnet() == (path, True)
    assert (path / "model.safetensors").read_bytes() == WEIGHTS


def test_building_without_the_parts_says_how_to_install_them(installed_parts, monkeypatch):
    monkeypatch.setattr(models, "MPNET_PIECES", [("tiny-part-009", "tiny.zip.009", "0" * 64)])
    with pytest.raises(ModelUnavailable, match=r"tiny-part-009 is not installed: run `make mpnet`"):
        build_mpnet()


def test_a_tampered_model_is_refused_at_load_with_how_to_rebuild(installed_parts):
    path, _ = build_mpnet()
    (path / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(ModelUnavailable, match=r"refusing to load it \(run `make mpnet`\)"):
        LocalEmbedder("mpnet").embed(["refunds wait days for approval"])


def test_inside_the_image_the_advice_is_to_rebuild_it(installed_parts, monkeypatch, tmp_path):
    # An image built without mpnet, told to use it: `make mpnet` is not there to run.
    monkeypatch.setenv(models.IN_IMAGE, "1")
    with pytest.raises(
        ModelUnavailable,
        match=r"not installed in this environment: rebuild the image with "
        r"`--build-arg EMBEDDING_MODEL=mpnet`",
    ):
        LocalEmbedder("mpnet").embed(["refunds wait days for approval"])
    path, _ = build_mpnet()
    (path / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(ModelUnavailable, match=r"refusing to load it \(rebuild the image with"):
        LocalEmbedder("mpnet").embed(["refunds wait days for approval"])


def test_named_choices_are_different_models_and_paths_still_work():
    default, minilm, mpnet = LocalEmbedder(""), LocalEmbedder("minilm"), LocalEmbedder("MPNet")
    assert default.name == minilm.name == "local:all-MiniLM-L6-v2" and minilm.dimension == 384
    assert mpnet.name == "local:all-mpnet-base-v2" and mpnet.dimension == 768
    path = LocalEmbedder("/srv/models/my-model")
    assert path.named is None and path.name == "local:/srv/models/my-model"
    assert path.dimension == 0  # known once loaded, not guessed


def test_mpnet_not_built_stops_start_up_saying_run_make_mpnet(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "built_models_path", lambda: tmp_path / "models")
    with pytest.raises(ValidationError, match=r"FRICTIONLOG_EMBEDDING_MODEL=mpnet: .* run `make mpnet`"):
        Settings(embedding_model="mpnet", _env_file=None)
    Settings(embedding_model="mpnet", embeddings="hashing", _env_file=None)  # not the local model: no matter
    Settings(embedding_model="minilm", _env_file=None)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'f.db'}")
    monkeypatch.setenv("FRICTIONLOG_EMBEDDING_MODEL", "mpnet")
    result = CliRunner().invoke(app, ["cluster"])
    assert result.exit_code == 2
    assert "Configuration problem" in result.output and "run `make mpnet`" in result.output

    (tmp_path / "models" / "all-mpnet-base-v2").mkdir(parents=True)
    (tmp_path / "models" / "all-mpnet-base-v2" / "model.safetensors").write_bytes(WEIGHTS)
    assert Settings(embedding_model="mpnet", _env_file=None).embedding_model == "mpnet"
