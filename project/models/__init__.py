"""Models built from `project.nn` layers: the CIFAR ResNet (6n+2) and the lab's SimpleNN."""

from project.models.blocks import BasicBlock, PadShortcut, ProjectionShortcut
from project.models.resnet import ResNet
from project.models.simplenn import SimpleNN

__all__ = ["BasicBlock", "PadShortcut", "ProjectionShortcut", "ResNet", "SimpleNN"]
