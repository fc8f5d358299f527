"""Steering a CoCoMix model through its predicted concepts: specs, the `steer` context and
`transplant`. ops.py documents every operation and the order they compose in."""

from cocomix_lens.steering.hooks import Steering, steer
from cocomix_lens.steering.ops import OPS, ORDER
from cocomix_lens.steering.spec import Edit, SteeringSpec
from cocomix_lens.steering.transplant import transplant

__all__ = ["Edit", "OPS", "ORDER", "Steering", "SteeringSpec", "steer", "transplant"]
