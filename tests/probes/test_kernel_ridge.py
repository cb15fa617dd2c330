"""The closed-form ridge readout: blocks of features, each weighed the same, regressed in kernel form."""

import pytest
import torch

from bevjepa.probes.kernel_ridge import KernelRidge


def test_a_linear_function_is_recovered():
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(20, 3, generator=generator)
    train, held_out = torch.randn(200, 20, generator=generator), torch.randn(50, 20, generator=generator)
    fitted = KernelRidge(ridge=1e-4).fit([train], train @ weights + 3.0)
    error = fitted.predict([held_out]) - (held_out @ weights + 3.0).double()
    assert error.abs().max() < 0.05


def test_a_block_weighs_the_same_whatever_its_scale():
    generator = torch.Generator().manual_seed(1)
    first, second = torch.randn(60, 8, generator=generator), torch.randn(60, 3, generator=generator)
    targets = first[:, 0] + second[:, 1]
    plain = KernelRidge().fit([first, second], targets).predict([first[:10], second[:10]])
    scaled = KernelRidge().fit([1000 * first, second], targets).predict([1000 * first[:10], second[:10]])
    torch.testing.assert_close(plain, scaled)


def test_features_without_spread_predict_the_mean_target():
    targets = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    fitted = KernelRidge().fit([torch.ones(3, 4)], targets)
    torch.testing.assert_close(fitted.predict([torch.zeros(2, 4)]).float(), torch.tensor([[3.0, 6.0]] * 2))
    single = KernelRidge().fit([torch.randn(1, 4)], targets[:1])
    torch.testing.assert_close(single.predict([torch.randn(2, 4)]).float(), targets[:1].expand(2, -1))


def test_bad_settings_and_shapes_are_refused():
    with pytest.raises(ValueError, match="ridge"):
        KernelRidge(ridge=0.0)
    with pytest.raises(ValueError, match="one row per target"):
        KernelRidge().fit([torch.randn(4, 2)], torch.randn(5))
