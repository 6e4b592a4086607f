"""The U-Net shape shared by the trained segmenters (``unet`` in 3D, ``slicenet`` in 2D).

Ronneberger et al., MICCAI 2015: an encoder of blocks joined by 2x max-pooling, a decoder of
2x transposed convolutions whose output is concatenated with the encoder block of the same
scale, and a 1x1 convolution to one logit. The blocks (convolutions, normalisation,
activation) are the caller's; the module's attribute names (``enc``, ``pool``, ``up``,
``dec``, ``head``) are the keys of the saved weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["unet"]


def unet(dims: int, in_channels: int, channels: tuple[int, ...],
         block: Callable[[int, int], Any]) -> Any:
    """A U-Net module.

    Parameters
    ----------
    dims : {2, 3}
        Spatial dimensions.
    in_channels : int
        Input channels.
    channels : tuple of int
        Channels of the levels, finest first; ``len(channels) - 1`` poolings.
    block : callable
        ``block(cin, cout)`` returns the module of one level (it keeps the spatial size).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = unet(2, 3, (4, 8), lambda i, o: nn.Conv2d(i, o, 3, padding=1))
    >>> tuple(net(torch.zeros(1, 3, 16, 16)).shape)
    (1, 1, 16, 16)
    """
    import torch
    from torch import nn

    conv_t = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
    conv = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
    pool = {2: nn.MaxPool2d, 3: nn.MaxPool3d}[dims]

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.enc = nn.ModuleList([block(in_channels, c[0])]
                                     + [block(c[i - 1], c[i]) for i in range(1, len(c))])
            self.pool = pool(2)
            self.up = nn.ModuleList([conv_t(c[i], c[i - 1], 2, stride=2)
                                     for i in range(len(c) - 1, 0, -1)])
            self.dec = nn.ModuleList([block(2 * c[i - 1], c[i - 1])
                                      for i in range(len(c) - 1, 0, -1)])
            self.head = conv(c[0], 1, 1)

        def forward(self, x):
            skips = []
            for i, enc in enumerate(self.enc):
                x = enc(x)
                if i < len(self.enc) - 1:
                    skips.append(x)
                    x = self.pool(x)
            for up, dec in zip(self.up, self.dec, strict=True):
                x = dec(torch.cat([up(x), skips.pop()], dim=1))
            return self.head(x)

    return UNet()
