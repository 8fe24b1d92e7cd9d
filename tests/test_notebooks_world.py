"""The helpers behind the notebooks' CPU default: the miniature world's images and its question check."""

from __future__ import annotations

import pytest

from evolmm_lib.images import scan_images
from evolmm_lib.miniature.world import (all_questions, make_world, pool_answer, world_question_rate,
                                        write_world_images)


def test_world_question_rate():
    qs = all_questions()
    assert world_question_rate(qs) == 1.0
    assert world_question_rate([qs[0], "What is the value of the tallest bar?", " how many RED squares are in the image? ",
                                "How many red triangles are in the image?"]) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        world_question_rate([])


def test_write_world_images_gives_the_pool_with_exact_answers(tmp_path):
    world, folder = write_world_images(tmp_path / "pool", n=5)
    files = scan_images(folder)
    assert [f.name for f in files] == [f"pool_{i:05d}.png" for i in range(5)]
    assert len(world.test) == 500 and world.test[0].question == make_world(0, n_warmstart=0, n_pool=0).test[0].question
    q = "How many shapes are in the image?"
    assert [pool_answer(world, f, q) for f in files] == [len(scene) for scene in world.pool]
    again, _ = write_world_images(folder, n=5)  # idempotent: same scenes, same files
    assert again.pool == world.pool and len(scan_images(folder)) == 5
