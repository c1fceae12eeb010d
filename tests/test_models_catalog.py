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
