"""Convolution with a bank of filters: the convolutional generative model.

A signal is the sum of its code maps convolved with the filters,
``x = sum_c h_c * s_c``: codes of shape ``(n, C, h', w')`` (or ``(n, C, l')``
for 1-D signals) become images ``(n, 1, h, w)`` (or ``(n, 1, l)``). With a
stride ``s`` the code maps are ``s`` times coarser than the image (the
transposed, strided convolution of deep-learning libraries).
"""

import torch
import torch.nn.functional as F

from ._base import LinearOperator

__all__ = ["ConvolutionOperator", "code_shape"]


def code_shape(signal_shape, kernel_size, stride=1):
    """Shape of the code maps that cover a signal (without the channel axis).

    Code ``p`` places its filter at offset ``p * stride - (kernel_size - 1)``,
    so every filter that overlaps the signal, even by one tap, has a code:
    the convolution is a "full" one, cropped to the signal.

    Parameters
    ----------
    signal_shape : tuple of int
        ``(length,)`` or ``(height, width)``.
    kernel_size : int
        Side of the (square) filters.
    stride : int, default=1
        Step between neighbouring codes, in pixels.

    Returns
    -------
    tuple of int
        One size per axis of ``signal_shape``.

    Examples
    --------
    >>> from sklearn_mbdl.operators import code_shape
    >>> code_shape((64, 64), 7, stride=4)
    (18, 18)
    >>> code_shape((10,), 3)
    (12,)
    """
    # enough codes for the full convolution to reach the last pixel (more
    # than the overlapping ones when the stride exceeds the kernel)
    return tuple(max((n + kernel_size - 2) // stride, -(-(n - 1) // stride)) + 1
                 for n in signal_shape)


class ConvolutionOperator(LinearOperator):
    """Sum of code maps convolved with a filter bank, its adjoint, strided.

    ``forward`` maps codes of shape ``(n, C, *code_shape)`` to signals of
    shape ``(n, 1, *signal_shape)``: ``x = sum_c h_c * s_c``, the transposed
    (strided) convolution, cropped to the signal so that every pixel is
    covered by the same filter taps wherever it lies. ``adjoint`` is the
    exact adjoint (the strided correlation of the zero-padded signal with
    each filter), so ``<A s, x> = <s, A^T x>``. Both are batched, run on the
    filters' device and dtype, and are differentiable in the codes and in
    the filters (the filters can be ``torch.nn.Parameter``).

    Parameters
    ----------
    filters : torch.Tensor of shape (C, k, k) or (C, k)
        The filter bank: ``C`` square 2-D filters, or ``C`` 1-D filters.
    signal_shape : tuple of int
        ``(height, width)`` for 2-D filters, ``(length,)`` for 1-D ones.
    stride : int, default=1
        Step between neighbouring codes.

    Attributes
    ----------
    in_shape : tuple of int
        ``(C, *code_shape)``, the shape of one code (see :func:`code_shape`).
    out_shape : tuple of int
        ``(1, *signal_shape)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mbdl.operators import ConvolutionOperator
    >>> H = ConvolutionOperator(torch.ones(2, 3, 3), (8, 8), stride=2)
    >>> codes = torch.zeros(1, *H.in_shape)
    >>> H.in_shape, H(codes).shape
    ((2, 5, 5), torch.Size([1, 1, 8, 8]))
    >>> H.adjoint(torch.ones(1, 1, 8, 8)).shape
    torch.Size([1, 2, 5, 5])
    """

    def __init__(self, filters, signal_shape, stride=1):
        if not isinstance(filters, torch.Tensor):
            filters = torch.as_tensor(filters)
        signal_shape = tuple(int(n) for n in signal_shape)
        if filters.ndim not in (2, 3) or len(signal_shape) != filters.ndim - 1:
            raise ValueError(
                "filters must have shape (C, k) for 1-D signals or (C, k, k) for "
                f"images, matching signal_shape; got filters {tuple(filters.shape)} "
                f"and signal_shape {signal_shape}."
            )
        if filters.ndim == 3 and filters.shape[1] != filters.shape[2]:
            raise ValueError(f"2-D filters must be square, got {tuple(filters.shape)}.")
        if int(stride) < 1 or any(n < 1 for n in signal_shape):
            raise ValueError("stride and the signal shape must be positive.")
        self.filters = filters
        self.signal_shape = signal_shape
        self.stride = int(stride)
        self.kernel_size = int(filters.shape[-1])
        self.n_kernels = int(filters.shape[0])
        self.in_shape = (self.n_kernels,
                         *code_shape(signal_shape, self.kernel_size, self.stride))
        self.out_shape = (1, *signal_shape)
        self._ndim = len(signal_shape)

    @property
    def _weight(self):
        # (C, 1, k[, k]): C input channels (the codes) and 1 output channel
        return self.filters.unsqueeze(1)

    def _full_size(self):
        return [(m - 1) * self.stride + self.kernel_size for m in self.in_shape[1:]]

    def forward(self, codes):
        """``sum_c h_c * s_c`` for a batch of codes.

        Parameters
        ----------
        codes : torch.Tensor of shape (n, C, \\*code_shape)

        Returns
        -------
        torch.Tensor of shape (n, 1, \\*signal_shape)
        """
        conv = F.conv_transpose2d if self._ndim == 2 else F.conv_transpose1d
        full = conv(codes, self._weight, stride=self.stride)
        start = self.kernel_size - 1
        if self._ndim == 2:
            h, w = self.signal_shape
            return full[..., start:start + h, start:start + w]
        return full[..., start:start + self.signal_shape[0]]

    def adjoint(self, signals):
        """The adjoint: strided correlation with each filter.

        Parameters
        ----------
        signals : torch.Tensor of shape (n, 1, \\*signal_shape)

        Returns
        -------
        torch.Tensor of shape (n, C, \\*code_shape)
        """
        start = self.kernel_size - 1
        pads = []
        # F.pad takes (before, after) pairs from the last axis backwards
        for size, full in zip(reversed(self.signal_shape),
                              reversed(self._full_size())):
            pads += [start, full - start - size]
        padded = F.pad(signals, pads)
        conv = F.conv2d if self._ndim == 2 else F.conv1d
        return conv(padded, self._weight, stride=self.stride)

    def _reference_tensor(self):
        return self.filters
