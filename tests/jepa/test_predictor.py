"""The predictor: shapes, gradients, what it may read (known tokens only) and what conditions it."""

import pytest
import torch

from bevjepa.jepa.predictor import BEVPredictor, TargetKind, sincos_position_codes


def _predictor() -> BEVPredictor:
    torch.manual_seed(0)
    return BEVPredictor((4, 5), embed_dim=12, width=16, depth=2, num_heads=2, max_time_offset=3)


def _inputs(batch: int = 2):
    source = torch.randn(batch, 20, 12)
    known = torch.rand(batch, 20) > 0.4
    return source, known


def test_shapes_and_gradients():
    predictor = _predictor()
    source, known = _inputs()
    source.requires_grad_(True)
    actions = torch.randn(2, 4)
    out = (
        predictor(source, known, TargetKind.FUTURE, 2, actions)
        + predictor(source, known, TargetKind.OCCLUDED, 0)
        + predictor(source, known, TargetKind.FUTURE, 1)  # the ego's motion not given
    )
    assert out.shape == (2, 20, 12)
    out.square().mean().backward()
    for name, parameter in predictor.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert source.grad[known].abs().sum() > 0


def test_unknown_tokens_are_not_read():
    predictor = _predictor().eval()
    source, known = _inputs()
    changed = source.clone()
    changed[~known] = 100 * torch.randn_like(changed[~known])
    torch.testing.assert_close(
        predictor(source, known, TargetKind.MASKED_BLOCK, 0),
        predictor(changed, known, TargetKind.MASKED_BLOCK, 0),
    )
    changed_known = source.clone()
    changed_known[known] += torch.randn_like(changed_known[known])  # a change layer norm cannot remove
    assert not torch.allclose(
        predictor(source, known, TargetKind.MASKED_BLOCK, 0),
        predictor(changed_known, known, TargetKind.MASKED_BLOCK, 0),
    )


def test_conditioning_on_kind_time_and_actions():
    predictor = _predictor().eval()
    source, known = _inputs()
    actions = torch.tensor([[2.0, 0.0, 0.1, 4.0], [3.0, 1.0, 0.0, 6.0]])
    future = predictor(source, known, TargetKind.FUTURE, 1, actions)
    assert not torch.allclose(future, predictor(source, known, TargetKind.FUTURE, 2, actions))
    assert not torch.allclose(future, predictor(source, known, TargetKind.FUTURE, 1, actions.flip(0)))
    assert not torch.allclose(
        predictor(source, known, TargetKind.MASKED_BLOCK, 0), predictor(source, known, TargetKind.OCCLUDED, 0)
    )
    # Actions only condition future targets.
    torch.testing.assert_close(
        predictor(source, known, TargetKind.OCCLUDED, 0, actions),
        predictor(source, known, TargetKind.OCCLUDED, 0),
    )
    # A future step without actions is conditioned on the learned "not given" code, not on a zero action.
    unknown = predictor(source, known, TargetKind.FUTURE, 1)
    assert not torch.allclose(unknown, future)
    assert not torch.allclose(
        unknown, predictor(source, known, TargetKind.FUTURE, 1, torch.zeros_like(actions))
    )
    with pytest.raises(ValueError, match="time offset"):
        predictor(source, known, TargetKind.FUTURE, 4, actions)


def test_samples_do_not_mix():
    predictor = _predictor().eval()
    source, known = _inputs()
    alone = predictor(source[:1], known[:1], TargetKind.MASKED_BLOCK, 0)
    torch.testing.assert_close(
        predictor(source, known, TargetKind.MASKED_BLOCK, 0)[:1], alone, atol=1e-5, rtol=1e-5
    )


def test_position_codes_are_distinct():
    codes = sincos_position_codes((6, 7), 16)
    assert codes.shape == (42, 16)
    distances = torch.cdist(codes, codes) + torch.eye(42)
    assert distances.min() > 1e-3


def test_prediction_is_the_carried_source_plus_a_correction():
    predictor = _predictor().eval()
    source, known = _inputs()
    with torch.no_grad():
        predictor.output_projection.weight.zero_()
        predictor.output_projection.bias.fill_(0.5)
    prediction = predictor(source, known, TargetKind.FUTURE, 1, torch.randn(2, 4))
    normalised = torch.nn.functional.layer_norm(source, (12,))
    torch.testing.assert_close(prediction[known], normalised[known] + 0.5)
    torch.testing.assert_close(prediction[~known], torch.full_like(prediction[~known], 0.5))
