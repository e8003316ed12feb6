"""Reading the options: a value given empty on the command line or by ``-o`` is refused, never read
as "unset" (``--showdown-compare "$BASE"`` with ``BASE`` unset must not turn the gate off)."""

from __future__ import annotations

import pytest

from pytest_tagger_showdown.options import OPTIONS, check_given

VALUED = [name for name, _help, settings in OPTIONS if settings.get("kind") != "bool"]
INI_KEYS = [
    settings.get("ini") or name.removeprefix("--").replace("-", "_") for name, _h, settings in OPTIONS
]


@pytest.mark.parametrize("name", VALUED)
@pytest.mark.parametrize("empty", ["", " ", ","])
def test_every_option_given_an_empty_value_is_refused(
    pytester: pytest.Pytester, name: str, empty: str
) -> None:
    # Before: --showdown-compare= (and every other option) was read as not given: a gate silently off.
    config = pytester.parseconfig(f"{name}={empty}")
    with pytest.raises(ValueError, match=f"^{name} was given an empty value"):
        check_given(config)


@pytest.mark.parametrize("key", INI_KEYS)
def test_every_ini_key_set_empty_by_o_is_refused(pytester: pytest.Pytester, key: str) -> None:
    # Before: -o showdown_compare= dropped the ini file's gate without a word.
    config = pytester.parseconfig("-o", f"{key}=")
    with pytest.raises(ValueError, match=f"^{key} was given an empty value$"):
        check_given(config)


def test_an_empty_key_in_the_ini_file_and_given_values_are_accepted(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nshowdown_compare =\nshowdown_baselines =\n")
    check_given(
        pytester.parseconfig(
            "--showdown-baseline", "a=0.1", "--showdown-compare", "x", "-o", "showdown_limit=3"
        )
    )


@pytest.mark.parametrize("args", [("--showdown-baseline", "# later"), ("-o", "showdown_baselines=# later")])
def test_a_baseline_of_comments_only_is_refused(pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    # Before: read as no baseline, the run went ungated.
    with pytest.raises(ValueError, match="was given an empty value"):
        check_given(pytester.parseconfig(*args))
