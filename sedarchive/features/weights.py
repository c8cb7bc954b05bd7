"""ImageNet-pretrained branches: load a torchvision ResNet state dict file into every branch.

Nothing is downloaded: the file is given by the user (e.g. torchvision's
``resnet152-394f9c45.pth``, saved once on a machine with internet). It is read with
``torch.load(..., weights_only=True)``, so a file holding arbitrary pickled objects is refused.
"""
from __future__ import annotations

from pathlib import Path

import torch

from sedarchive.errors import InputError
from sedarchive.features.model import GrainVAE
from sedarchive.features.settings import TORCHVISION_BACKBONES


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict (name -> tensor) from a file, safely; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"weights file {path} is not a loadable torch state dict ({reason[:160]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError(f"weights file {path} does not hold a state dict of named tensors")
    return state


def load_imagenet_weights(model: GrainVAE, path: str | Path) -> int:
    """Copy a torchvision ResNet state dict into each branch of ``model``; returns the tensors copied.

    The classifier (``fc.*``) is dropped. Every other tensor of the branch must be in the file with
    the same shape, and the file may hold nothing else, or an :class:`InputError` names the first
    difference.
    """
    backbone = model.settings.backbone
    if backbone not in TORCHVISION_BACKBONES:
        raise InputError(f"weights file {path}: ImageNet weights need a torchvision backbone "
                         f"({', '.join(TORCHVISION_BACKBONES)}), this encoder uses {backbone!r}")
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("fc.")}
    expected = model.branches[0].state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"{len(missing)} missing (e.g. {missing[0]})" if missing else ""
        what += (", " if what else "") + (f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "")
        raise InputError(f"weights file {path} does not fit a torchvision {backbone}: {what} tensors")
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise InputError(f"weights file {path} does not fit a torchvision {backbone}: {name} has shape "
                             f"{tuple(state[name].shape)}, expected {tuple(tensor.shape)}")
    for branch in model.branches:
        branch.load_state_dict(state, strict=True)
    return len(expected)
