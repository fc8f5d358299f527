"""Steering CoCoMix models by editing their concepts, and measuring whether it worked.

Specs, the `steer` context and `transplant` (spec.py, hooks.py, ops.py: the op registry,
sentences.py: positions decided from the tokens, transplant.py); steering methods and the
evaluation harness that measures any of them (method.py, evaluate.py, scorers.py, results.py).
"""

from cocomix_lens.steering.hooks import Steering
from cocomix_lens.steering.ops import OPS, ORDER, describe_edit
from cocomix_lens.steering.spec import Edit, SteeringSpec, steer, validate_spec
from cocomix_lens.steering.transplant import transplant

__all__ = ["Edit", "OPS", "ORDER", "Steering", "SteeringSpec", "describe_edit", "steer",
           "transplant", "validate_spec"]
