"""One atheris (libFuzzer) harness: `python -m fuzz.atheris_run TARGET [libFuzzer flags, e.g. -max_total_time=60
-artifact_prefix=.fuzz/ CORPUS_DIR]`. The target's modules are instrumented for coverage; a finding ends the
run with libFuzzer's crash report and the input saved under -artifact_prefix."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import atheris

    name = sys.argv.pop(1)
    from fuzz.targets import SEEDS, TARGETS

    target = TARGETS[name]
    for seed in SEEDS.get(name, []):  # import everything the target reaches
        target(seed)
    _instrument_project(atheris)
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


def _instrument_project(atheris: object) -> None:
    """Coverage of the project's own code (shared/*): every function and method of its loaded modules
    (instrumenting everything loaded, pydantic included, costs ~10-20 s per start)."""
    import inspect

    instrument = atheris.instrument_func  # type: ignore[attr-defined]
    for name, module in list(sys.modules.items()):
        if not (name == "shared" or name.startswith("shared.")):
            continue
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj):
                instrument(obj)
            elif inspect.isclass(obj):
                for member in list(vars(obj).values()):
                    if inspect.isfunction(member):
                        instrument(member)


if __name__ == "__main__":
    main()
