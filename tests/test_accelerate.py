"""Scale-out under `accelerate launch` with 2 CPU processes (gloo): DDP and FSDP2 against one process, resume.

Equality is checked on FIXED generations: each rank samples with its own generator, so a run cannot be
replayed by one process. The test records two "ranks'" generations once, then (a) 2 processes under the
engine update on them, rank k on its own, and (b) this process updates on both, written out from the
paper's definitions (the b/β chain over rank 0's rows then rank 1's, loss averaged over the W ranks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_images

from evolmm_lib.config import ROLES
UPDATES = {"lora": 1e-2, "full": 1e-3}  # update → lr of the equality test

# accelerate allows FSDP only on accelerators (GPU, XPU, ...); on CPU processes the worker switches the
# state to its FSDP2 path by hand, which then runs as on GPUs (gloo instead of NCCL).
ENGINE = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from evolmm_lib.distributed import Distributed, make_accelerator

    def distributed(engine):
        acc = make_accelerator()
        if engine == "fsdp":
            from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
            acc.state.fsdp_plugin = FullyShardedDataParallelPlugin(
                fsdp_version=2, auto_wrap_policy="transformer_based_wrap", reshard_after_forward=True)
            from accelerate.state import PartialState
            acc.state.distributed_type = PartialState().distributed_type = DistributedType.FSDP
        return Distributed(acc)

    def whole(p):
        return (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
""")

UPDATE = ENGINE + textwrap.dedent("""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.trainer import EvoLMMTrainer
    rec, dist = torch.load(sys.argv[1], weights_only=False), distributed(sys.argv[2])
    for conf in sys.argv[3:]:  # LoRA, then update=full, in the same process group
        cfg = EvoLMMConfig.from_yaml(conf)
        tr = EvoLMMTrainer(load_backbone(config=cfg), cfg, dist=dist)
        k = tr.dist.rank
        norms = [tr.solver.update(rec["solver"][k], rec["solver_rewards"][k]).grad_norm
                 for _ in range(2)]  # the second update sees KL > 0 and Adam's second moment
        norms.append(tr.proposer.update(rec["proposer"][k], [rec["proposer_rewards"][k]], [0]).grad_norm)
        out = {r: [whole(p) for p in tr.backbone.trainable_parameters(r)] for r in ("solver", "proposer")}
        out["chain"] = [x for u in (tr.solver, tr.proposer) for x in (u.baseline, u.beta)]
        out["grad_norms"] = norms
        tr.global_step = 1
        tr.save()  # under FSDP: gathered from the shards, written by rank 0
        opt_state = lambda t: [whole(v) for o in (t.solver.optimizer, t.proposer.optimizer)
                               for st in o.state_dict()["state"].values() for v in st.values()]
        again = EvoLMMTrainer(load_backbone(config=cfg), cfg, dist=dist)
        assert again.resume()
        out["resumed"] = {r: [whole(p) for p in again.backbone.trainable_parameters(r)] for r in ("solver", "proposer")}
        out["adam"], out["adam_resumed"] = opt_state(tr), opt_state(again)
        again.step()  # a whole step (generate included) on the resumed engine
        out["after_step"] = [whole(p) for p in again.backbone.trainable_parameters("solver")]
        torch.save(out, f"{cfg.output_dir}/rank{k}.pt")
""")

TRAIN = ENGINE + textwrap.dedent("""
    import os, signal
    from evolmm_lib.config import EvoLMMConfig
    from evolmm_lib.trainer import EvoLMMTrainer, train
    import evolmm_lib.trainer as trainer_module

    class Trainer(EvoLMMTrainer):  # what `train` builds, on the chosen engine
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw, dist=distributed(sys.argv[3]))
    trainer_module.EvoLMMTrainer = Trainer
    cfg, mode = EvoLMMConfig.from_yaml(sys.argv[1]), sys.argv[2]
    if mode == "straight-then-kill":
        train(cfg)  # the uninterrupted run
        step = Trainer.step
        def step_then_die(self):  # every process dies by SIGKILL after step 3 is logged (checkpoint-2 on disk)
            rec = step(self)
            if self.global_step == 3:
                self.dist.barrier()
                os.kill(os.getpid(), signal.SIGKILL)
            return rec
        Trainer.step = step_then_die
        train(cfg.replace(output_dir=cfg.output_dir + "-killed"))
    else:
        train(cfg.replace(output_dir=cfg.output_dir + "-killed"), resume=True)
""")


