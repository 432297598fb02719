from dataclasses import dataclass

import pytest

from workbench.core.config import describe, from_dict, option, parse_set_args
from workbench.core.errors import ConfigError


@dataclass(frozen=True)
class Cfg:
    steps: int = option(8, "steps", min=1, max=100)
    rate: float = option(0.5, "rate", min=0.0, max=1.0)
    mode: str = option("a", "mode", choices=("a", "b"))
    methods: str = option("x,y", "methods", choices=("x", "y", "z"), multi=True)
    flag: bool = option(True, "flag")


def test_strings_are_parsed_to_field_types():
    c = from_dict(Cfg, {"steps": "12", "rate": "0.25", "mode": "b", "methods": "z,x", "flag": "false"})
    assert (c.steps, c.rate, c.mode, c.methods, c.flag) == (12, 0.25, "b", "z,x", False)


@pytest.mark.parametrize("values, word", [
    ({"steps": "0"}, "below the minimum"), ({"steps": "101"}, "above the maximum"),
    ({"rate": "nan"}, "not finite"), ({"mode": "c"}, "not one of"), ({"methods": "x,w"}, "not one of"),
    ({"steps": "1.5"}, "not a valid int"), ({"flag": "maybe"}, "not a boolean"), ({"nope": "1"}, "unknown"),
])
def test_bad_values_raise_one_line_config_errors(values, word):
    with pytest.raises(ConfigError) as e:
        from_dict(Cfg, values)
    assert word in e.value.one_line() and "\n" not in e.value.one_line()


def test_set_args_and_describe():
    assert parse_set_args(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError):
        parse_set_args(["novalue"])
    fields = {f["name"]: f for f in describe(Cfg)}
    assert fields["steps"]["min"] == 1 and fields["mode"]["choices"] == ["a", "b"]
