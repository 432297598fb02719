"""Scalp topomaps for the EEG analyzers, interpolated by MNE itself, so they match what EEG users compare with.

The image comes from ``mne.viz.plot_topomap`` drawn on an off-screen matplotlib ``Figure`` (no pyplot, no
window): MNE projects the montage's 3-D positions onto its head sphere, interpolates (Clough-Tocher, extrapolated
to the head outline, its defaults) and draws the head, nose and ears. The grid, the sensor positions and the
outline lines are read back from the artists it made, and the result class redraws them with Plotly. This is the
public path on purpose: ``mne.viz.topomap._setup_interp`` / ``_make_head_outlines`` compute the same, but are
private and change between MNE versions. MNE clips its image with a clip patch rather than a mask (the head,
widened to reach sensors outside it, such as Fp1); the pixels that patch hides are flagged here (``inside``).

Positions: MNE's ``colin27_1020`` montage (``standard_1020`` is deprecated); channel names must exist there.
"""

from __future__ import annotations

import functools

import numpy as np

GRID = 96
MONTAGE = "colin27_1020"


@functools.lru_cache(maxsize=4)
def _info(channels: tuple[str, ...]):
    import mne

    from workbench.core.errors import DataError

    montage = mne.channels.make_standard_montage(MONTAGE)
    missing = [c for c in channels if c not in montage.ch_names]
    if missing:
        raise DataError(f"no montage position for {', '.join(missing[:5])}", "use 10-20 channel names")
    info = mne.create_info(list(channels), 128.0, "eeg")
    info.set_montage(montage)
    return info


def has_positions(channels: tuple[str, ...]) -> bool:
    """Whether every channel name has a position in the montage (else no topomap is drawn)."""
    import mne

    names = set(mne.channels.make_standard_montage(MONTAGE).ch_names)
    return bool(channels) and all(c in names for c in channels)


def topomap(values: np.ndarray, channels: tuple[str, ...], res: int = GRID) -> dict:
    """MNE's topomap of channel values (C,) float: ``grid`` (res, res) float32 (row 0 at the bottom, 0 outside
    the head), ``inside`` (res, res) bool, ``x`` / ``y`` (res,) pixel centres in MNE's head coordinates (metres),
    ``sensors`` (C, 2), ``outline`` (K, 2) float32: head, nose and ears as polylines one after the other (results
    hold finite values only, so no NaN separators), ``outline_breaks`` the row where each next part starts."""
    import mne
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    im, _ = mne.viz.plot_topomap(np.asarray(values, np.float64), _info(tuple(channels)), axes=ax, res=res,
                                 contours=0, show=False)
    grid = np.ma.filled(np.ma.asarray(im.get_array(), np.float64), np.nan)
    if im.origin != "lower":
        grid = grid[::-1]
    x0, x1, y0, y1 = im.get_extent()
    n_y, n_x = grid.shape
    x = x0 + (np.arange(n_x) + 0.5) * (x1 - x0) / n_x
    y = y0 + (np.arange(n_y) + 0.5) * (y1 - y0) / n_y
    sensors = next(np.asarray(c.get_offsets(), np.float64) for c in ax.collections
                   if len(c.get_offsets()) == len(channels))
    lines = [np.asarray(line.get_xydata(), np.float64) for line in ax.lines]
    gx, gy = np.meshgrid(x, y)
    inside = np.isfinite(grid)
    clip = im.get_clip_path()  # MNE's clip patch (the head, widened to the outermost sensors), in display space
    if clip is not None:
        points = ax.transData.transform(np.stack([gx.ravel(), gy.ravel()], axis=1))
        inside &= clip.get_fully_transformed_path().contains_points(points).reshape(grid.shape)
    outline = np.concatenate([np.vstack([seg, seg[:1]]) for seg in lines])  # a closed polyline per part
    breaks = np.cumsum([len(seg) + 1 for seg in lines])[:-1]
    return {"grid": np.where(inside, grid, 0.0).astype(np.float32), "inside": inside, "x": x.astype(np.float32),
            "y": y.astype(np.float32), "sensors": sensors.astype(np.float32), "outline": outline.astype(np.float32),
            "outline_breaks": breaks.astype(np.int64)}


def topomaps(maps: dict, focus: np.ndarray, channels: tuple[str, ...]) -> dict:
    """Arrays for the result: per method the share of |relevance| per channel (mean over the ``focus`` windows,
    all windows when none) ``channel_relevance_<m>`` (C,) and its MNE topomap ``topo_<m>`` (G, G), with the shared
    ``topo_x``, ``topo_y``, ``topo_inside``, ``topo_xy`` (sensors), ``topo_outline(_breaks)``. Empty when the
    channels have no montage position; a map that is the same on every channel (Grad-CAM of a layer after the
    spatial filters) gets none. ``maps``: method -> (N, C, T)."""
    out: dict = {}
    if not has_positions(tuple(channels)):
        return out
    use = focus if focus.any() else np.ones(len(focus), bool)
    for m, arr in maps.items():
        a = np.asarray(arr[use], np.float64)
        if np.allclose(a, a[:, :1], rtol=0, atol=1e-12 * max(1.0, float(np.abs(a).max()))):
            continue
        mag = np.abs(a).sum(2)
        share = (mag / np.maximum(mag.sum(1, keepdims=True), 1e-30)).mean(0)
        out[f"channel_relevance_{m}"] = share.astype(np.float32)
        t = topomap(share, tuple(channels))
        out[f"topo_{m}"] = t.pop("grid")
        out.update({"topo_xy" if k == "sensors" else f"topo_{k}": v for k, v in t.items()})
    return out
