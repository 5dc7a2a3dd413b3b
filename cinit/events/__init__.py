"""Where events go: the hub that numbers them, the pump that publishes them, and what answers.

`hub` gives every event its `seq` and timestamps, once; `pump` is the `cinit-events` thread,
the one owner of ZeroMQ and the trace; `status_book` keeps every unit's state from the
events; `control_desk` answers the control socket's requests from the status book.
"""
