"""``bevjepa`` command: the Lightning CLI (fit / validate / test / predict) over bevjepa's modules.

Configs name classes by their short names (``class_path: BoxOccupancyModule``); the DataModule's grid and
input channels are linked into the model, so a range or resolution is written once.
"""

from lightning.pytorch.cli import LightningCLI

# Imported so that configs can name their classes by short class_path names.
import bevjepa.jepa.module
import bevjepa.reconstruction
import bevjepa.supervised.box_occupancy  # noqa: F401
import datamodules.nuscenes
import datamodules.real_frame_datamodule  # noqa: F401


class BevJepaCLI(LightningCLI):
    """LightningCLI with bevjepa's links from data to model."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.init_args.grid", "model.init_args.grid", apply_on="parse")
        parser.link_arguments("data.in_channels", "model.init_args.in_channels", apply_on="instantiate")


def main(args: list[str] | None = None) -> None:
    """Run the CLI (``args`` defaults to ``sys.argv[1:]``)."""
    BevJepaCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
