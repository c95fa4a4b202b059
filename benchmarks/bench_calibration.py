"""Which calibration predicts a real training's seconds per optimizer step? (craftlib.estimate)

Usage (repository root; once per precision)::

    python benchmarks/bench_calibration.py
    CRAFTLIB_PRECISION=fp32 python benchmarks/bench_calibration.py

Times MiniLM's optimizer steps (batch 8, AdamW as training uses it, the device's precision, 2 threads) two ways:

* ``fixed``: 10 steps at one window length, then 10 at another (24 and 96 sub-tokens: the calibration of before),
  without and with gradient clipping (Trainer clips every step, max_grad_norm 1.0);
* ``varied``: 60 steps after 10 warm-up steps, each at a new length drawn like CRAFT's windows
  (``craftlib.estimate.calibration_lengths``), with clipping; a least-squares line through them.

Compare the printed milliseconds per step at the quick profile's mean window (35 sub-tokens) with a real training's
``train_seconds / global_step`` on the same machine (e.g. notebook 04's single-step quick: 1,509 steps); the
result and that comparison are in ``benchmarks/results/calibration_shapes.txt``.
"""

import random
import time

import numpy as np
import torch

from craftlib import estimate, models
from craftlib.runtime import detect_device
from craftlib.train import optimizer_name
from craftlib.windows import autocast

device = detect_device()
print(device)
torch.set_num_threads(2)
tok, model = models.load_tokenizer("minilm"), models.load_model("minilm")
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=optimizer_name(device) == "adamw_torch_fused" or None)
model.train()


def step(batch, clip):
    t = time.perf_counter()
    with autocast(device):
        loss = model(**batch).loss
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t


for clip in (False, True):
    for length in (24, 96):
        b = estimate._synthetic_batch(tok, 8, length, length)
        ts = [step(b, clip) for _ in range(12)][2:]
        print("fixed", "clip" if clip else "noclip", length, round(sorted(ts)[5] * 1000, 1), "ms")
rng = random.Random(0)
lengths = [min(128, 8 + int(rng.expovariate(1 / 28))) for _ in range(70)]
xs, ys = [], []
for i, length in enumerate(lengths):
    t = step(estimate._synthetic_batch(tok, 8, length, i), True)
    if i >= 10:
        xs.append(8 * length)
        ys.append(t)
a, b = np.linalg.lstsq(np.vstack([np.ones(len(xs)), xs]).T, np.array(ys), rcond=None)[0]
print(f"varied+clip: step_s {a:.4f} token_s {b:.6f}; at mean 35: {1000 * (a + b * 8 * 35):.1f} ms")
print(f"mean time of varied steps {1000 * np.mean(ys):.1f} ms at mean length {np.mean(xs) / 8:.1f}")
