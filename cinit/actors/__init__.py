"""cinit's decisions: the pykka actor tree and the pure state machines it feeds.

`root` is the root supervisor (owns the main command, decides forwarding and shutdown),
`lifecycle` its pure transition function, `scheduler` the single source of timers (timers
arrive at actors as messages; actors never sleep or block).
"""
