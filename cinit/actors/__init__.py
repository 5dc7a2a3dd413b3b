"""cinit's actors: pykka actors that feed the pure machines of `cinit.machines` and carry out
their actions through `cinit.io`.

Root: `root` (owns the main command; its decisions are `cinit.machines.lifecycle`);
`scheduler` is the single source of timers (timers arrive at actors as messages; actors
never sleep or block). Units: `supervisor` (one actor under the root: boot order,
OnFailure=, ExitContainerOnFailure=, ordered shutdown, restarting broken unit actors);
`unit` (one actor per unit) carries messages from its slot (`unit_slot`) to the unit's
runner (`unit_runner`: feeds `cinit.machines.unit_state`, acts through `unit_io`);
`first_wave` runs the same runner for the units that wait for nothing before pykka is
imported; `unit_ports` names the shapes they meet through;
`socket_activator` one actor per socket unit; `unit_services` sets it all up for `cinit.boot`.
"""
