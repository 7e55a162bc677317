"""Command-line conventions a pip user expects: configs by name, informational flags, usage lines, a fast start."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from micronet import __version__
from micronet.config import config_to_dict, find_config, load_config, shipped_configs
from micronet.train import main

SHIPPED = {"blobs", "breast_cancer", "circles", "csv_iris", "digits", "iris", "moons", "wine"}
HEAVY = ("sklearn", "matplotlib", "tqdm")


def cli(args, cwd, program=("-m", "micronet.train")):
    return subprocess.run([sys.executable, *program, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_every_shipped_config_is_found_by_name_and_loads():
    shipped = shipped_configs()
    assert SHIPPED <= set(shipped)
    for name, path in shipped.items():
        assert find_config(name) == path == find_config(f"{name}.yaml")
        load_config(name)  # validates


def test_a_file_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "moons.yaml").write_text("name: mine\ntraining: {epochs: 1}\n")
    assert load_config("moons.yaml").name == "mine"
    assert load_config("moons").name == "moons"  # no file called plain `moons` here
    (tmp_path / "moons").mkdir()  # a directory is no config: the name still means the shipped one
    assert load_config("moons").name == "moons"


def test_an_unknown_name_suggests_the_closest_shipped_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["mons"]) == 2
    assert capsys.readouterr().err == "error: config file not found: 'mons'; did you mean the shipped config 'moons'?\n"


def test_the_shipped_csv_config_finds_its_data_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("csv_iris")
    assert Path(config.dataset.path).is_file() and Path(config.dataset.path).is_absolute()


def test_overrides_without_a_file_train_on_the_defaults(tmp_path, capsys):
    assert main(["dataset.name=iris", "model.hidden=[4]", "training.epochs=2", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    resolved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert resolved["dataset"]["name"] == "iris" and resolved["name"] == "run"


def test_print_config_prints_the_resolved_yaml_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["moons", "optimizer.lr=0.5", "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == config_to_dict(load_config("moons", ["optimizer.lr=0.5"]))
    assert list(tmp_path.iterdir()) == []
    assert main(["moons", "optimizer.lr=-1", "--print-config"]) == 2  # validated: a bad value is still an error
    assert "optimizer.lr must be a finite number > 0, got -1" in capsys.readouterr().err


def test_show_config_prints_the_shipped_file_with_its_comments(capsys):
    assert main(["--show-config", "moons"]) == 0
    assert capsys.readouterr().out == find_config("moons").read_text()


def test_list_configs_names_each_shipped_config_with_its_description(capsys):
    assert main(["--list-configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {line.split()[0] for line in lines} == set(shipped_configs())
    assert any(line.startswith("moons") and "half-moons" in line for line in lines)


def test_help_config_prints_the_config_reference(capsys):
    assert main(["--help-config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Config reference") and "training.early_stopping" in out or "`early_stopping`" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "error: give a config (a YAML file or a shipped name such as moons), KEY=VALUE overrides, or --resume"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
        (["moons", "--resume", "runs/x"], "error: --resume RUN_DIR takes no config"),
    ],
)
def test_a_usage_mistake_prints_the_usage_line_and_one_error_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: ")
    assert err[-1].startswith(message) and sum(line.startswith("error:") for line in err) == 1


@pytest.mark.parametrize("program, name", [(("-m", "micronet.train"), "python -m micronet.train"),
                                           (("-c", "import sys; from micronet.commands import train; "
                                                   "sys.argv[0] = 'micronet-train'; sys.exit(train())"),
                                            "micronet-train")])
def test_the_usage_line_names_the_program_as_it_was_started(program, name, tmp_path):
    proc = cli([], tmp_path, program)
    assert proc.returncode == 2 and proc.stderr.startswith(f"usage: {name} ")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["--list-configs"], ["--show-config", "moons"], ["moons", "--print-config"],
     ["moons", "optimizer.lr=-1"], ["nope.yaml"], ["--bogus"]],
)
def test_informational_commands_and_config_errors_never_import_heavy_libraries(args, tmp_path):
    probe = (
        "import sys\nfrom micronet.train import main\ntry:\n    status = main(sys.argv[1:])\n"
        "except SystemExit as e:\n    status = e.code\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}), file=sys.stderr)\nsys.exit(status)"
    )
    proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode in (0, 2)
    assert proc.stderr.splitlines()[-1] == "[]", proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_version_names_the_distribution(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f"(micronet-nn) {__version__}")


def test_the_package_ships_its_type_marker_and_license_metadata():
    root = Path(__file__).resolve().parents[1]
    assert (root / "micronet" / "py.typed").is_file()
    assert "MIT License" in (root / "LICENSE").read_text()
    from importlib.metadata import metadata

    meta = metadata("micronet-nn")
    assert meta["License-Expression"] == "MIT" and "LICENSE" in (meta.get_all("License-File") or [])
