"""A plain-PyTorch yardstick for how fast ResNet-14 fits CIFAR-10 (JPEG) in its first epochs.

Why: the course report this study is compared with (CosmoLuminous/deep-learning-col775, logs/bn.log)
reached 77.5% accuracy on augmented training batches after 6 epochs (lr 0.1, wd 1e-4, cosine over
100 epochs, torchvision's lossless CIFAR-10), where `project.train` on the JPEG copy reached ~72%.
This script takes none of the project's training stack: torchvision's ImageFolder and per-image
PIL transforms (the course's Pad(4) + RandomCrop(32) + flip + Normalize), torch's own layers
(`project.bench.reference.RefResNet`, the benchmark's torch.nn twin of ResNet-14), torch's SGD and
CosineAnnealingLR, float32, a hand-written loop. If it fits as slowly as the project does, the
difference to the course is in the data, not in the framework.

    python experiments/norm_comparison/plain_loop.py ../shared/data/cifar10-jpeg --epochs 6

Prints one line per epoch: training accuracy on the augmented batches (train mode, as the course
logs it) and validation accuracy on 10,000 held-out training images (clean, eval mode).
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from project.bench.reference import RefResNet

COURSE_MEAN, COURSE_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class Decoded(Dataset):
    """(PIL image, label) pairs decoded once, with a per-image transform applied on access."""

    def __init__(self, pairs, transform):
        self.pairs, self.transform = pairs, transform

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        img, label = self.pairs[i]
        return self.transform(img), label


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="ImageFolder root with train/ (e.g. ../shared/data/cifar10-jpeg)")
    p.add_argument("--epochs", type=int, default=6, help="epochs to run")
    p.add_argument(
        "--schedule-epochs", type=int, default=100, help="cosine period (the course: 100)"
    )
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=1e-4, help="the course's 1e-4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    folder = ImageFolder(f"{args.root}/train")
    pairs = [(folder.loader(path).copy(), label) for path, label in folder.samples]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(args.seed)).tolist()
    val_pairs, train_pairs = [pairs[i] for i in order[:10000]], [pairs[i] for i in order[10000:]]
    normalize = [T.ToTensor(), T.Normalize(COURSE_MEAN, COURSE_STD)]
    augment = T.Compose([T.Pad(4), T.RandomCrop(32), T.RandomHorizontalFlip(), *normalize])
    train = DataLoader(Decoded(train_pairs, augment), batch_size=128, shuffle=True, num_workers=1)
    val = DataLoader(Decoded(val_pairs, T.Compose(normalize)), batch_size=512)

    model = RefResNet(n=2, norm="bn")  # torch's default init, as the course's code
    opt = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.schedule_epochs)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        start, correct, seen = time.perf_counter(), 0, 0
        model.train()
        for x, y in train:
            out = model(x)
            loss = loss_fn(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += (out.argmax(1) == y).sum().item()
            seen += y.numel()
        sched.step()
        model.eval()
        with torch.no_grad():
            val_correct = sum((model(x).argmax(1) == y).sum().item() for x, y in val)
        print(
            f"epoch {epoch}: train acc (augmented) {100 * correct / seen:.2f}%, "
            f"val acc {100 * val_correct / len(val_pairs):.2f}%, "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
