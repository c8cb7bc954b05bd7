"""ImageNet weights: a torchvision state dict goes into every branch; bad files are refused."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torchvision

from sedarchive.errors import InputError
from sedarchive.features.model import GrainVAE
from sedarchive.features.settings import EncoderSettings
from sedarchive.features.weights import load_imagenet_weights

SETTINGS = EncoderSettings(backbone="resnet18", input_size=32, latent_dim=8, decoder_width=32, n_layers=2)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def test_weights_go_into_every_branch(resnet18_file):
    model = GrainVAE(SETTINGS)
    n = load_imagenet_weights(model, resnet18_file)
    reference = torch.load(resnet18_file, weights_only=True)
    assert n == len([k for k in reference if not k.startswith("fc.")])
    for branch in model.branches:
        state = branch.state_dict()
        assert torch.equal(state["conv1.weight"], reference["conv1.weight"])
        assert torch.equal(state["layer4.1.bn2.running_var"], reference["layer4.1.bn2.running_var"])


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_imagenet_weights(GrainVAE(SETTINGS), tmp_path / "resnet18.pth")


def test_other_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(InputError, match="does not fit a torchvision resnet18"):
        load_imagenet_weights(GrainVAE(SETTINGS), path)


def test_wrong_shape_is_refused(tmp_path, resnet18_file):
    state = torch.load(resnet18_file, weights_only=True)
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "bent.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match="conv1.weight has shape"):
        load_imagenet_weights(GrainVAE(SETTINGS), path)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content", [b"not a torch file at all", b""])
def test_garbage_is_refused(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a loadable torch state dict"):
        load_imagenet_weights(GrainVAE(SETTINGS), path)


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, path)
    with pytest.raises(InputError, match="not a loadable torch state dict"):
        load_imagenet_weights(GrainVAE(SETTINGS), path)
    assert "must never run" not in capsys.readouterr().out


def test_small_backbone_takes_no_imagenet_weights(resnet18_file):
    model = GrainVAE(replace(SETTINGS, backbone="small"))
    with pytest.raises(InputError, match="need a torchvision backbone"):
        load_imagenet_weights(model, resnet18_file)
