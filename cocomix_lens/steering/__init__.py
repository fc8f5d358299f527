"""Steering CoCoMix models by editing their concepts, and measuring whether it worked."""