def launch(tmp_path: Path, script: str, *args: str, port: int) -> subprocess.CompletedProcess:
    """``accelerate launch`` 2 CPU processes: the multi-process launcher with no GPU visible, gloo."""
    path = tmp_path / f"worker_{port}.py"
    path.write_text(script)
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "ACCELERATE_USE_CPU": "true"}
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(port), str(path), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))


def small_config(tmp_path: Path, **kw):
    from evolmm_lib.config import EvoLMMConfig

    if not (tmp_path / "images").is_dir():
        make_images(tmp_path / "images", 8)
    base = dict(data_dir=str(tmp_path / "images"), output_dir=str(tmp_path / "run"), num_solver_samples=2,
                max_new_tokens_solver=6, max_new_tokens_proposer=6, save_every=0, lr=1e-2, lora_dropout=0.0)
    return EvoLMMConfig(**{**base, **kw})


def one_process_update(updater, gens, rewards, world_size: int) -> float:
    """One update on every rank's rows in this process, from the paper's definitions (the reference).

    Returns the gradient norm: AdamW's step hardly depends on the gradient's scale, the norm does.
    """
    from evolmm_lib.logprobs import teacher_forced_batch
    from evolmm_lib.policy import sequential_chain

    forward, cfg = updater.backbone.training_forward(updater.role), updater.config
    nll, kl = [], []
    with updater.backbone.role(updater.role) as model:  # backward inside: leaving the role freezes its adapter
        model.train()
        for gen in gens:
            batch = teacher_forced_batch(gen)
            logp, kl_tok = forward(batch, updater.role, cfg.kl_chunk_size)
            n_tok = batch.completion_mask.sum(1).clamp(min=1.0)
            nll += list(-logp.sum(1) / n_tok)
            kl += list(kl_tok.sum(1) / n_tok)
        flat = [r for rs in rewards for r in rs]
        b, beta, b_end, beta_end = sequential_chain(flat, [float(k.detach()) for k in kl], updater.baseline,
                                                    updater.beta, cfg)
        loss = sum((r - bi) * n + be * k for r, bi, be, n, k in zip(flat, b, beta, nll, kl)) / world_size
        loss.backward()
        model.eval()
    norm = float(torch.nn.utils.clip_grad_norm_(updater.params, cfg.grad_clip))
    updater.optimizer.step()
    updater.optimizer.zero_grad(set_to_none=True)
    updater.baseline, updater.beta = b_end, beta_end
    return norm


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two ranks' generations (Solver N=2 and one Proposer question each), fixed rewards, and the reference."""
    from evolmm_lib.backbone import load_backbone
    from evolmm_lib.images import load_image
    from evolmm_lib.rollout import propose_questions, sample_answers
    from evolmm_lib.trainer import EvoLMMTrainer

    tmp = tmp_path_factory.mktemp("recorded")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: float sums in the same order, or AdamW's near-zero steps differ
    cfg = small_config(tmp)
    backbone = load_backbone(config=cfg)
    images = [load_image(p) for p in sorted((tmp / "images").iterdir())[:2]]
    torch.manual_seed(0)
    rec = {"solver": [sample_answers(backbone, im, "What colour is the square?", cfg).generation for im in images],
           "proposer": [propose_questions(backbone, [im], cfg)[1] for im in images],
           "solver_rewards": [[0.9, 0.2], [0.4, 0.7]], "proposer_rewards": [0.6, 0.1]}
    torch.save(rec, tmp / "recorded.pt")
    references = {}
    for update, lr in UPDATES.items():  # one process: nothing wrapped
        tr = EvoLMMTrainer(load_backbone(config=cfg.replace(update=update, lr=lr)), cfg.replace(update=update, lr=lr))
        norms = [one_process_update(tr.solver, rec["solver"], rec["solver_rewards"], 2) for _ in range(2)]
        norms.append(one_process_update(tr.proposer, rec["proposer"], [[r] for r in rec["proposer_rewards"]], 2))
        ref = {r: [p.detach().clone() for p in tr.backbone.trainable_parameters(r)] for r in ROLES}
        ref["chain"] = [x for u in (tr.solver, tr.proposer) for x in (u.baseline, u.beta)]
        ref["grad_norms"] = norms
        references[update] = ref
    torch.set_num_threads(threads)
    yield tmp, cfg, references


