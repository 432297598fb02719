from dataclasses import dataclass

import pytest

from workbench.core import Analyzer, option, register_analyzer
from workbench.core.analyzer import get_analyzer, list_analyzers
from workbench.core.cards import get_card, list_cards
from workbench.core.errors import UnknownIdError


@dataclass(frozen=True)
class GoodCfg:
    k: int = option(1, "k")


def _analyzer(name, cfg=GoodCfg, supports=("image2d",)):
    return type("A", (Analyzer,), {"name": name, "Config": cfg, "supports": supports})


def test_entry_points_register_the_attribution_analyzer_and_zoo():
    assert "attribution" in [a.name for a in list_analyzers()]
    assert get_analyzer("attribution").Config().n_steps == 64
    assert "digits_vgg.sk" in [c.id for c in list_cards()]


def test_unknown_ids_raise_typed_errors():
    with pytest.raises(UnknownIdError):
        get_analyzer("nope")
    with pytest.raises(UnknownIdError):
        get_card("nope.x")


def test_bad_definitions_are_refused():
    @dataclass
    class Mutable:
        k: int = option(1, "k")

    @dataclass(frozen=True)
    class NoHelp:
        k: int = 1

    for bad in (_analyzer("Bad-Name"), _analyzer("ok_name", Mutable), _analyzer("ok_name", NoHelp),
                _analyzer("ok_name", supports=("video",)), _analyzer("ok_name", supports=())):
        with pytest.raises(TypeError):
            register_analyzer(bad)


def test_duplicate_name_is_refused():
    with pytest.raises(TypeError):
        register_analyzer(_analyzer("attribution"))
