"""Where the weights go under each launcher (evolmm_lib.placement): the pure rule, its inputs, and the loaders."""

from __future__ import annotations

import pytest
import torch

from evolmm_lib.placement import GiB, PlacementError, choose_placement, loaded_weight_bytes

H100, H200, T4 = 80 * GiB, 139 * GiB, 15 * GiB
B7_BF16 = loaded_weight_bytes("random:qwen2.5-vl-7b", 2, False)
B72_BF16 = loaded_weight_bytes("random:qwen2.5-vl-72b", 2, False)


def place(world_size=1, local_rank=0, cuda_devices=1, device_bytes=H100, model_bytes=B7_BF16):
    return choose_placement(world_size=world_size, local_rank=local_rank, cuda_devices=cuda_devices,
                            device_bytes=device_bytes, model_bytes=model_bytes, model="M")


def test_cpu_one_process_and_cpu_ranks_load_without_a_device_map():
    assert place(cuda_devices=0, device_bytes=None).device_map is None
    cpu_rank = place(world_size=2, local_rank=1, cuda_devices=0, device_bytes=None)
    assert cpu_rank.device_map is None and cpu_rank.device == "cpu" and "gloo" in cpu_rank.reason


def test_one_process_one_gpu_puts_everything_on_it():
    p = place()
    assert p.device_map == {"": 0} and p.device == "cuda:0"


def test_one_process_several_gpus_uses_one_when_the_model_fits_it():
    assert place(cuda_devices=8).device_map == {"": 0}  # 7B on an 8-GPU node: no layer split


def test_one_process_several_gpus_spreads_a_model_larger_than_one():
    p = place(cuda_devices=8, model_bytes=B72_BF16)  # the 72B path (configs/accelerate/lora-72b-device-map.yaml)
    assert p.device_map == "auto" and p.device == "cuda (auto)"


@pytest.mark.parametrize("local_rank", [0, 3, 7])
def test_distributed_ranks_each_take_their_own_gpu_never_auto(local_rank):
    p = place(world_size=8, local_rank=local_rank, cuda_devices=8)
    assert p.device_map == {"": local_rank}  # one entry: accelerate's prepare accepts it
    # a rank restricted to one visible GPU (CUDA_VISIBLE_DEVICES per process) uses that one
    assert place(world_size=8, local_rank=local_rank, cuda_devices=1).device_map == {"": 0}


def test_distributed_refuses_a_model_that_no_single_gpu_holds():
    with pytest.raises(PlacementError, match="each of the 8 ranks holds a whole copy"):
        place(world_size=8, local_rank=0, cuda_devices=8, model_bytes=B72_BF16)


def test_distributed_refuses_more_ranks_than_gpus():
    with pytest.raises(PlacementError, match="at most one process per GPU"):
        place(world_size=4, local_rank=2, cuda_devices=2)


def test_72b_in_bf16_is_refused_on_one_h200_in_one_line():
    with pytest.raises(PlacementError) as e:
        place(device_bytes=H200, model_bytes=B72_BF16)
    message = str(e.value)
    assert "\n" not in message and "136.7 GiB" in message and "qlora" in message


def test_7b_in_bf16_does_not_fit_a_t4_but_its_4bit_weights_do():
    with pytest.raises(PlacementError, match="does not fit"):
        place(device_bytes=T4)
    b7_4bit = loaded_weight_bytes("random:qwen2.5-vl-7b", 2, True)
    assert b7_4bit < 0.4 * B7_BF16
    assert place(device_bytes=T4, model_bytes=b7_4bit).device_map == {"": 0}


def test_unknown_sizes_are_taken_to_fit():
    assert place(model_bytes=None).device_map == {"": 0}
    assert place(world_size=2, local_rank=1, cuda_devices=2, model_bytes=None).device_map == {"": 1}


def test_weight_bytes_follow_the_shipped_shapes_and_the_layer_count():
    assert B7_BF16 == 2 * 8_292_166_656  # the 7B's parameter count (random_presets test pins it too)
    assert loaded_weight_bytes("random:qwen2.5-vl-7b@2", 2, False) < B7_BF16 / 5


def test_weight_bytes_of_a_local_folder_come_from_its_config(tiny_backbone):
    from evolmm_lib.backbone import resolve_model

    base = sum(p.numel() for name, p in tiny_backbone.model.named_parameters() if "lora_" not in name)
    assert loaded_weight_bytes(resolve_model("tiny"), 4, False) == 4 * base
    assert loaded_weight_bytes("no/such-model-anywhere", 2, False) is None  # offline, not cached: unknown


def test_process_placement_reads_the_launcher_environment(monkeypatch):
    from evolmm_lib.placement import placement_for

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    p = placement_for(None)
    if torch.cuda.is_available():
        assert p.device_map == {"": 1 if torch.cuda.device_count() > 1 else 0}
    else:
        assert p.device_map is None and "rank 1 of 2" in p.reason


def test_spread_build_initialises_every_weight_where_it_lives():
    """The 'auto' path of random presets, run on the CPU: built empty, materialised layer by layer, initialised."""
    from transformers import AutoConfig

    from evolmm_lib.backbone import resolve_model
    from evolmm_lib.random_presets import _build_spread

    torch.manual_seed(0)
    model = _build_spread(AutoConfig.from_pretrained(resolve_model("tiny")), torch.float32,
                          max_memory={"cpu": 4 * GiB})
    assert model.hf_device_map == {"": "cpu"}
    params = dict(model.named_parameters())
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in params.values())
    linear = model.model.language_model.layers[0].mlp.up_proj.weight
    assert 0.005 < float(linear.std()) < 0.05  # the model's own normal(0, initializer_range) init, not empty memory
    assert torch.equal(model.model.language_model.norm.weight, torch.ones_like(model.model.language_model.norm.weight))
