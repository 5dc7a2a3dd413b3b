"""cinit's decisions as pure state machines: no threads, no OS, a clock given by the caller.

`lifecycle` is the root's (main command, forwarding, shutdown); `unit_state` (with
`unit_stop`) a unit's, over the nouns of `unit_model` and the events and actions of
`unit_events`; `restart` holds the Restart= and start-limit policies; `ordering` who may
start and stop now. `record` is the cheap base of the message types. The actors in
`cinit.actors` feed these machines and carry their actions out through `cinit.io`.
"""
