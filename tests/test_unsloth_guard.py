"""Guard the GPU path: the kit's Unsloth calls must fit the installed unsloth, without a GPU.

Unsloth's loaders need CUDA, so CI never runs them. Instead a subprocess imports unsloth through
its CPU test switch (``UNSLOTH_ALLOW_CPU=1``; the import writes ``unsloth_compiled_cache/`` into
its working directory, so it runs in a temporary one) and reports the signatures and source facts
the kit relies on. Checked: every keyword ``backbone.py`` passes to ``FastVisionModel`` exists as a
named parameter (not merely swallowed by ``**kwargs``), the PEFT calls made afterwards exist, the
adapter Unsloth creates is PEFT's ``"default"``, unsloth's generate keeps Qwen2.5-VL's
``mm_token_type_ids``, the pinned versions meet unsloth's own requirements, and ``Backbone.role``'s
Unsloth hook (real ``for_inference``/``for_training`` on the tiny model) re-arms checkpointing.
Not checkable here: what Unsloth's loaders and kernels do on a GPU (memory, speed, numerics).
"""

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest

from evolmm_lib import backbone as bb
from evolmm_lib.config import EvoLMMConfig

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("unsloth") is None,
    reason="unsloth is not installed: pip install -r requirements/gpu.txt (make test does so unless GPU_EXTRA=0)",
)

# The PEFT methods backbone.py calls on the model Unsloth returns -> positional arguments it passes.
PEFT_CALLS = {"add_adapter": 2, "set_adapter": 1, "delete_adapter": 1, "disable_adapter": 0}

