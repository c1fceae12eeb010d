"""The model catalog: torch-free to import, one family module per catalog line."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from core.models.catalog import FAMILIES


@pytest.mark.parametrize("module", ["core.models", "core.models.catalog"])
def test_importing_the_catalog_never_imports_torch(module: str) -> None:
    code = (f"import sys, {module}, core.models as m\n"
            "m.resolve_model_name(None, 'image'); m.family_of('resnet18', 'image')\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False False"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_module_answers_for_its_family(family: str) -> None:
    module = importlib.import_module(FAMILIES[family].module)
    for name in ("build", "save_parts", "load", "export_hf"):
        assert callable(getattr(module, name)), (family, name)
    classifiers = [c for c in vars(module).values()
                   if isinstance(c, type) and getattr(c, "family", None) == family]
    assert len(classifiers) == 1, (family, classifiers)


def test_the_package_still_names_what_callers_import() -> None:
    import core.models as models
    from core.models import build as build_module

    assert models.save_bundle is build_module.save_bundle
    for name in models.__all__:
        assert getattr(models, name) is not None, name
    with pytest.raises(AttributeError):
        models.no_such_name  # noqa: B018


def test_which_family_serves_a_name_is_read_from_the_family_table(monkeypatch):
    """A new family is one module plus one FAMILIES line: the line alone routes its names, and a
    name of the wrong task is refused with the family's own task."""
    import dataclasses

    from core.errors import ModelError
    from core.models import catalog

    assert [catalog.family_of(n, t) for n, t in [("minilm", "text"), ("resnet18", "image"),
                                                 ("torchvision:vit_b_16", "image"), ("org/x", "text"),
                                                 ("org/y", "image")]] == [
        "hf-text", "torchvision", "torchvision", "hf-text", "hf-image"]
    entry = dataclasses.replace(catalog.FAMILIES["torchvision"], claims=lambda name: name.startswith("mynet"))
    monkeypatch.setitem(catalog.FAMILIES, "mynet", entry)
    assert catalog.family_of("mynet-small", "image") == "mynet"
    with pytest.raises(ModelError, match="'mynet-small' is an image model but the dataset is text"):
        catalog.family_of("mynet-small", "text")
