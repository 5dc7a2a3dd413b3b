"""cinit's decisions: the pykka actor tree and the pure state machines it feeds.

Root: `root` (owns the main command, decides forwarding and shutdown) with its pure
transition function `lifecycle`; `scheduler` is the single source of timers (timers
arrive at actors as messages; actors never sleep or block).

Units: `supervisor` (one actor under the root: boot order, OnFailure=,
ExitContainerOnFailure=, ordered shutdown, restarting broken unit actors) with its pure
bookkeeping `ordering`; `unit` (one actor per unit) feeding the pure state machine
`unit_state` (+ `unit_stop`; vocabulary in `unit_model` and `unit_events`) and
carrying out its actions through `unit_io`; `restart` holds the pure Restart= and
start-limit policies; `unit_services` sets it all up for `cinit.boot`. `record` is the
cheap base of the message types.
"""
