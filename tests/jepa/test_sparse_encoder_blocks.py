"""The CenterPoint-style (basicblock) sparse backbone: mmdetection3d's layer names, depth and stride."""

import torch
from jepa_scenes import IN_CHANNELS, SCENE_GRID, make_batch

from bevjepa.encoders import CENTERPOINT_ENCODER_CHANNELS, CENTERPOINT_ENCODER_PADDINGS, SparseBEVEncoder
from bevjepa.encoders.sparse_backbone import SparseBackbone3d
from bevjepa.grid import BevGrid


def test_centerpoint_layout_on_the_nuscenes_grid():
    backbone = SparseBackbone3d(
        in_channels=5,
        sparse_shape=BevGrid().sparse_shape,
        encoder_channels=CENTERPOINT_ENCODER_CHANNELS,
        encoder_paddings=CENTERPOINT_ENCODER_PADDINGS,
        block_type="basicblock",
    )
    # 41 -> 21 -> 11 -> 5 height layers through the stages, 2 after conv_out: 256 BEV channels, as CenterPoint.
    assert backbone.output_depth == 2 and backbone.bev_channels == 256
    shapes = {name: tuple(p.shape) for name, p in backbone.state_dict().items()}
    # Names and spconv weight layouts (out, k, k, k, in) of mmdetection3d's SparseEncoder(block_type='basicblock').
    assert shapes["conv_input.0.weight"] == (16, 3, 3, 3, 5)
    assert shapes["encoder_layers.encoder_layer1.0.conv1.weight"] == (16, 3, 3, 3, 16)
    assert shapes["encoder_layers.encoder_layer1.1.bn2.running_var"] == (16,)
    assert shapes["encoder_layers.encoder_layer1.2.0.weight"] == (32, 3, 3, 3, 16)
    assert shapes["encoder_layers.encoder_layer3.2.1.weight"] == (128,)
    assert shapes["encoder_layers.encoder_layer4.1.conv2.weight"] == (128, 3, 3, 3, 128)
    assert "encoder_layers.encoder_layer4.2.0.weight" not in shapes  # the last stage does not downsample
    assert shapes["conv_out.0.weight"] == (128, 3, 1, 1, 128)


def test_basicblock_encoder_forward_and_backward():
    torch.manual_seed(0)
    encoder = SparseBEVEncoder(
        SCENE_GRID,
        IN_CHANNELS,
        embed_dim=16,
        bev_channels=16,
        base_channels=8,
        encoder_channels=((8, 16), (16, 16, 32), (32, 32, 32), (32,)),
        encoder_paddings=((0, 1), (0, 0, 1), (0, 0, (0, 1, 1)), (1,)),
        sparse_output_channels=16,
        block_type="basicblock",
    )
    batch = make_batch(seed=0, batch_size=2)
    out = encoder(batch.voxels)
    assert out.shape == (2, 16, *SCENE_GRID.bev_shape)
    out.square().mean().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_basicblock_stage_must_keep_its_width():
    try:
        SparseBackbone3d(
            4,
            SCENE_GRID.sparse_shape,
            encoder_channels=((16, 32), (32,)),
            encoder_paddings=((0, 0), (1,)),
            base_channels=8,
            block_type="basicblock",
        )
    except ValueError as error:
        assert "keeps its input width" in str(error)
    else:
        raise AssertionError("a basicblock that changes width must be refused")


def test_norm_momentum_reaches_every_batch_norm():
    encoder = SparseBEVEncoder(
        SCENE_GRID,
        IN_CHANNELS,
        block_type="basicblock",
        norm_momentum=0.1,
        encoder_channels=((16, 16), (16, 32), (32, 32), (32,)),
        encoder_paddings=((0, 1), (0, 1), (0, (0, 1, 1)), (0,)),
    )
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 1 + 2 * 4 + 3 + 1 + 2  # input, 4 basic blocks, 3 downsamples, conv_out, 2 BEV blocks
    assert all(m.momentum == 0.1 and m.eps == 1e-3 for m in norms)
