"""The console's screens: the main screen (panes, order line, refresh loop), the keys screen and the
confirmation dialogs."""
