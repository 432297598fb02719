"""Kernel spectra: conv-operator singular values (FFT method), filter frequency responses, weight ESD"""

from analyzers.kernel_spectra.analyzer import KernelSpectra

__all__ = ["KernelSpectra"]