@pytest.mark.slow
@pytest.mark.parametrize("engine,port", [("ddp", 29517), ("fsdp", 29518)])
def test_engine_update_equals_one_process_on_both_ranks_rows(recorded, engine, port):
    from safetensors.torch import load_file

    tmp, cfg, references = recorded
    confs = {}
    for update, lr in UPDATES.items():
        (tmp / engine / update).mkdir(parents=True)
        confs[update] = cfg.replace(output_dir=str(tmp / engine / update), update=update, lr=lr).save_yaml(
            tmp / f"{engine}-{update}.yaml")
    r = launch(tmp, UPDATE, str(tmp / "recorded.pt"), engine, *map(str, confs.values()), port=port)
    assert r.returncode == 0, r.stderr[-3000:]
    for update, lr in UPDATES.items():
        out, reference = tmp / engine / update, references[update]
        ranks = [torch.load(out / f"rank{k}.pt") for k in (0, 1)]
        assert ranks[0]["chain"] == ranks[1]["chain"] == pytest.approx(reference["chain"], rel=1e-5)  # float32 KLs
        assert ranks[0]["grad_norms"] == pytest.approx(reference["grad_norms"], rel=1e-4)  # averaged, not summed
        for role in ROLES:
            assert all(torch.equal(a, b) for a, b in zip(ranks[0][role], ranks[1][role]))  # one model on both ranks
            for got, want in zip(ranks[0][role], reference[role]):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=lr / 100)  # 1 % of one step
        # the checkpoint holds whole weights; a fresh engine resumes to the same weights and AdamW state
        for rank in ranks:
            assert all(torch.equal(a, b) for role in ROLES for a, b in zip(rank[role], rank["resumed"][role]))
            assert len(rank["adam"]) > 0 and all(torch.equal(a, b) for a, b in zip(rank["adam"], rank["adam_resumed"]))
        assert all(torch.equal(a, b) for a, b in zip(ranks[0]["after_step"], ranks[1]["after_step"]))
    lora = torch.load(tmp / engine / "lora" / "rank0.pt")
    assert all(any(p.abs().sum() > 0 for p in lora[role][1::2]) for role in ROLES)  # LoRA B moved from zero
    saved = load_file(tmp / engine / "lora" / "checkpoint-1" / "solver" / "adapter_model.safetensors")
    assert sorted(v.numel() for v in saved.values()) == sorted(p.numel() for p in lora["solver"])


@pytest.mark.slow
def test_sigkill_then_resume_under_two_processes_is_bit_identical(tmp_path):
    cfg = small_config(tmp_path, total_steps=4, save_every=2, proposer_update_freq=3)
    conf = cfg.save_yaml(tmp_path / "c.yaml")
    r = launch(tmp_path, TRAIN, str(conf), "straight-then-kill", "ddp", port=29519)
    assert r.returncode != 0  # killed
    straight, killed = Path(cfg.output_dir), Path(cfg.output_dir + "-killed")
    assert (straight / "checkpoint-4").is_dir(), r.stderr[-3000:]
    assert [p.name for p in killed.iterdir() if p.name.startswith("checkpoint")] == ["checkpoint-2"]
    assert len((killed / "log.jsonl").read_text().splitlines()) == 3  # step 3 logged, then every process died
    r = launch(tmp_path, TRAIN, str(conf), "resume", "ddp", port=29520)
    assert r.returncode == 0, r.stderr[-3000:]
    for role in ROLES:
        a, b = straight / "checkpoint-4" / role, killed / "checkpoint-4" / role
        assert (a / "adapter_model.safetensors").read_bytes() == (b / "adapter_model.safetensors").read_bytes()
    import json

    strip = lambda line: {k: v for k, v in json.loads(line).items() if not k.startswith("seconds")}
    logs = [[strip(x) for x in (d / "log.jsonl").read_text().splitlines()] for d in (straight, killed)]
    assert len(logs[0]) == 4 and logs[0] == logs[1]  # same images on both ranks, same questions, answers, b, β


def test_memory_estimate_counts_the_tiny_model_exactly():
    """evolmm_lib.memory's parameter formula, applied to the tiny model, gives its exact count."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    from evolmm_lib import memory
    from evolmm_lib.backbone import load_backbone, resolve_model

    path = resolve_model("tiny")
    shapes = memory.shapes_of(AutoConfig.from_pretrained(path))
    model = AutoModelForImageTextToText.from_pretrained(path)
    named = dict(model.named_parameters())
    assert memory.vision_parameters(shapes) == sum(p.numel() for n, p in named.items() if "visual" in n)
    assert memory.language_parameters(shapes) == sum(p.numel() for n, p in named.items() if "visual" not in n)
    from evolmm_lib.config import EvoLMMConfig

    backbone = load_backbone(config=EvoLMMConfig())
    assert memory.lora_parameters(shapes, backbone.config.lora_r) == backbone.parameter_summary()["solver"]
    s7 = memory.PUBLIC["qwen2.5-vl-7b"]
    assert 8.2e9 < memory.language_parameters(s7) + memory.vision_parameters(s7) < 8.4e9  # "8B" (8.29B)
