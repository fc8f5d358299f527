"""Steering CoCoMix models by editing their concepts, and measuring whether it worked.

Specs, the `steer` context and `transplant` (spec.py, hooks.py, ops.py: every operation and the
order they compose in, transplant.py); measured steering in evaluate.py.
"""

from cocomix_lens.steering.hooks import Steering, steer
from cocomix_lens.steering.ops import OPS, ORDER
from cocomix_lens.steering.spec import Edit, SteeringSpec, validate_spec
from cocomix_lens.steering.transplant import transplant

__all__ = ["Edit", "OPS", "ORDER", "Steering", "SteeringSpec", "steer", "transplant",
           "validate_spec"]
