"""The Huber loss: squared in the middle, linear in the tails (robust to outliers)."""
import numpy as np

from .base import Loss


class Huber(Loss):
    """``loss(r) = r^2`` for ``|r| <= epsilon``, ``2 epsilon |r| - epsilon^2`` beyond;
    ``psi(r) = clip(r, -epsilon, epsilon)``. No sufficient statistics: batch fits run the
    streaming path (Nesterov by default)."""

    name = "huber"
    curvature = 2.0
    scales_with_y = True
    parameter = "the threshold between the squared middle and the linear tails, in the units of y"

    @staticmethod
    def value(r, c):
        a = abs(r)
        return r * r if a <= c else 2.0 * c * a - c * c

    @staticmethod
    def psi(r, c):
        if abs(r) <= c:
            return r
        return c if r > 0 else -c

    @staticmethod
    def value_np(r, c):
        a = np.abs(r)
        return np.where(a <= c, r * r, 2.0 * c * a - c * c)

    @staticmethod
    def psi_np(r, c):
        return np.clip(r, -c, c)

    def psi_bound(self, c):
        return c
