"""The fixed digits split as data: which of sklearn's 1797 digits are the 450 test samples.

It is ``train_test_split(range(1797), test_size=0.25, random_state=0, stratify=target)`` computed once
and stored (a bit per sample, hex): importing ``sklearn.model_selection`` pulls in scipy.stats and pandas
(0.9 s of every CLI run's start). tests/data/test_digits_split.py recomputes it with sklearn and compares.
"""

from __future__ import annotations

import numpy as np

N_DIGITS = 1797
TEST_MASK_HEX = (
    "000004883526104000164101934205001a00080102240028062c1e081108960a009019120420f8a0028110e040080a9a3044"
    "15244942c0a00a2030804004d821408b8020004885c400104008a0900005486800301000020ec409001224840083b8013c21"
    "a69c0a0204000f48400804a4184902124061e5008024604e94376a819216015480004842a0a4180a5000a40b8561e6881080"
    "49124c80c02205068e000109f202c141398813c009190000148e01008410a0e10033282900c144c8c0680a01029302920309"
    "22a6402c26042108a8608198c8a01412861202128138a41500"
)


def digits_test_mask() -> np.ndarray:
    """Boolean mask over the 1797 digits, True for the test split."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(TEST_MASK_HEX), dtype=np.uint8))
    return bits[:N_DIGITS].astype(bool)
