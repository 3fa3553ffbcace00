#!/usr/bin/env bash
# Chapter 4's full-mode runs, one after the other, each notebook executed in place with tools/execute.sh:
# the 80% notebook first, then the solutions of Activities 8, 7 and 9. Niced, PyTorch on one thread
# (the machine is shared), offline with the course's dataset mirror. Log with wall times: /work/ch4_full.log
# (or $CH4_LOG). Start it detached so that it outlives the shell:
#   setsid nohup tools/run_ch4_full.sh > /dev/null 2>&1 < /dev/null &
set -uo pipefail
cd "$(dirname "$0")/.."
log="${CH4_LOG:-/work/ch4_full.log}"
export ADL_QUICK=0 ADL_OFFLINE=1 ADL_PLAIN_PROGRESS=1 OMP_NUM_THREADS=1
export ADL_DATA_MIRROR="$(cd ../shared/datasets && pwd)"  # absolute: the kernels run in the notebook's folder
echo "$(date -u +%FT%TZ) chapter 4 full runs start ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores)" >> "$log"
for nb in solutions/ch04_cnn/beyond_80_percent.ipynb \
          solutions/ch04_cnn/activity08_data_augmentation.ipynb \
          solutions/ch04_cnn/activity07_cifar10_cnn.ipynb \
          solutions/ch04_cnn/activity09_batch_normalisation.ipynb; do
  echo "$(date -u +%FT%TZ) start $nb" >> "$log"
  start=$(date +%s)
  nice -n 5 tools/execute.sh "$nb" >> "$log" 2>&1
  rc=$?
  echo "$(date -u +%FT%TZ) end $nb: rc=$rc, wall $(( $(date +%s) - start )) s" >> "$log"
done

# Seed spread of Activity 7 (issue 14): the solution's recipe (same split, 50 epochs, fast pipeline,
# channels_last, bfloat16 where supported) from two more seeds; seed 0 is the notebook's own run.
echo "$(date -u +%FT%TZ) start Activity 7 seed spread (seeds 1 and 2)" >> "$log"
start=$(date +%s)
nice -n 5 .venv/bin/python - >> "$log" 2>&1 <<'PY'
import time
import torch
from torch import nn, optim
from utils import accuracy, evaluate, fit, get_device, load_cifar10, seed_everything
from utils.cifar import Autocast, CifarBatches, as_uint8_tensors, mixed_precision_dtype, train_val_split

def block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2))

device = get_device()
images, labels = as_uint8_tensors(load_cifar10(train=True))
test_images, test_labels = as_uint8_tensors(load_cifar10(train=False))
train_idx, val_idx = train_val_split(len(images), 0.2, seed=0)
for seed in (1, 2):
    start = time.perf_counter()
    seed_everything(seed)
    net = nn.Sequential(block(3, 10), block(10, 20), block(20, 40), nn.Flatten(), nn.Dropout(0.2), nn.Linear(640, 100),
                        nn.ReLU(), nn.Dropout(0.2), nn.Linear(100, 10), nn.LogSoftmax(dim=1)).to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    model = Autocast(net, device, mixed_precision_dtype(device))
    train = CifarBatches(images[train_idx], labels[train_idx], 100, shuffle=True, seed=seed, device=device)
    val = CifarBatches(images[val_idx], labels[val_idx], 100, device=device)
    test = CifarBatches(test_images, test_labels, 100, device=device)
    history = fit(model, train, nn.NLLLoss(), optim.Adam(model.parameters(), lr=0.001), 50, val_batches=val,
                  metric=accuracy, device=device, progress=False)
    _, test_acc = evaluate(model, test, nn.NLLLoss(), metric=accuracy, device=device)
    print(f"Activity 7 recipe, seed {seed}: validation accuracy {history.val_metric[-1]:.4f}, "
          f"test accuracy {test_acc:.4f}, {(time.perf_counter() - start) / 60:.1f} min", flush=True)
PY
echo "$(date -u +%FT%TZ) end Activity 7 seed spread: rc=$?, wall $(( $(date +%s) - start )) s" >> "$log"
echo "$(date -u +%FT%TZ) chapter 4 full runs done" >> "$log"
