"""RLlib integration (Ray 2.60, new API stack): RLModules, env registration, training.

Importing this package needs ``ray[rllib]``; the rest of edmarl does not.
"""
