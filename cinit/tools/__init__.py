"""Operator tools off the boot path: `cinit watch` and `cinit analyze`.

Pure logic (the watch model, trace reading and boot analysis, the SVG chart) lives here,
apart from the I/O of the commands in `cinit.cli.watch` and `cinit.cli.analyze`.
"""
