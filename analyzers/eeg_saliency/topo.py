"""Scalp topomaps for the EEG analyzers: electrode positions from MNE's ``colin27_1020`` montage,
projected to 2-D, and channel values interpolated onto a head-shaped grid (numpy arrays only; the
result class draws them with Plotly)."""

from __future__ import annotations

import functools

import numpy as np

GRID = 64


@functools.lru_cache(maxsize=4)
def electrode_xy(channels: tuple[str, ...]) -> np.ndarray:
    """(C, 2) float32 positions in head units (nose up, the circle of radius 1 is the head outline at
    the level of Fpz / T3 / Oz): azimuthal equidistant projection of the montage's 3-D positions about
    the head centre (MNE's convention). Channel names must exist in ``colin27_1020`` (case-sensitive)."""
    import mne

    from workbench.core.errors import DataError

    pos = mne.channels.make_standard_montage("colin27_1020").get_positions()["ch_pos"]
    missing = [c for c in channels if c not in pos]
    if missing:
        raise DataError(f"no montage position for {', '.join(missing[:5])}", "use 10-20 channel names")
    xyz = np.array([pos[c] for c in channels], dtype=np.float64)
    ref = np.array([pos[c] for c in ("Fpz", "Oz", "T7", "T8") if c in pos])
    centre = np.array([0.0, (ref[0, 1] + ref[1, 1]) / 2, (ref[2, 2] + ref[3, 2]) / 2])
    v = xyz - centre
    r = np.linalg.norm(v, axis=1)
    theta = np.arccos(np.clip(v[:, 2] / r, -1, 1))  # angle from the vertex
    phi = np.arctan2(v[:, 1], v[:, 0])
    rad = theta / (np.pi / 2)  # the equator (the Fpz-T-Oz ring) lands on radius 1
    return np.stack([rad * np.cos(phi), rad * np.sin(phi)], axis=1).astype(np.float32)


def interpolate(values: np.ndarray, xy: np.ndarray, grid: int = GRID) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin-plate-spline interpolation of channel values (C,) at positions xy (C, 2) onto a square grid.

    Returns (axis (grid,) coordinates, z (grid, grid) float32 with z[row=y, col=x], inside (grid, grid)
    bool: points within the head circle, radius max(1, electrode radius) + 0.05). Outside points hold 0."""
    from scipy.interpolate import RBFInterpolator

    radius = max(1.0, float(np.linalg.norm(xy, axis=1).max())) + 0.05
    axis = np.linspace(-radius, radius, grid)
    gx, gy = np.meshgrid(axis, axis)
    inside = gx ** 2 + gy ** 2 <= radius ** 2
    rbf = RBFInterpolator(xy.astype(np.float64), np.asarray(values, np.float64), kernel="thin_plate_spline")
    z = np.zeros((grid, grid))
    z[inside] = rbf(np.stack([gx[inside], gy[inside]], axis=1))
    return axis.astype(np.float32), z.astype(np.float32), inside
