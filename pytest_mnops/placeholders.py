"""``${name}`` placeholders in PromQL and alert labels (profiles, stop conditions, plots), filled the way chaoslib
fills an experiment's (``string.Template``, a name without a value left as it is), but braced only: a bare
``$name`` of a known placeholder is refused with the fix, so one spelling holds everywhere."""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Template

from pytest_mnops.errors import ConfigError

_BARE = re.compile(r"(?<!\$)\$([_a-zA-Z][_a-zA-Z0-9]*)")


class _Braced(Template):
    idpattern = r"(?!)"  # no bare $name: only ${name} is a placeholder
    braceidpattern = Template.idpattern


def fill(text: str, values: Mapping[str, object]) -> str:
    known = {name: str(value) for name, value in values.items() if value is not None}
    bare = sorted({name for name in _BARE.findall(text) if name in values})
    if bare:
        raise ConfigError(
            f"{text!r}: {', '.join(f'${name}' for name in bare)} without braces. Fix: write "
            f"{', '.join(f'${{{name}}}' for name in bare)} (placeholders are braced, as in the scenarios)."
        )
    return _Braced(text).safe_substitute(known)
