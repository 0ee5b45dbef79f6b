"""Outside the seeds' shapes: a small residual convnet with BatchNorm, in PyTorch.

32x32x3 images; stem conv 3x3x16 (no bias) + BN + ReLU; two residual blocks
(conv-BN-ReLU-conv-BN, + identity, ReLU) of 16 channels; global average pooling; dense 10;
sparse softmax cross-entropy (integer labels); SGD with momentum 0.9, lr 0.05.
BatchNorm: TF's momentum 0.99 / epsilon 1e-3 = torch's momentum 0.01 / eps 1e-3.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CHANNELS, CLASSES = 16, 10


def conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(c, c), bn(c)
        self.conv2, self.bn2 = conv3x3(c, c), bn(c)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + x)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.stem_bn = conv3x3(3, CHANNELS), bn(CHANNELS)
        self.block1, self.block2 = Block(CHANNELS), Block(CHANNELS)
        self.fc = nn.Linear(CHANNELS, CLASSES)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.block2(self.block1(x))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


model = ResNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()


def batches(n=100, batch_size=8, seed=5):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, 32, 32, 3)), "y": rng.integers(0, CLASSES, batch_size)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model.train()
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}


if __name__ == "__main__":
    model.train()
    for i, b in enumerate(batches()):
        optimizer.zero_grad()
        loss = criterion(model(torch.from_numpy(b["x"]).float().permute(0, 3, 1, 2)), torch.from_numpy(b["y"]))
        loss.backward()
        optimizer.step()
        print(i, float(loss))
