"""Pitfall cases: optimizer hyper-parameters a port left at another framework's default, and the optimizer
class itself (the two-layer linear net of ``pitfalls_optim.py``, TF1 reference, 2 steps).

* ``optimizer-class``: TF1 ``AdadeltaOptimizer`` ported as plain ``SGD``;
* ``optimizer-rho`` / ``optimizer-epsilon``: Adadelta's rho / epsilon left at torch's defaults
  (0.9, 1e-6; TF1's are 0.95, 1e-8);
* ``adadelta-lr-default``: a Keras 2.3 ``Adadelta()`` (lr 1.0) ported with tf_keras' default 0.001;
* ``rmsprop-centered``: ``RMSPropOptimizer(centered=True)`` as ``RMSprop(centered=False)``;
* ``adam-betas``: ``AdamOptimizer(beta1, beta2)`` as ``Adam()`` (betas (0.9, 0.999));
* ``weight-decay``: plain gradient descent ported as ``SGD(weight_decay=wd)`` (a coupled decay the
  reference does not have).

Hyper-parameters are exact in float32 (see ``pitfalls_optim.py``): rho 1 - 2**-4, epsilon 2**-26.
"""

from __future__ import annotations

from parity.cases.catalog.pitfalls_optim import _COST, _W, _XT, pitfall_pair


def _hyper(pitfall, title, steps=2, **options):
    return pitfall_pair(pitfall, module="pitfalls.optim", title=title, reference="tf1", params=_W, arrays=_XT,
                        steps=steps, options=options, cost=_COST)


# Adadelta's first update is ~sqrt(eps / (1 - rho)) sign(g): lr 1.0 (Keras 2.3's default) makes it ~5e-4
_ADADELTA = {"optimizer": "adadelta", "lr": 1.0, "rho": 1 - 2**-4, "epsilon": 2**-26}
_hyper("optimizer-class", "TF1 AdadeltaOptimizer(1.0) ported as SGD(lr=1.0)", **_ADADELTA)
_hyper("optimizer-rho", "TF1 AdadeltaOptimizer(rho=0.9375) ported with torch's rho 0.9", **_ADADELTA)
_hyper("optimizer-epsilon", "TF1 AdadeltaOptimizer(epsilon=2**-26) ported with torch's eps 1e-6", **_ADADELTA)
_hyper("adadelta-lr-default", "Keras 2.3 Adadelta() (lr 1.0) ported with tf_keras' lr 0.001", **_ADADELTA)
_hyper("rmsprop-centered", "TF1 RMSPropOptimizer(centered=True)", optimizer="rmsprop", lr=0.0625, decay=0.875, epsilon=1e-10,
       centered=True)
_hyper("adam-betas", "TF1 AdamOptimizer(beta1=0.875, beta2=1 - 2**-8) ported as Adam() (0.9, 0.999)", optimizer="adam",
       lr=0.0625, beta1=0.875, beta2=1 - 2**-8, epsilon=2**-27)
_hyper("weight-decay", "TF1 GradientDescentOptimizer ported as SGD(weight_decay=2**-3)", optimizer="sgd", lr=0.125,
       port_weight_decay=2**-3)
