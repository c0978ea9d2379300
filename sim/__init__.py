"""The demo company: seed data and the simulator that drives `banli demo`."""
