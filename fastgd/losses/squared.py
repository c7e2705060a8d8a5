"""The squared loss ``r^2``: the textbook loss, with sufficient statistics."""
from .base import Loss


class Squared(Loss):
    """``loss(r) = r^2``, ``psi(r) = r``. Its passes run the width-specialized fused
    kernels (:mod:`fastgd.kernels.gradient`), and the plan may use the gram path,
    conjugate gradient with exact line search, the QR statistic and the refinement."""

    name = "squared"
    sufficient_statistics = True
    curvature = 2.0
    scales_with_y = True

    @staticmethod
    def value(r, c):
        return r * r

    @staticmethod
    def psi(r, c):
        return r

    @staticmethod
    def value_np(r, c):
        return r * r

    @staticmethod
    def psi_np(r, c):
        return r
