"""The shared resume checks and best-checkpoint bookkeeping of the trainers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ctpipe.errors import InputError
from ctpipe.training.handlers import best_score, check_resume_progress, restore_best

FULL = {"ctpipe": {"epoch": 3}, "optimizer": 1, "lr_scheduler": 1, "trainer": 1, "history": 1}


def test_a_resumable_checkpoint_passes():
    check_resume_progress(Path("run.pt"), FULL, epochs=3)


def test_beyond_the_configured_epochs_is_refused():
    with pytest.raises(
        InputError, match=r"run\.pt: cannot resume: .* epoch 3, beyond train\.epochs 2"
    ):
        check_resume_progress(Path("run.pt"), FULL, epochs=2)


def test_weights_only_is_refused_with_what_is_missing_and_the_hint():
    weights = {"ctpipe": {"epoch": 1}, "network": 1}
    with pytest.raises(
        InputError,
        match=r"has no history, lr_scheduler, optimizer, trainer state \(it holds weights only",
    ):
        check_resume_progress(Path("w.pt"), weights, epochs=5)
    with pytest.raises(InputError, match=r"has no d_opt state \(exported\)"):
        check_resume_progress(
            Path("w.pt"), weights, epochs=5, state_keys=("d_opt",), hint="exported"
        )


def _history(*scores):
    return SimpleNamespace(epochs=[{"validation": {"m": v}} for v in scores] + [{"loss": 1.0}])


class _Saver:
    def __init__(self):
        self.state = None

    def load_state_dict(self, state):
        self.state = state


@pytest.mark.parametrize(("lower", "saved"), [(False, 0.9), (True, -0.2)])
def test_restore_best_tells_the_saver_the_best_score(tmp_path, lower, saved):
    (tmp_path / "best.pt").write_bytes(b"x")
    saver = _Saver()
    restore_best(saver, _history(0.5, 0.9, 0.2), tmp_path, "m", "best.pt", lower_is_better=lower)
    assert saver.state == {"_saved": [(saved, "best.pt")]}


def test_restore_best_takes_the_score_recorded_in_the_best_checkpoint(tmp_path):
    import torch

    from ctpipe.checkpoints.file import save_checkpoint

    save_checkpoint(
        tmp_path / "best.pt", torch.nn.Linear(1, 1), model_name="x", metrics={"m": 170.0}
    )
    saver = _Saver()
    # the history also holds the epochs of an earlier stage, on another scale (-8000)
    restore_best(saver, _history(-8000.0, 171.0), tmp_path, "m", "best.pt", lower_is_better=True)
    assert saver.state == {"_saved": [(-170.0, "best.pt")]}


def test_restore_best_without_a_best_file_or_scores_does_nothing(tmp_path):
    saver = _Saver()
    restore_best(saver, _history(0.5), tmp_path, "m", "best.pt")
    assert saver.state is None
    assert best_score(_history(), "m") is None
