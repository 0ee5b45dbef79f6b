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

#: the prefix of a phase's tensors (a program with several optimizers: phase1/..., phase2/...)
PHASE = "phase"


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
            self.names = m.views("reference")  # own name -> [(name in the report, ops, trainable)]
            self.acts = {a: a for a, _ in m.forward}
            weights = {k: np.asarray(v, dtype=dtype) for k, v in run.initial.items() if k in self.names}
        else:
            self.names = m.views("port")
            self.acts = {b: a for a, b in m.forward}
            weights = {k: np.asarray(v, dtype=dtype) for k, v in m.port_weights(run.initial).items()}
            if run.constrained and hasattr(self.prog, "report_constrained"):
                self.prog.report_constrained = True
        try:
            self.prog.load(weights)
        except Exception:
            self.close()
            raise

    def _rename(self, arrays: dict, trainable_only: bool = False, stage: str = "parameters") -> dict:
        """One stage's arrays in report names and the canonical layout (a variable may have several pairs:
        a TF1 LSTM kernel's two parts; value-only ops such as forget_bias apply to the value stages only)."""
        return self.run.mapping.canonical(self.side, arrays, stage, trainable_only)

    def _slots(self, arrays: dict) -> dict:
        return self.run.mapping.canonical(self.side, arrays, "slots")

    def _hyper(self, arrays: dict, only=None) -> dict:
        """The update's hyper-parameters per trained parameter, never per group (docs/stages.md):
        ``<param>/lr`` and ``<param>/decoupled_decay`` (lr*wd of AdamW / Keras ``weight_decay``; 0
        where the program has none), from a program's one rate (``lr``) or its per-parameter ones."""
        out = {}
        for key, value in arrays.items():
            own, _, what = key.rpartition("/")
            for name, _, trainable in self.names.get(own, ()):
                if trainable:
                    out[f"{name}/{what}"] = np.asarray(value)
        trained = [(name, ops) for views in self.names.values() for name, ops, trainable in views
                   if trainable and (only is None or name in only)]  # only: a phase's parameters
        for key, value in arrays.items():
            if "/" not in key:  # one value for every parameter (a single group, TF's one rate)
                for ref, _ in trained:
                    out.setdefault(f"{ref}/{key}", np.asarray(value))
        for ref, _ in trained:
            out.setdefault(f"{ref}/decoupled_decay", np.zeros((), dtype=self.dtype))
        ordered = {k: out[k] for k in sorted(out)}
        rates = {float(v) for k, v in out.items() if k.endswith("/lr")}
        if len(rates) == 1:  # one rate for all (what the diagnosis reads as "lr"), first
            ordered = {"lr": next(np.asarray(v) for k, v in ordered.items() if k.endswith("/lr")), **ordered}
        return ordered

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
        raw = dict(self.prog.step(data, masks))
        phases = raw.pop("phases", None) or []
        notes = getattr(self.prog, "notes", None)
        if callable(notes):  # what the step decided (a scheduler's unit) joins the run's notes
            label = "reference" if self.side == "reference" else "port"
            for n in notes():
                if n.startswith(("scheduler ", "regularization: ", "not driven")) and f"{label}: {n}" not in self.run.notes:
                    self.run.notes.append(f"{label}: {n}")
        out: dict = {"inputs": {k: np.asarray(v) for k, v in data.items()}}
        out.update(self._stages(raw))
        for k, record in enumerate(phases, 1):
            # several optimizers in one step: phase k's stages, named phase<k>/<tensor> (docs/own-model.md,
            # "Several optimizers / a hand-written update"); phases are paired by order
            for stage, arrays in self._stages(record, phase=True).items():
                out.setdefault(stage, {}).update({f"{PHASE}{k}/{name}": v for name, v in arrays.items()})
        # a stage with nothing mapped in it (SGD without momentum has no slots; global_step alone
        # in state) is not reported: the other side reporting it too would be a false structure issue
        return {stage: arrays for stage, arrays in out.items() if arrays or stage in ("inputs",)}

    def _stages(self, raw: dict, phase: bool = False) -> dict:
        """One step's (or one phase's) stages in report names and the canonical layout."""
        out: dict = {}
        for stage, arrays in raw.items():
            if stage == "forward":
                out[stage] = {self.acts[k]: v for k, v in arrays.items() if k in self.acts}
            elif stage in ("loss", "regularization"):
                out[stage] = dict(arrays)
            elif stage == "learning_rate":
                params = raw.get("parameters")  # a phase's rate is its own parameters' only
                only = set(self._rename(params, trainable_only=True)) if phase and params else None
                out[stage] = self._hyper(arrays, only)
            elif stage == "slots":
                out[stage] = self._slots(arrays)
            elif stage == "state":
                out[stage] = self._rename(arrays, stage=stage)
            elif stage == "inputs":
                continue
            else:
                out[stage] = self._rename(arrays, trainable_only=True, stage=stage)
        return out

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