PROBE = textwrap.dedent(
    """
    import inspect, json, re
    from importlib.metadata import requires, version
    import peft
    import unsloth
    from unsloth import FastVisionModel
    from unsloth.models import vision

    def named(fn):
        ps = inspect.signature(fn).parameters.values()
        return {"named": [p.name for p in ps if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)],
                "var_kw": any(p.kind is p.VAR_KEYWORD for p in ps)}

    base_src = inspect.getsource(vision.FastBaseModel.get_peft_model)
    out = {
        "unsloth": version("unsloth"), "unsloth_zoo": version("unsloth_zoo"),
        "from_pretrained": named(FastVisionModel.from_pretrained),
        "get_peft_model": named(FastVisionModel.get_peft_model),
        "get_peft_model_src": inspect.getsource(FastVisionModel.get_peft_model),
        "base_get_peft_model": named(vision.FastBaseModel.get_peft_model),
        "for_training": named(FastVisionModel.for_training),
        "for_inference": named(FastVisionModel.for_inference),
        "peft_calls_in_unsloth": re.findall(r"_get_peft_model\\(([^)]*)\\)", base_src),
        "uses_peft_get_peft_model": vision._get_peft_model is peft.get_peft_model,
        "peft_default_adapter": inspect.signature(peft.get_peft_model).parameters["adapter_name"].default,
        "generate_src": inspect.getsource(vision.unsloth_base_fast_generate),
        "peft_methods": {m: named(getattr(peft.PeftModel, m)) for m in
                         ("add_adapter", "set_adapter", "delete_adapter", "disable_adapter", "save_pretrained")
                         if hasattr(peft.PeftModel, m)},
        "peft_sets_active_adapter": "self.active_adapter = " in inspect.getsource(peft.PeftModel),
        "requires": requires("unsloth"),
    }
    from transformers import Qwen2_5_VLForConditionalGeneration as QwenVL
    keeps = getattr(vision, "_unsloth_generate_accepts_kwarg", None)
    out["generate_keeps_mm_token_type_ids"] = (
        keeps(QwenVL, "mm_token_type_ids") if keeps else "mm_token_type_ids" not in out["generate_src"])
    print("PROBE" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("unsloth_cwd")
    env = dict(os.environ, UNSLOTH_ALLOW_CPU="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE")), None)
    assert proc.returncode == 0 and line, f"importing unsloth with UNSLOTH_ALLOW_CPU=1 failed:\n{proc.stderr[-4000:]}"
    return json.loads(line[len("PROBE"):])


def _configs():
    base = EvoLMMConfig()
    return [base, base.replace(update="full"), base.replace(update="qlora", load_in_4bit=True)]


def _missing(kwargs: dict, sig: dict) -> list[str]:
    return sorted(set(kwargs) - set(sig["named"]))


def test_from_pretrained_names_every_keyword_the_kit_passes(probe):
    for config in _configs():
        kwargs = bb.unsloth_load_kwargs(config, {"": 0})  # with the placement's device_map, as on a GPU
        assert "device_map" in kwargs
        assert not _missing(kwargs, probe["from_pretrained"]), (
            f"FastVisionModel.from_pretrained (unsloth {probe['unsloth']}) has no parameter(s) "
            f"{_missing(kwargs, probe['from_pretrained'])}; its **kwargs would pass them to "
            "transformers silently")
    assert probe["from_pretrained"]["named"][0] == "model_name"  # the kit passes the model id positionally


def test_get_peft_model_forwards_to_a_signature_with_every_keyword(probe):
    # FastVisionModel.get_peft_model(model, *args, **kwargs) only forwards; follow it to FastBaseModel.
    direct = probe["get_peft_model"]
    if direct["var_kw"] and len(direct["named"]) == 1:
        assert "FastBaseModel.get_peft_model(model, *args, **kwargs)" in probe["get_peft_model_src"], (
            "FastVisionModel.get_peft_model no longer forwards plainly to FastBaseModel.get_peft_model: "
            "re-check where the kit's keywords go")
        target = probe["base_get_peft_model"]
    else:
        target = direct
    missing = _missing(bb.unsloth_peft_kwargs(EvoLMMConfig()), target)
    assert not missing, f"get_peft_model (unsloth {probe['unsloth']}) has no parameter(s) {missing}"


def test_unsloth_lora_is_peft_default_adapter(probe):
    # backbone._add_lora_unsloth copies peft_config["default"] into the solver/proposer adapters.
    assert probe["uses_peft_get_peft_model"]
    assert probe["peft_default_adapter"] == "default"
    assert probe["peft_calls_in_unsloth"], "unsloth no longer calls peft.get_peft_model"
    assert all("adapter_name" not in call for call in probe["peft_calls_in_unsloth"])


def test_for_training_and_generate_hook_match_what_the_kit_relies_on(probe):
    # backbone._unsloth_rearm_training calls FastVisionModel.for_training(model) with no keywords;
    # it never calls for_inference itself because unsloth's generate wrapper does.
    for name in ("for_training", "for_inference"):
        sig = probe[name]
        assert sig["named"] and sig["named"][0] == "model", name
    assert set(probe["for_training"]["named"][1:]) <= {"use_gradient_checkpointing"}
    assert "FastBaseModel.for_inference(self)" in probe["generate_src"]


def test_unsloth_generate_keeps_qwen_mm_token_type_ids(probe):
    # unsloth's generate drops mm_token_type_ids where the model does not take it; Qwen2.5-VL needs it
    # for its image positions, and the kit's teacher-forced log-probs pass it, so rollouts must too.
    assert probe["generate_keeps_mm_token_type_ids"] is True


def test_peft_methods_called_after_get_peft_model_exist(probe):
    methods = probe["peft_methods"]
    for name, n_args in PEFT_CALLS.items():
        assert name in methods, f"peft.PeftModel.{name} is gone"
        params = methods[name]["named"][1:]  # drop self
        assert len(params) >= n_args, f"PeftModel.{name} takes fewer arguments than the kit passes"
    assert "selected_adapters" in methods["save_pretrained"]["named"]
    assert probe["peft_sets_active_adapter"]  # Backbone.role reads model.active_adapter


def test_pinned_versions_satisfy_unsloths_requirements(probe):
    from importlib.metadata import version

    from packaging.requirements import Requirement

    bad = []
    for spec in probe["requires"]:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = version(req.name)
        except Exception:
            bad.append(f"{req} (not installed)")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            bad.append(f"{req} (installed {installed})")
    assert not bad, f"unsloth {probe['unsloth']} requirements not met: {bad}"


def test_pip_check_has_no_conflict_on_the_training_stack():
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    watched = ("unsloth", "transformers", "trl", "peft", "torch", "accelerate", "datasets")
    conflicts = [ln for ln in proc.stdout.splitlines() if any(w in ln.lower().replace("_", "-") for w in watched)]
    assert not conflicts, "pip check:\n" + "\n".join(conflicts)


def test_kit_keywords_are_the_ones_backbone_uses():
    # The loaders must route through the exposed keyword functions (so the checks above see the real calls).
    assert "unsloth_load_kwargs(config, place(model_id, config).device_map)" in inspect.getsource(bb._load_unsloth)
    assert "unsloth_peft_kwargs(config)" in inspect.getsource(bb._add_lora_unsloth)


HOOK_PROBE = textwrap.dedent(
    """
    import json, torch
    from unsloth import FastVisionModel
    from evolmm_lib.backbone import load_backbone

    torch.set_num_threads(1)
    bb = load_backbone("tiny", backend="transformers")  # Unsloth's own loader needs CUDA
    bb.backend = "unsloth"  # so Backbone.role runs its Unsloth hook with the real unsloth calls
    m = bb.model
    m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    gc = lambda: sorted({x.gradient_checkpointing for x in m.modules() if hasattr(x, "gradient_checkpointing")})
    FastVisionModel.for_inference(m)  # what unsloth's generate wrapper leaves behind
    out = {"after_generate": gc()}
    with bb.role("proposer") as model:
        out["in_role"] = gc()
        out["training"] = model.training
        out["padding_side"] = bb.tokenizer.padding_side
        out["active"] = model.active_adapter
    out["after_role"] = model.active_adapter
    print("PROBE" + json.dumps(out))
    """
)


@pytest.mark.slow
def test_role_rearms_gradient_checkpointing_after_unsloth_generate(tmp_path, repo_root):
    env = dict(os.environ, UNSLOTH_ALLOW_CPU="1", HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", HOOK_PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE")), None)
    assert proc.returncode == 0 and line, proc.stderr[-4000:]
    out = json.loads(line[len("PROBE"):])
    assert out["after_generate"] == [False]  # for_inference switched checkpointing off ...
    assert out["in_role"] == [True]  # ... and entering a role switched it back on
    assert out["training"] is False  # the caller's eval mode is kept (load_backbone leaves the model in eval)
    assert out["padding_side"] == "left"  # for_training sets right padding; generation needs left
    assert out["active"] == "proposer" and out["after_role"] == "solver"
