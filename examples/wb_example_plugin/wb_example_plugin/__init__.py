"""Example plug-in for the CNN workbench: the ``channel_stats`` analyzer (BatchNorm statistics drift).

Declared by the entry point ``channel_stats = "wb_example_plugin:ChannelStats"`` in pyproject.toml.
"""

from wb_example_plugin.analyzer import ChannelStats
from wb_example_plugin.result import ChannelStatsResult

__all__ = ["ChannelStats", "ChannelStatsResult"]
