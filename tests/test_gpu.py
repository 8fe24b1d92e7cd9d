"""CUDA checks, run by ``benchmarks/device_check.sh`` (``pytest -m gpu``; deselected in the default run),
and that script's CPU dry run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def cuda(test):
    """Marked ``gpu`` (deselected by default) and skipped where no CUDA device is visible."""
    test = pytest.mark.gpu(test)
    return pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test)


@cuda
def test_tiny_in_bf16_on_cuda_takes_one_step(tmp_path):
    """bf16 load on the GPU, one full step (Proposer, N Solver answers, update): finite loss, LoRA moved."""
    bb, rec, moved = _one_cuda_step(tmp_path, backend="transformers")
    assert bb.device.type == "cuda" and next(bb.model.parameters()).dtype == torch.bfloat16
    assert rec["skipped_updates"] == 0 and rec["loss_solver"] == rec["loss_solver"]
    assert moved


def _one_cuda_step(tmp_path, **overrides):
    """One full step of the tiny model on the GPU: the backbone, the record and whether the Solver's LoRA moved."""
    from conftest import make_images

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.images import ImagePool
    from evolmm_lib.trainer import EvoLMMTrainer

    cfg = EvoLMMConfig(**{"dtype": "bfloat16", "max_new_tokens_solver": 16, "max_new_tokens_proposer": 16,
                          "save_every": 0, "output_dir": str(tmp_path / "run"), "lr": 1e-3, **overrides})
    bb = load_backbone("tiny", config=cfg)
    before = [p.detach().clone() for p in bb.trainable_parameters("solver")]
    make_images(tmp_path / "img", 2)
    (rec,) = EvoLMMTrainer(bb, cfg, pool=ImagePool(str(tmp_path / "img"))).step()
    return bb, rec, any(not torch.equal(a, b) for a, b in zip(before, bb.trainable_parameters("solver")))


def _bitsandbytes_has_cuda() -> bool:
    try:
        import bitsandbytes as bnb

        w = torch.randn(64, 64, device="cuda", dtype=torch.bfloat16)
        bnb.functional.quantize_4bit(w, quant_type="nf4")
        return True
    except Exception:
        return False


@cuda
def test_qlora_on_cuda_takes_one_step(tmp_path):
    """update="qlora" through bitsandbytes' CUDA kernels (skipped when the carried build has none)."""
    if not _bitsandbytes_has_cuda():
        pytest.skip("bitsandbytes with CUDA kernels is not installed")
    _, rec, moved = _one_cuda_step(tmp_path, update="qlora", backend="transformers")
    assert rec["skipped_updates"] == 0 and rec["loss_solver"] == rec["loss_solver"] and moved


@cuda
def test_unsloth_backend_takes_one_step(tmp_path):
    """backend="unsloth" (the GPU default) loads, samples and updates (skipped when unsloth is not installed)."""
    try:
        import unsloth  # noqa: F401
    except Exception as exc:  # not carried, or not importable on this driver
        pytest.skip(f"unsloth not importable: {type(exc).__name__}: {exc}"[:200])
    _, rec, moved = _one_cuda_step(tmp_path, backend="unsloth")
    assert rec["skipped_updates"] == 0 and rec["loss_solver"] == rec["loss_solver"] and moved


@cuda
def test_random_7b_shape_generates_full_budget_in_bf16():
    """random:qwen2.5-vl-7b@2 on the GPU: real widths in bf16, N completions of exactly max_new_tokens."""
    from PIL import Image

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.rollout import sample_answers

    cfg = EvoLMMConfig(dtype="bfloat16", backend="transformers", max_new_tokens_solver=24, num_solver_samples=4)
    bb = load_backbone("random:qwen2.5-vl-7b@2", config=cfg)
    assert bb.model.config.text_config.hidden_size == 3584 and bb.device.type == "cuda"
    out = sample_answers(bb, Image.new("RGB", (448, 448), "white"), "How many bars are there?", cfg)
    assert [len(c) for c in out.generation.completion_ids] == [24] * 4
    # embedding + LM head alone are 2 x 152064 x 3584 bf16 values (2.2 GB)
    assert torch.cuda.max_memory_allocated() > 2 * 152064 * 3584 * 2


