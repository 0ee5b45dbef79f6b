"""Seed 002's momentum procedure in TF2 with Keras' own SGD (see ``tf_impl/v2/mlp.py``)."""

from __future__ import annotations

from tf_impl.v2.mlp import MlpPort, _keras

__all__ = ["MISTAKES", "KerasSGD"]


class KerasSGD(MlpPort):
    """``sgd-momentum-lr-change`` (P07): ``keras.optimizers.SGD(momentum=0.9)`` on the decaying rate.

    Keras folds the learning rate into the velocity (``m = mu*m - lr*g; var += m``): equal to
    TF1's ``accum = mu*accum + g; var -= lr*accum`` only while the rate stays constant. The
    slot is reported converted, ``-m / lr`` (TF1's ``accum`` under a constant rate).
    """

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        if self.procedure != "max_norm":
            raise ValueError("keras_sgd is the momentum procedure (max_norm) with Keras' SGD")
        self.opt = _keras().optimizers.SGD(learning_rate=self.schedule, momentum=case.option("momentum", 0.9))
        self.opt.build(list(self.variables.values()))
        self.accum = {}

    def _update(self, grads, lr):
        names = list(grads)
        self.opt.apply([grads[n] for n in names], [self.variables[n] for n in names])  # the lr-in-velocity form
        return {n: -self.opt.momentums[self.opt._get_variable_index(v)] / lr for n, v in self.variables.items()}

    def settings(self):
        return {**super().settings(), "momentum_form": "keras (m = mu*m - lr*g)"}


MISTAKES = {"keras_sgd": KerasSGD}
