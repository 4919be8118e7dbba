"""The models of scripts/bench_cnn_rnn.sh (imported by it): the rows hold flat features, as a
validation set does; each model reshapes them."""
import torch
import torch.nn as nn


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.c = nn.Sequential(nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                               nn.Linear(84, 10))

    def forward(self, x):
        return torch.softmax(self.c(self.f(x.reshape(-1, 1, 28, 28)).flatten(1)), 1)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.r = nn.LSTM(8, 64, batch_first=True)
        self.o = nn.Linear(64, 3)

    def forward(self, x):
        y, _ = self.r(x.reshape(-1, 24, 8))
        return torch.softmax(self.o(y[:, -1]), 1)


def make(name):
    return LeNet() if name == "cnn" else Recurrent()
