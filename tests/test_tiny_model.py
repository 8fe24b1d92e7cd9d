"""The embedded backbone: deterministic offline build, real Qwen2.5-VL classes, Qwen chat template."""

import hashlib

from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLForConditionalGeneration

from evolmm_lib.prompts import chat_messages
from evolmm_lib.tiny_model import SPECIAL_TOKENS, TinySpec, build_tiny_qwen25_vl


def _digest(folder):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.iterdir()) if f.name in ("model.safetensors", "tokenizer.json", "config.json")}


def test_build_is_deterministic_and_loads_with_auto_classes(tmp_path):
    a = build_tiny_qwen25_vl(tmp_path / "a")
    b = build_tiny_qwen25_vl(tmp_path / "b")
    assert _digest(a) == _digest(b) and len(_digest(a)) == 3
    model = AutoModelForImageTextToText.from_pretrained(a)
    proc = AutoProcessor.from_pretrained(a)
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    assert type(proc).__name__ == "Qwen2_5_VLProcessor"
    assert type(proc.image_processor).__name__.startswith("Qwen2VLImageProcessor")
    tok = proc.tokenizer
    for t in SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(t) != tok.unk_token_id
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    text = proc.apply_chat_template(chat_messages("How many?"), tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>\n<|im_start|>assistant\n")


def test_tokenizer_round_trips_any_text(tmp_path):
    path = build_tiny_qwen25_vl(tmp_path / "t", TinySpec(vocab_size=600))
    tok = AutoProcessor.from_pretrained(path).tokenizer
    for s in ["Ünïcødé ✓ 数学 \\boxed{3}", "<answer>42</answer>", "  spaces\n\nnewlines\t"]:
        assert tok.decode(tok(s).input_ids) == s


def test_spec_changes_the_size(tmp_path):
    small = AutoModelForImageTextToText.from_pretrained(build_tiny_qwen25_vl(tmp_path / "s"))
    big = AutoModelForImageTextToText.from_pretrained(
        build_tiny_qwen25_vl(tmp_path / "b", TinySpec(text_hidden=192, text_layers=3, vision_depth=3)))
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(big) > 1.5 * n(small)
    assert TinySpec().key() != TinySpec(text_hidden=192).key()


def test_build_once_builds_a_single_time_under_concurrent_callers(tmp_path):
    import threading
    import time

    from evolmm_lib.cache import build_once

    target, calls = tmp_path / "cache" / "entry", []

    def build():
        calls.append(1)
        time.sleep(0.3)  # a reader arriving now must wait, not build again
        target.mkdir(parents=True)
        (target / "done.json").write_text("{}")

    threads = [threading.Thread(target=build_once, args=(target, "done.json", build)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and (target / "done.json").is_file()


def test_ensure_tiny_model_waits_for_a_concurrent_build_and_keeps_its_folder(tmp_path):
    # as under `accelerate launch` on a cold cache: another process holds the build lock; this one must
    # wait, then use the folder that process wrote, not rebuild and replace it under a reader
    import fcntl
    import threading
    import time

    from evolmm_lib.tiny_model import ensure_tiny_model

    spec = TinySpec()
    path = tmp_path / f"tiny-qwen2.5-vl-{spec.key()}"
    result = {}
    with open(tmp_path / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: result.setdefault("path", ensure_tiny_model(spec, tmp_path)))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()  # blocked on the lock
        path.mkdir()
        (path / "evolmm_tiny.json").write_text('{"built_by": "the other process"}')
    waiter.join(timeout=60)
    assert result["path"] == path
    assert (path / "evolmm_tiny.json").read_text() == '{"built_by": "the other process"}'
