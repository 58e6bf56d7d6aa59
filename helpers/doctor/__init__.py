"""The loop doctors: run a learner's training code on a probe problem and name what is wrong.

- `diagnose_step(train_step)` judges one step, `train_step(model, optimizer, loss_fn, inputs,
  targets)`, against one plain SGD step (helpers/doctor/step.py);
- `diagnose_loop(train_epoch, ...)` judges one pass over a loader with a scheduler, gradient
  clipping, a GradScaler and gradient accumulation, against the canonical loop
  (helpers/doctor/loop.py).

Both return a `Diagnosis`: a list of `Finding(code, message)`, empty when all is well.
"""

from __future__ import annotations

from helpers.doctor.findings import Diagnosis, Finding, report
from helpers.doctor.loop import LOOP_CODES, diagnose_loop
from helpers.doctor.step import CODES, PROBE_LR, diagnose_step

__all__ = [
    "CODES",
    "LOOP_CODES",
    "PROBE_LR",
    "Finding",
    "Diagnosis",
    "diagnose_step",
    "diagnose_loop",
    "report",
]
