"""Seed 003's hand-written TF1 Keras step, broken the two ways the seed shows (see ``tf_impl/v1/bn_convnet.py``)."""

from __future__ import annotations

from tf_impl.v1.bn_convnet import HandWrittenStep

__all__ = ["MISTAKES", "NoLearningPhase", "NoBatchNormUpdates"]


class NoLearningPhase(HandWrittenStep):
    """``learning-phase`` (P04): the learning phase is not an input of the ``K.function``.

    It keeps its default, False: BatchNorm normalises with its moving statistics and
    dropout is the identity, while the optimizer still trains.
    """

    def _train_function(self, loss, weights, inputs, phase, fetches):
        return self.K.function(inputs, fetches, updates=self._updates(loss, weights))  # no phase input

    def _run(self, x, mask, y):
        return self.fn([x, mask, y])

    def settings(self):
        return {**super().settings(), "learning_phase": "not fed: default False"}


class NoBatchNormUpdates(HandWrittenStep):
    """``bn-update-ops`` (P05): the seed's fix as written: only the optimizer's updates run.

    The learning phase is fed, but the model's updates (the BatchNorm moving averages)
    are left out of the ``K.function``: the moving statistics never move.
    """

    def _updates(self, loss, weights):
        return self.opt.get_updates(loss, weights)  # the slip: + self.model.updates forgotten


MISTAKES = {"no_phase": NoLearningPhase, "no_bn_updates": NoBatchNormUpdates}
