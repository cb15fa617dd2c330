"""Every YAML in configs/ parses and instantiates through the bevjepa CLI (no training)."""

from pathlib import Path

import pytest

from bevjepa.cli import BevJepaCLI

# configs/probe/ and configs/plan/ hold tools/probe.py and tools/plan.py settings, not CLI configs (their
# tools' tests check them).
TOOL_CONFIG_FOLDERS = ("probe", "plan")
CONFIGS = sorted(
    path
    for path in (Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml")
    if path.parent.name not in TOOL_CONFIG_FOLDERS
)


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_instantiates(config, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    cli = BevJepaCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        run=False,
        args=["--config", str(config), "--trainer.logger=false"],
    )
    assert cli.model is not None and cli.datamodule is not None
    assert cli.model.encoder.grid == cli.datamodule.grid, "the grid is linked from data to model"
