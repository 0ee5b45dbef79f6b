"""The declared contract (parity/portkit/contract.py) is the one the ports and adapters implement.

Every built-in port module of every catalogue case satisfies ``PortModule``, the port it builds
satisfies ``Port``, every capture adapter satisfies ``CaptureAdapter``; and each check can fail
(an object missing a method is refused).
"""

import importlib
import importlib.util

import pytest

from parity.cases.case import PortSpec
from parity.cases.registry import all_cases
from parity.portkit.contract import PORT_FUNCTIONS, CaptureAdapter, Port, PortModule
from parity.run.boundary import load_port_module
from parity.run.frameworks import CAPTURE_ADAPTERS, PORT_PACKAGES

HAS_TF, HAS_TORCH = (importlib.util.find_spec(m) is not None for m in ("tensorflow", "torch"))
INSTALLED = {"numpy": True, "torch": HAS_TORCH, "tf1": HAS_TF, "tf2": HAS_TF}


def _modules():
    seen = set()
    for case in all_cases():
        for port in case.ports:
            fw = PortSpec.parse(port).framework
            if (fw, case.module) not in seen:
                seen.add((fw, case.module))
                yield fw, case.module


def test_the_protocols_refuse_what_lacks_a_method():
    class NoStep:
        def load(self, params):
            pass

        def parameters(self):
            return {}

    class NoInfo:
        def build(self, case, dtype, variant=None):
            return NoStep()

    assert not isinstance(NoStep(), Port)
    assert not isinstance(NoInfo(), PortModule)
    assert not isinstance(object(), CaptureAdapter)
    assert set(PORT_FUNCTIONS) == {"build", "framework_info"}


@pytest.mark.parametrize("framework,module", sorted(_modules()))
def test_every_builtin_port_module_is_a_port_module(framework, module):
    if not INSTALLED[framework]:
        pytest.skip(f"{framework} is not installed")
    assert isinstance(load_port_module(framework, module), PortModule)


def test_a_built_numpy_port_is_a_port():
    from parity.cases.registry import get_case

    case = get_case("seed004_oscillate")
    assert isinstance(load_port_module("numpy", case.module).build(case, "float64"), Port)


@pytest.mark.parametrize("framework", sorted(CAPTURE_ADAPTERS))
def test_every_capture_adapter_is_an_adapter(framework):
    needs = "torch" if framework == "torch" else "tf1"
    if not INSTALLED[needs]:
        pytest.skip(f"{needs} is not installed")
    assert isinstance(importlib.import_module(CAPTURE_ADAPTERS[framework]), CaptureAdapter)


def test_every_port_package_gives_its_framework_info():
    from parity.run.frameworks import port_package

    for framework in PORT_PACKAGES:
        if INSTALLED[framework]:
            assert callable(port_package(framework).framework_info), framework
