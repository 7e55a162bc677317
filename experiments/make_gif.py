"""Regenerate docs/moons.gif: configs/moons.yaml trained by the library loop, recorded, rendered.

    python experiments/make_gif.py [--config configs/moons.yaml] [--out docs/moons.gif]

The run is the CLI's (same config, seed, data and loop), trained twice: once
plain and once with a TrainingRecorder snapshotting the model on the planned
epochs, so the script can say what the animation costs. The GIF opens with
the untrained model (epoch 0) and ends on the last epoch.
"""

import argparse
import time
from pathlib import Path

from micronet.animate import recorder_for
from micronet.config import load_config
from micronet.loop import Plan, config_loss, make_executor, new_state, run_epochs
from micronet.predict import softmax
from micronet.train import load_run_data

ROOT = Path(__file__).resolve().parent.parent


def train(config, data, recorder=None):
    """Train `config` on `data`; with a recorder, snapshot as the trainer would. Returns (CPU, wall) seconds."""
    import micronet.plot  # noqa: F401  (a run imports matplotlib for its PNGs anyway: not the GIF's cost)

    state = new_state(config, data)
    executor = make_executor(state.model, config_loss(config), config.training.backend, data.feature_count)
    predict = lambda grid: softmax(executor.logits(grid))  # noqa: E731
    on_epoch = None
    if recorder is not None:
        recorder.snapshot(0, predict)
        on_epoch = lambda s, row: recorder.on_epoch(s.epoch, row, predict)  # noqa: E731
    start, wall = time.process_time(), time.perf_counter()
    run_epochs(Plan.from_config(config), data, state, executor, on_epoch=on_epoch)
    return time.process_time() - start, time.perf_counter() - wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "moons.yaml"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "moons.gif"))
    args = parser.parse_args()
    config = load_config(args.config)
    data = load_run_data(config)
    plain = train(config, data)
    recorder = recorder_for(config.task, data.X_train, data.y_train, config.training.epochs, X_test=data.X_test,
                            y_test=data.y_test, class_names=data.class_names)
    recorded = train(config, data, recorder)
    start, wall = time.process_time(), time.perf_counter()
    recorder.render(args.out)
    render = time.process_time() - start, time.perf_counter() - wall
    frames = len(recorder.frame_epochs())
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {frames} frames, {size / 1024:.0f} KiB")
    for i, clock in enumerate(("CPU", "wall-clock")):
        print(f"{clock} seconds: training {plain[i]:.2f} plain, {recorded[i]:.2f} with snapshots; rendering "
              f"{render[i]:.2f}; the animation's extra cost {recorded[i] - plain[i] + render[i]:.2f}")


if __name__ == "__main__":
    main()
