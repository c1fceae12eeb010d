import pytest

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig, field_help
from core.errors import ConfigError


def test_round_trip_json():
    cfg = RunConfig(data=DataConfig(source="x.csv", max_samples=100),
                    model=ModelConfig(name="minilm", max_length=64),
                    train=TrainConfig(method="lora", lr=1e-4, seed=3))
    assert RunConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("kwargs, fragment", [
    ({"method": "magic"}, "method must be one of"),
    ({"epochs": 0}, "epochs must be between"),
    ({"lr": 5.0}, "lr must be in"),
    ({"device": "tpu"}, "device must be one of"),
    ({"warmup_ratio": 0.9}, "warmup_ratio"),
])
def test_invalid_train_values_are_rejected_with_the_field_name(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig(**kwargs)


def test_data_fractions_must_leave_training_data():
    with pytest.raises(ConfigError, match="at least 10%"):
        DataConfig(val_fraction=0.45, test_fraction=0.5)


def test_unknown_fields_in_json_are_named():
    with pytest.raises(ConfigError, match="Unknown TrainConfig field"):
        RunConfig.from_dict({"train": {"epocs": 3}})


def test_default_learning_rate_depends_on_method_and_task():
    assert TrainConfig(method="head").learning_rate("text") > TrainConfig(method="full").learning_rate("text")
    assert TrainConfig(lr=0.01).learning_rate("image") == 0.01


def test_every_field_has_help():
    for kind in (DataConfig, ModelConfig, TrainConfig):
        assert all(field_help(kind).values()), kind


def test_auto_epochs_scale_with_dataset_size():
    auto = TrainConfig()
    assert auto.epochs_for(7400) == 1      # big set: one pass keeps the default run short
    assert auto.epochs_for(2000) == 4
    assert auto.epochs_for(100) == 5       # tiny set: capped
    assert TrainConfig(epochs=2).epochs_for(100) == 2


def test_default_text_lr_shrinks_for_wide_encoders_but_not_for_adapters():
    full = TrainConfig(method="full")
    assert full.learning_rate("text", 768) == pytest.approx(full.learning_rate("text", 384) / 2)
    assert full.learning_rate("text", 128) == full.learning_rate("text", 384)
    lora = TrainConfig(method="lora")
    assert lora.learning_rate("text", 768) == lora.learning_rate("text", 384)
    assert TrainConfig(method="full", lr=3e-5).learning_rate("text", 768) == 3e-5


def test_the_seed_help_says_what_the_seed_does_and_the_split_does_not_follow_it() -> None:
    # Trust fixes, item 16: the help and README said the split used the run's seed; it uses split_seed.
    from pathlib import Path

    from core.config import DataConfig, TrainConfig, field_help

    assert "split_seed" in field_help(TrainConfig)["seed"] and "does not follow" in field_help(TrainConfig)["seed"]
    assert "fixed" in field_help(DataConfig)["split_seed"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "split with the run's seed" not in readme and "fixed split seed" in readme
