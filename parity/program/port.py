"""One captured program behind the port protocol that :func:`parity.run.runner.run_case` drives (numpy only).

:class:`ProgramRun` holds what :func:`parity.program.prepare.prepare` decided (mapping, initial weights,
batches with dropout masks); :class:`_Port` renames each side's stages into the reference's names;
:class:`ProgramPorts` is one side as the port module run_case is given; the batches are handed to
run_case as an argument (no module state: the run is an object passed down).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parity.errors import ParityError
from parity.program.batches import MASK_PREFIX
from parity.program.load import Program, capture


@dataclass
class ProgramRun:
    """What compare_programs decided before running: mapping, initial weights, batches, dropout masks."""

    reference: Program
    port: Program
    mapping: object
    initial: dict
    batches: list
    notes: list = field(default_factory=list)
    constrained: bool = False


class _Port:
    """One captured program behind the port protocol (build/load/parameters/step), in reference names."""

    def __init__(self, run: ProgramRun, side: str, dtype: str):
        from parity.program.mapping import apply_ops

        self.run, self.side, self.dtype, self._apply = run, side, dtype, apply_ops
        program = run.reference if side == "reference" else run.port
        self.prog = capture(program, dtype)
        m = run.mapping
        if side == "reference":
            self.names = {e.reference: (e.reference, e.reference_ops, e.trainable) for e in m.params}
            self.acts = {a: a for a, _ in m.forward}
            weights = {k: np.asarray(v, dtype=dtype) for k, v in run.initial.items() if k in self.names}
        else:
            self.names = {e.port: (e.reference, e.port_ops, e.trainable) for e in m.params}
            self.acts = {b: a for a, b in m.forward}
            weights = {k: np.asarray(v, dtype=dtype) for k, v in m.port_weights(run.initial).items()}
            if run.constrained and hasattr(self.prog, "report_constrained"):
                self.prog.report_constrained = True
        try:
            self.prog.load(weights)
        except Exception:
            self.close()
            raise

    def _rename(self, arrays: dict, trainable_only: bool = False) -> dict:
        out = {}
        for own, arr in arrays.items():
            hit = self.names.get(own)
            if hit is None or (trainable_only and not hit[2]):
                continue
            out[hit[0]] = self._apply(hit[1], arr)
        return out

    def _slots(self, arrays: dict) -> dict:
        out = {}
        for key, arr in arrays.items():
            own, _, slot = key.rpartition("/")
            hit = self.names.get(own)
            if hit is not None and slot:
                out[f"{hit[0]}/{slot}"] = self._apply(hit[1], arr)
        return out

    def parameters(self) -> dict:
        return self._rename(self.prog.parameters())

    def load(self, params) -> None:
        if params:
            raise ParityError("a program's port loads the mapped weights itself; the case has no parameters")

    def settings(self) -> dict:
        s = getattr(self.prog, "settings", None)
        return dict(s()) if callable(s) else {}

    def step(self, batch) -> dict:
        masks = {int(k[len(MASK_PREFIX):]): v for k, v in batch.items() if k.startswith(MASK_PREFIX)}
        data = {k: v for k, v in batch.items() if not k.startswith(MASK_PREFIX)}
        raw = self.prog.step(data, masks)
        out: dict = {"inputs": {k: np.asarray(v) for k, v in data.items()}}
        for stage, arrays in raw.items():
            if stage == "forward":
                out[stage] = {self.acts[k]: v for k, v in arrays.items() if k in self.acts}
            elif stage in ("loss", "learning_rate"):
                out[stage] = dict(arrays)
            elif stage == "slots":
                out[stage] = self._slots(arrays)
            elif stage == "state":
                out[stage] = self._rename(arrays)
            elif stage == "inputs":
                continue
            else:
                out[stage] = self._rename(arrays, trainable_only=True)
        # a stage with nothing mapped in it (SGD without momentum has no slots; global_step alone
        # in state) is not reported: the other side reporting it too would be a false structure issue
        return {stage: arrays for stage, arrays in out.items() if arrays or stage in ("inputs",)}

    def close(self) -> None:
        close = getattr(self.prog, "close", None)
        if callable(close):
            close()


class ProgramPorts:
    """One side of a :class:`ProgramRun` as a port module (``build`` and ``framework_info``: what
    :func:`parity.run.runner.run_case` asks of the modules it is given), in reference names."""

    def __init__(self, run: ProgramRun, side: str):
        self.run, self.side = run, side
        self.__name__ = f"parity_program_port_{side}"

    def build(self, case, dtype, variant=None):
        return _Port(self.run, self.side, dtype)

    def framework_info(self):
        from parity.run.frameworks import port_package

        fw = (self.run.reference if self.side == "reference" else self.run.port).framework
        return port_package(fw).framework_info()
