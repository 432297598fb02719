"""Imported once by the local pool's fork server (``multiprocessing`` forkserver preload): torch and every
plug-in are imported there once, so each worker forks ready instead of paying the imports again
(measured on the 2-core box under load: torch 6.8 s + plug-ins 8.3 s per worker). Only imports: no torch
op runs here, so no OpenMP pool exists to be forked."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402, F401

from workbench.core.analyzer import load_plugins  # noqa: E402
from workbench.core.cards import list_cards  # noqa: E402
from workbench.runtime import runner  # noqa: E402, F401

load_plugins()
list_cards()
