"""cinit's decisions as pure state machines: no threads, no OS, a clock given by the caller.

`lifecycle` is the root's (main command, forwarding, shutdown). A unit's machine is
`unit_state` (its table and `step`) over `unit_step` (the working copy and its one
mutator), with the handlers by concern in `unit_start`, `unit_run` and `unit_stop`, the
nouns in `unit_model` and the events and actions in `unit_events`. `vocabulary` holds the
state names, groups and stream event names everything else shares; `restart` the Restart=
and start-limit policies; `ordering` who may start and stop now. `record` is the cheap
base of the message types. The actors in `cinit.actors` feed these machines and carry
their actions out through `cinit.io`.
"""
