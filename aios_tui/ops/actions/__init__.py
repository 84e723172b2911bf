"""The actions, one module each. Defining a subclass of :class:`~aios_tui.ops.action.Action` in a module here
registers it: the console's keys, ``:`` commands, palette and help, and the CLI's ``plan`` / ``act``
subcommands all come from the registry (:func:`aios_tui.ops.action.all_actions`), which imports every module
of this package."""