@cuda
def test_bf16_batched_and_sequential_updates_agree_on_cuda():
    """The batched update's per-row log-probs equal row-by-row ones in bf16 on the GPU (padding does not leak)."""
    from PIL import Image

    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.logprobs import completion_logprobs_and_kl, reference_outputs, teacher_forced_batch
    from evolmm_lib.rollout import sample_answers

    cfg = EvoLMMConfig(dtype="bfloat16", backend="transformers", max_new_tokens_solver=12, num_solver_samples=3)
    bb = load_backbone("tiny", config=cfg)
    gen = sample_answers(bb, Image.new("RGB", (112, 112), "white"), "How many?", cfg).generation
    batch = teacher_forced_batch(gen)
    singles = [teacher_forced_batch(gen, [r]) for r in range(len(gen))]
    refs = [reference_outputs(bb, b) for b in [batch, *singles]]
    with torch.no_grad(), bb.role("solver") as model:
        all_rows, _ = completion_logprobs_and_kl(model, batch, refs[0], cfg.kl_chunk_size)
        for r, one in enumerate(singles):
            lp, _ = completion_logprobs_and_kl(model, one, refs[r + 1], cfg.kl_chunk_size)
            n = int(one.completion_mask.sum())
            a = all_rows[r][batch.completion_mask[r].bool()][:n].float()
            b = lp[0][one.completion_mask[0].bool()][:n].float()
            assert torch.allclose(a, b, atol=0.1), (r, (a - b).abs().max())


@pytest.mark.slow
def test_device_check_cpu_dry_run_prints_the_table(tmp_path):
    """DEVICE_CHECK_CPU=1 runs every stage of the device check on the CPU and prints one row per mode."""
    env = {**os.environ, "DEVICE_CHECK_CPU": "1", "DEVICE_CHECK_MODEL": "tiny", "DEVICE_CHECK_OUT": str(tmp_path),
           "DEVICE_CHECK_WHEELS": str(tmp_path / "no-wheels"),
           "PYTHON": os.environ.get("PYTHON", __import__("sys").executable)}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "device_check.sh")], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "device: none (CPU)" in proc.stdout
    table = (tmp_path / "table.txt").read_text()
    assert all(f"tiny kit {mode} " in table for mode in ("sequential", "batched", "batched-b4"))
    assert "peak MiB" in table and "est MiB" in table
    assert (tmp_path / "log.txt").is_file()


@cuda
def test_one_process_loads_onto_one_gpu_with_a_one_entry_device_map():
    """One process, tiny model: the placement puts it whole on cuda:0 (accelerate's prepare accepts the map)."""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig

    bb = load_backbone("tiny", config=EvoLMMConfig(backend="transformers", dtype="bfloat16"))
    base = bb.model.get_base_model()
    assert bb.device == torch.device("cuda", 0)
    assert len(getattr(base, "hf_device_map", {"": 0})) == 1


@cuda
def test_a_distributed_rank_loads_onto_its_own_gpu(monkeypatch):
    """Under a launcher (WORLD_SIZE > 1) rank r loads onto cuda:r, never device_map='auto'."""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig

    rank = min(1, torch.cuda.device_count() - 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", str(rank))
    bb = load_backbone("tiny", config=EvoLMMConfig(backend="transformers", dtype="bfloat16"))
    assert bb.device == torch.device("cuda", rank)
    assert getattr(bb.model.get_base_model(), "hf_device_map", {"": rank}) == {"": rank}


@cuda
def test_a_model_larger_than_the_visible_gpus_is_refused_before_any_weight_is_built():
    """random:qwen2.5-vl-72b in bf16 (137 GiB of weights) on one GPU: one line, nothing allocated."""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.errors import UserError

    if torch.cuda.device_count() > 1:
        pytest.skip("several GPUs: the 72B would be spread over them")
    torch.cuda.reset_peak_memory_stats()
    with pytest.raises(UserError, match="does not fit") as e:
        load_backbone("random:qwen2.5-vl-72b", config=EvoLMMConfig(backend="transformers", dtype="bfloat16"))
    assert "\n" not in str(e.value)
    assert torch.cuda.max_memory_allocated() < 1 * 1024**3
