"""The digits set read without sklearn (issue 21: CLI start) equals sklearn's load_digits + train_test_split."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from workbench.data import builtin


def test_digits_without_sklearn_equal_load_digits_and_its_stratified_split():
    d = load_digits()
    tr, te = train_test_split(np.arange(len(d.target)), test_size=0.25, random_state=0, stratify=d.target)
    builtin._digits.cache_clear()
    ours = builtin._digits()
    np.testing.assert_array_equal(ours["x"], (d.images / 16.0).astype(np.float32))
    np.testing.assert_array_equal(ours["y"], d.target)
    np.testing.assert_array_equal(ours["test"], np.sort(te))
    np.testing.assert_array_equal(ours["train"], np.sort(tr))
