"""Settings of the grain encoder and of its training: dataclasses, the presets, settings files.

The dataclass defaults are the paper's configuration (``paper``): one ImageNet ResNet-152 branch per
focal layer, 280x280 crops, a 512-dimensional latent, Adam with learning rate 1e-4, beta 1, a VAE.
The ``default`` preset (what the train stage uses unless told; also named ``contrastive``) is the
best measured on the plate benchmark (README "Grain features"): the paper's network trained
self-supervised, contrastively (:mod:`.contrastive`), and orientation-free (``invariant``: trained
on randomly turned and flipped grains, encoded as the mean latent over the 8 rotations and flips).
``vae`` is the paper's VAE made orientation-free. ``cpu`` is the default's recipe on a narrow ResNet
on 64x64 crops, 4 epochs (:data:`CPU_EPOCHS`), that trains the demo on two CPU cores in minutes;
``cpu-vae`` and ``cpu-paper`` (20 epochs) are that network as an orientation-free VAE and as the
paper's VAE.

A settings file (YAML or JSON) may name a ``preset`` and override any field: encoder fields under
``encoder:``, training fields at the top level. Command-line options override the file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sedarchive.errors import InputError
from sedarchive.settings_files import check_keys
from sedarchive.settings_files import read_settings_file as _read

#: Torch CPU threads of training unless set: one was the fastest count measured on a shared 2-core
#: machine (``python bench/train_threads.py``; README "Training threads"), and one thread is what
#: every Dask worker process uses for its other tasks.
TRAIN_THREADS = 1

#: Epochs of the ``cpu`` preset: as many as the demo trains, and what lets ``bench/accuracy.py``
#: (4 samples, ~2,300 training grains) run on a shared 2-core machine in under 20 minutes; measured
#: against 20 epochs with ``bench/features.py`` (README "Grain features"). ``cpu-vae`` and
#: ``cpu-paper`` keep 20.
CPU_EPOCHS = 4

TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = (*TORCHVISION_BACKBONES, "small")
PRESETS = ("default", "paper", "contrastive", "vae", "cpu", "cpu-vae", "cpu-paper")
OBJECTIVES = ("vae", "contrastive")
DEFAULT_PRESET = "default"
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EncoderSettings:
    """The shape of the variational autoencoder.

    ``backbone`` is a torchvision ResNet (ImageNet weights fit it) or ``small``, a narrow ResNet of
    basic blocks with ``small_widths`` channels and ``small_blocks`` blocks per stage.
    ``input_size`` is the side of the square crop the model sees (crops are resized to it).
    ``n_layers`` (focal layers per grain) follows the data; the training stage sets it.
    ``invariant``: orientation-free features. Training sees every grain turned by a random multiple
    of 90 degrees and randomly flipped (grains lie any way up), and a grain's latent is the mean
    ``mu`` over its 8 rotations and flips, so a grain and its turned copy get the same latent. It is
    recorded with the model (``settings.json``), so encoding with a saved model does the same.
    """

    backbone: str = "resnet152"
    input_size: int = 280
    latent_dim: int = 512
    shared_branches: bool = False
    small_widths: tuple[int, ...] = (16, 32, 64, 128)
    small_blocks: tuple[int, ...] = (1, 1, 1, 1)
    decoder_width: int = 256
    n_layers: int = 6
    invariant: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "small_widths", tuple(int(v) for v in self.small_widths))
        object.__setattr__(self, "small_blocks", tuple(int(v) for v in self.small_blocks))
        if not isinstance(self.invariant, bool):
            raise InputError(f"encoder invariant must be true or false, got {self.invariant!r}")
        if self.backbone not in BACKBONES:
            raise InputError(f"encoder backbone {self.backbone!r} is not one of {', '.join(BACKBONES)}")
        if self.input_size < 16:
            raise InputError(f"encoder input_size {self.input_size} is below 16 pixels")
        if self.latent_dim < 1 or self.decoder_width < 8 or self.n_layers < 1:
            raise InputError("encoder latent_dim, n_layers must be >= 1 and decoder_width >= 8")
        if not self.small_widths or len(self.small_widths) != len(self.small_blocks) or min(self.small_widths) < 1:
            raise InputError("encoder small_widths and small_blocks need the same (non-zero) length")


@dataclass(frozen=True)
class TrainSettings:
    """How the encoder is trained (and which grains it learns from).

    ``cache_mb`` bounds the resized crops kept in memory between epochs (0: read every epoch);
    ``threads`` is torch's CPU thread count while training, set wherever training runs (this
    process, a GPU worker, a batch job). It changes the weights (sums are split differently), so it
    is a fixed number, part of the run's fingerprint and recorded with the model: the same archive
    and settings give the same model on every engine. ``None`` (models trained before it was a
    setting) leaves torch's own choice, which a Dask nanny sets to 1 and a plain process to all
    cores. Default :data:`TRAIN_THREADS` (``bench/train_threads.py``).
    ``objective``: ``vae`` (the paper's: reconstruction + beta KL) or ``contrastive`` (SimCLR-style:
    two augmented views of each grain, NT-Xent loss at ``temperature``; :mod:`.contrastive`).
    """

    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-4
    beta: float = 1.0
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True
    include_flagged: bool = False
    weights: str | None = None
    shuffle_buffer: int = 512
    max_grains: int | None = None
    threads: int | None = TRAIN_THREADS
    cache_mb: int = 2048
    objective: str = "vae"
    temperature: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            object.__setattr__(self, "encoder", encoder_from_dict(self.encoder))
        if self.epochs < 1 or self.batch_size < 1 or self.shuffle_buffer < 1:
            raise InputError("training epochs, batch_size and shuffle_buffer must be >= 1")
        if not self.learning_rate > 0 or self.beta < 0:
            raise InputError("training learning_rate must be > 0 and beta >= 0")
        if self.device not in DEVICES:
            raise InputError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.max_grains is not None and self.max_grains < 1:
            raise InputError("training max_grains must be >= 1 when given")
        if self.objective not in OBJECTIVES:
            raise InputError(f"training objective {self.objective!r} is not one of {', '.join(OBJECTIVES)}")
        if not self.temperature > 0:
            raise InputError("training temperature must be > 0")
        if self.threads is not None and self.threads < 1:
            raise InputError("training threads must be >= 1 when given")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["encoder"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["encoder"].items()}
        return out


@dataclass(frozen=True)
class EncodeSettings:
    """How latents are computed: which model (default: the archive's current one), batch, device."""

    model: str | None = None
    batch_size: int = 64
    device: str = "auto"
    force: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError("encode batch_size must be >= 1")
        if self.device not in DEVICES:
            raise InputError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")


def preset(name: str) -> TrainSettings:
    """The named preset (one of :data:`PRESETS`).

    Examples
    --------
    >>> preset("paper").encoder.backbone, preset("paper").learning_rate, preset("paper").encoder.invariant
    ('resnet152', 0.0001, False)
    >>> preset("cpu").encoder.input_size, preset("cpu").encoder.invariant, preset("default").objective
    (64, True, 'contrastive')
    >>> preset("cpu").epochs, preset("cpu-vae").epochs
    (4, 20)
    """
    if name == "paper":
        return TrainSettings()
    if name in ("default", "contrastive"):
        return TrainSettings(encoder=EncoderSettings(invariant=True), objective="contrastive", batch_size=64)
    if name == "vae":
        return TrainSettings(encoder=EncoderSettings(invariant=True))
    if name == "cpu":
        return replace(preset("cpu-vae"), objective="contrastive", batch_size=64, epochs=CPU_EPOCHS)
    if name in ("cpu-vae", "cpu-paper"):
        return TrainSettings(
            encoder=EncoderSettings(backbone="small", input_size=64, latent_dim=64, decoder_width=64,
                                    small_widths=(16, 32, 64, 128), small_blocks=(1, 1, 1, 1),
                                    invariant=name == "cpu-vae"),
            epochs=20, batch_size=32, learning_rate=1e-3,
        )
    raise InputError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")


def encoder_from_dict(values: dict[str, Any], base: EncoderSettings | None = None, source: str = "settings") -> EncoderSettings:
    base = base or EncoderSettings()
    _check_keys(values, {f.name for f in fields(EncoderSettings)}, f"{source} (encoder)")
    return replace(base, **values)


def apply_overrides(settings: TrainSettings, values: dict[str, Any], source: str = "settings") -> TrainSettings:
    """``settings`` with the fields of ``values`` replaced (``encoder`` may be a nested mapping)."""
    values = dict(values)
    values.pop("preset", None)
    encoder = values.pop("encoder", None) or {}
    if not isinstance(encoder, dict):
        raise InputError(f"{source}: 'encoder' must be a mapping of encoder fields")
    _check_keys(values, {f.name for f in fields(TrainSettings)} - {"encoder"}, source)
    try:
        return replace(settings, encoder=encoder_from_dict(encoder, settings.encoder, source), **values)
    except TypeError as err:
        raise InputError(f"{source}: {err}") from None


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML, JSON or TOML encoder settings file (a clear error when it is not one)."""
    return _read(path, "encoder", section="train")


def load_settings_file(path: str | Path, default_preset: str = DEFAULT_PRESET) -> TrainSettings:
    """Training settings from a YAML or JSON file: its ``preset`` (or ``default_preset``) plus its fields."""
    values = read_settings_file(path)
    return apply_overrides(preset(values.get("preset", default_preset)), values, source=f"encoder settings {path}")


def _check_keys(values: dict[str, Any], allowed: set[str], source: str) -> None:
    check_keys(values, allowed, source)
