"""The fine-tune method table is the one list of methods: config validation, the CLI, the Train form and
the estimates read it, and it (with core.config) loads without torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core import config, finetune
from core.cli import build_parser
from core.config import TrainConfig
from dashboard import train_form as tf

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # `-c` puts the cwd first on sys.path


def test_config_and_the_table_load_without_torch() -> None:
    out = _run("""
        import sys
        import core.config, core.finetune, dashboard.train_form
        print(sorted(m for m in ("torch", "peft", "transformers") if m in sys.modules))
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_reader_lists_the_table_in_its_order() -> None:
    names = list(finetune.METHODS)
    assert list(config.METHODS) == names == list(tf.METHODS)
    parser = build_parser()
    for name in names:
        assert vars(parser.parse_args(["train", "--data", "x.csv", "--method", name]))["train.method"] == name
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "x.csv", "--method", "magic"])
    for task in config.TASKS:
        assert config.DEFAULT_LR[task] == {n: m.lr[task] for n, m in finetune.METHODS.items()}
    for name, m in finetune.METHODS.items():
        assert tf.method_help(name) == m.help
        assert tf.default_lr("image", name) == m.lr["image"] == TrainConfig(method=name).learning_rate("image")


def test_method_parameter_defaults_are_config_fields() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for m in finetune.METHODS.values():
        for name, value in m.params.items():
            assert defaults[name] == value, (m.name, name)


def test_a_new_entry_reaches_validation_the_cli_the_form_and_the_estimates() -> None:
    # A fresh interpreter: the table is read once, when core.config is first imported.
    out = _run("""
        from types import MappingProxyType
        from core import finetune

        extra = finetune.HeadMethod("probe2", "Another probe", "a second probe", "trains a probe again",
                                    lr={"text": 1e-3, "image": 2e-3}, frozen_backbone=True)
        finetune.METHODS = MappingProxyType({**finetune.METHODS, "probe2": extra})

        from core.cli import build_parser
        from core.config import TrainConfig
        from core.train.resources import estimate_train_memory
        from dashboard import train_form as tf

        assert TrainConfig(method="probe2").learning_rate("text") == 1e-3
        assert "probe2" in TrainConfig.__dataclass_fields__["method"].metadata["help"]
        assert build_parser().parse_args(["train", "--data", "x.csv", "--method", "probe2"])
        assert "probe2" in tf.METHODS and tf.method_help("probe2") == "trains a probe again"
        assert tf.build_config(source="x.csv", task="text", model="minilm", method="probe2").train.method == "probe2"
        mem = estimate_train_memory("efficientnet_lite0", "image", method="probe2")
        assert mem.trainable == estimate_train_memory("efficientnet_lite0", "image", method="head").trainable
        print("ok")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_every_method_says_when_to_pick_it() -> None:
    from core.finetune import METHODS

    for name, method in METHODS.items():
        assert f"**{name}**" in method.when, name  # the Train page shows it while the method is chosen
