"""Coverage-guided fuzzing (atheris) of every loader and the report renderer (plan item 3).

    python tests/fuzz/harness.py image|safetensors|checkpoint|report -max_total_time=300

Any exception other than a WorkbenchError is a finding: atheris stops and writes the crashing input.
`make fuzz` runs every harness for 300 s, `make fuzz-smoke` for 30 s.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from tests.reliability.corpus import CORPORA, reference_state_dict
    from workbench.core.errors import WorkbenchError
    from workbench.io.images import decode_image
    from workbench.io.weights import load_pinned_checkpoint, load_user_safetensors

REF = None
TMP = tempfile.mkdtemp(prefix="wbfuzz")


def fuzz_image(data: bytes) -> None:
    decode_image(data, "fuzz")


def fuzz_safetensors(data: bytes) -> None:
    load_user_safetensors(data, REF)


def fuzz_checkpoint(data: bytes) -> None:
    path = os.path.join(TMP, "ckpt.pt")
    with open(path, "wb") as f:
        f.write(data)
    load_pinned_checkpoint(path, hashlib.sha256(data).hexdigest())


def fuzz_report(data: bytes) -> None:
    import numpy as np

    from analyzers.attribution.result import AttributionResult
    from workbench.report import render_report

    fdp = atheris.FuzzedDataProvider(data)
    text = [fdp.ConsumeUnicodeNoSurrogates(40) for _ in range(5)]
    r = AttributionResult("attribution", model=text[0], data=text[1], config={"gradcam_layer": text[2]},
                          arrays={"input_display": np.zeros((1, 4, 4, 3), np.float32),
                                  "attr_saliency": np.ones((1, 4, 4)), "probs": np.full((1, 2), 0.5),
                                  "target": np.zeros(1, int)},
                          info={"methods": ["saliency"], "ids": [text[3]], "target_names": [text[4]],
                                "class_names_top5": [[text[4], text[3]]]})
    html = render_report([r], text[0])
    assert "<script>alert" not in html


TARGETS = {"image": fuzz_image, "safetensors": fuzz_safetensors, "checkpoint": fuzz_checkpoint,
           "report": fuzz_report}


def main() -> None:
    global REF
    name = sys.argv.pop(1)
    REF = reference_state_dict()
    target = TARGETS[name]

    def one(data: bytes) -> None:
        try:
            target(data)
        except WorkbenchError:
            pass

    seeds = os.path.join(TMP, f"seeds_{name}")
    os.makedirs(seeds, exist_ok=True)
    for i, (_, blob, _) in enumerate(CORPORA.get(name, lambda: [])()[:40]):
        with open(os.path.join(seeds, f"s{i}"), "wb") as f:
            f.write(blob[: 1 << 16])
    atheris.Setup(sys.argv + [seeds], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
